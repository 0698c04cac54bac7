"""Loading a Demucs v4 checkpoint (`.th`, a pickled dict) without running pickled code: `torch.load(weights_only=True)`
with an allow-list that admits the class *names* of the networks (as inert stand-ins: demucs is never imported),
`fractions.Fraction` (the segment length) and numpy's scalar / dtype / array constructors (numbers in the
settings); anything else in the file is refused with a message naming it.

Used by the file check of a download or import (assets/uvr_files.py) and by the runner (separate/uvr_demucs.py).
"""

from __future__ import annotations

import fractions
import re
from pathlib import Path

from voiceapp.errors import InputError

DEMUCS_CLASSES = ("HTDemucs", "HDemucs")


class _ClassName:
    """What a Demucs class reference in a checkpoint unpickles to: its name, nothing callable."""

    name = ""


def _stand_in(name: str) -> type:
    return type(f"DemucsClass_{name}", (_ClassName,), {"name": name})


_STAND_INS = {name: _stand_in(name) for name in DEMUCS_CLASSES}


def _numpy_data_globals() -> list:
    """numpy's data constructors (scalars, dtypes, arrays) under the names numpy 1 and 2 pickle them by: published
    Demucs files hold numpy numbers in their settings. They rebuild data only; anything inside still goes through
    the weights-only unpickler."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core   # numpy 2 / numpy 1
    allowed: list = [np.dtype, np.ndarray]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(core.multiarray.scalar, f"{module}.scalar"),
                    (core.multiarray._reconstruct, f"{module}._reconstruct")]
    for name in ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool_"):
        dtype_class = type(np.dtype(getattr(np, name)))
        allowed += [dtype_class, (dtype_class, f"numpy.dtypes.{dtype_class.__name__}")]
    return allowed


def _safe_globals() -> list:
    allowed: list = [fractions.Fraction, *_numpy_data_globals()]
    for name, cls in _STAND_INS.items():
        module = "htdemucs" if name == "HTDemucs" else "hdemucs"
        for prefix in ("demucs", "audio_separator.separator.uvr_lib_v5.demucs"):
            allowed.append((cls, f"{prefix}.{module}.{name}"))
    return allowed


def load_demucs_package(path: Path) -> dict:
    """The checkpoint's {"klass": name, "args", "kwargs", "state"}, loaded without running pickled code.

    Raises InputError naming the file and what to do when it is damaged, holds something other than tensors,
    containers, numbers (numpy's too), strings, Fractions and the Demucs class names, or is a quantized (diffq)
    checkpoint.
    """
    import torch

    try:
        with torch.serialization.safe_globals(_safe_globals()):
            package = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for a refused global, RuntimeError / EOFError for a damaged file
        refused = re.search(r"GLOBAL ([\w.]+)", str(err))
        why = (f"it holds `{refused.group(1)}`, which is not a tensor, container, number, string, Fraction or Demucs "
               f"class name" if refused else f"{type(err).__name__}: {str(err)[:200]}")
        raise InputError(f"{path}: not a Demucs checkpoint Voiceapp can load safely ({why}). Delete it and download "
                         f"the model again, or import the published file.") from err
    klass = package.get("klass") if isinstance(package, dict) else None
    if not (isinstance(klass, type) and issubclass(klass, _ClassName)):
        raise InputError(f"{path}: not a Demucs v4 checkpoint (it has no HTDemucs / HDemucs class entry). Delete it "
                         f"and download the model again.")
    state = package.get("state")
    if not isinstance(state, dict) or "__quantized" in state or not state:
        raise InputError(f"{path}: a quantized or empty Demucs checkpoint; Voiceapp runs the full-precision "
                         f"htdemucs / htdemucs_ft / htdemucs_6s / hdemucs_mmi files. Download one of those.")
    return {"klass": klass.name, "args": list(package.get("args") or []), "kwargs": dict(package.get("kwargs") or {}),
            "state": state}
