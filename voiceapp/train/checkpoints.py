"""Training checkpoints in RVC's format, plus what an exact resume needs.

`logs/<exp>/G_<step>.pth` and `D_<step>.pth` each hold RVC's keys (rvc-facts §2.5):
    model          full state dict (fp32; G includes enc_q), weight norm as weight_g / weight_v
    iteration      the epoch (int), not the step
    optimizer      AdamW.state_dict()
    learning_rate  the configured lr (RVC stores the config value)
and our resume extras, all plain tensors / numbers / lists / dicts so `torch.load(weights_only=True)` reads them:
    step, scheduler, scaler, rng {torch, cuda, numpy, python}, voiceapp {format, config}
RVC and Applio resume from these files (they ignore unknown keys), and ours resume from theirs (without the extras).

Every file is written to a temporary name in the same folder and renamed into place, D before G; a pair
counts as complete only when both exist, so a kill at any moment leaves the previous pair usable.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voiceapp.errors import ConfigError, MissingArtifactError
from voiceapp.workspace import atomic_path, is_temporary

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
_NAME = re.compile(r"^([GD])_(\d+)\.pth$")
_NEW_G, _NEW_V = "parametrizations.weight.original0", "parametrizations.weight.original1"


@dataclass(frozen=True)
class CheckpointPair:
    step: int
    generator: Path
    discriminator: Path


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module inside DistributedDataParallel (or the module itself)."""
    return getattr(model, "module", model)


def list_checkpoints(folder: Path) -> list[CheckpointPair]:
    """Complete G/D pairs in `folder`, oldest step first."""
    found: dict[int, dict[str, Path]] = {}
    if not Path(folder).is_dir():
        return []
    for path in Path(folder).iterdir():
        match = _NAME.match(path.name)
        if match and not is_temporary(path):
            found.setdefault(int(match.group(2)), {})[match.group(1)] = path
    return [CheckpointPair(step, files["G"], files["D"])
            for step, files in sorted(found.items()) if "G" in files and "D" in files]


def latest_checkpoint(folder: Path) -> CheckpointPair | None:
    pairs = list_checkpoints(folder)
    return pairs[-1] if pairs else None


def checkpoint_pair(folder: Path, step: int) -> CheckpointPair:
    return CheckpointPair(step, Path(folder) / f"G_{step}.pth", Path(folder) / f"D_{step}.pth")


def capture_rng_state() -> dict[str, Any]:
    """Torch, CUDA, numpy and Python RNG states as tensors, ints and lists (weights_only-safe)."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss": py_gauss},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, epoch: int, step: int,
                    learning_rate: float, scheduler: Any = None, scaler: Any = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write one checkpoint atomically (see module docstring for the keys)."""
    state = {
        "model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "iteration": int(epoch),
        "optimizer": optimizer.state_dict(),
        "learning_rate": float(learning_rate),
        "step": int(step),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": capture_rng_state(),
        "voiceapp": {"format": CHECKPOINT_FORMAT, **(extra or {})},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a G_/D_ checkpoint (ours, RVC's or Applio's) with `weights_only=True`."""
    path = Path(path)
    if not path.exists():
        raise MissingArtifactError(f"Checkpoint {path} does not exist.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a torn or foreign file becomes a user-facing message
        raise ConfigError(f"Cannot read checkpoint {path.name} ({type(err).__name__}: {err}). Delete it (and its "
                          f"G_/D_ partner) to resume from the previous save.") from err
    if not isinstance(data, dict) or "model" not in data:
        raise ConfigError(f"{path.name} is not a training checkpoint (no 'model' key).")
    return data


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the leftovers of checkpoint writes interrupted by a kill (`.G_120.xxxx.tmp.pth`)."""
    removed = []
    for path in Path(folder).glob(".[GD]_*.tmp.pth") if Path(folder).is_dir() else []:
        if is_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def prune_checkpoints(folder: Path, keep_step: int) -> list[Path]:
    """Delete every G_/D_ checkpoint except the pair of `keep_step` ("keep only the latest")."""
    removed = []
    for pair in list_checkpoints(folder):
        if pair.step != keep_step:
            for path in (pair.discriminator, pair.generator):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def adapt_state_dict(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename weight-norm keys between the old (`weight_g`/`weight_v`) and the parametrization style
    (`parametrizations.weight.original0/1`) to whichever `model` uses."""
    own = unwrap(model).state_dict().keys()
    new_style = any(k.endswith(_NEW_G) for k in own)
    old_style = any(k == "weight_g" or k.endswith(".weight_g") for k in own)
    out = {}
    for key, value in state.items():
        head, _, leaf = key.rpartition(".") if not key.endswith((_NEW_G, _NEW_V)) else (key, "", "")
        prefix = f"{head}." if head else ""
        if new_style and leaf in ("weight_g", "weight_v"):
            key = prefix + (_NEW_G if leaf == "weight_g" else _NEW_V)
        elif old_style and key.endswith((_NEW_G, _NEW_V)):
            base = key[: -len(_NEW_G)]
            key = base + ("weight_g" if key.endswith(_NEW_G) else "weight_v")
        out[key] = value
    return out


def shape_mismatches(state: dict[str, torch.Tensor], model: torch.nn.Module) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, keys whose shapes differ) of `state` against `model`."""
    own = unwrap(model).state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    different = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    return missing, unexpected, different


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Strict load after weight-norm renaming; a clear error names the first mismatches."""
    state = adapt_state_dict(state, model)
    missing, unexpected, different = shape_mismatches(state, model)
    if missing or unexpected or different:
        own = unwrap(model).state_dict()
        detail = "; ".join(filter(None, [
            f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
            ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in different[:3])]))
        raise ConfigError(f"{what} does not fit this model ({detail}). Check the sample rate, version and preset, "
                          f"or start a new experiment.")
    unwrap(model).load_state_dict(state, strict=True)
