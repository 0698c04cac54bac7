"""The voice model file of every engine: one safe loader, one `VoiceInfo` in one vocabulary.

Two formats, told apart by the suffix:
- `.pth` (engine "rvc"): the RVC / Applio community format (layout in `voiceapp.voices.rvc`), read with
  `torch.load(weights_only=True)`: a file whose pickle needs code is refused, never run.
- `.safetensors` (engines "instant", "quick"): Voiceapp's own format. The tensors, plus safetensors metadata
  `{"voiceapp": JSON, "voiceapp_sha256": hex}` where JSON is {"format": 1, "engine", "sample_rate", "encoder",
  "f0", "steps", "epochs", "minutes_of_data", "version", "config": {engine-specific}} and the digest covers
  that JSON and every tensor, so an edited header or edited weights are refused. RVC WebUI and Applio cannot
  load these files (`VoiceInfo.apps` says so).
Importing this module loads neither torch nor safetensors; they are imported on first use.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.workspace import atomic_path

ENGINES: tuple[str, ...] = ("rvc", "instant", "quick")
OWN_ENGINES: tuple[str, ...] = ("instant", "quick")   # saved as Voiceapp .safetensors
VOICE_SUFFIXES: tuple[str, ...] = (".pth", ".safetensors")
FORMAT_VERSION = 1
VOCODER = "HiFi-GAN"
DEFAULT_ENCODER = "contentvec"  # what community (RVC WebUI) models were trained with
META_KEY = "voiceapp"
DIGEST_KEY = "voiceapp_sha256"
OWN_META_KEYS = ("format", "engine", "sample_rate", "encoder", "f0", "steps", "epochs", "minutes_of_data",
                 "version", "config")


class UnsafeFileError(InputError):
    """A model file whose pickle would run code when loaded; refused, never run."""


@dataclass(frozen=True)
class VoiceInfo:
    """What a voice file says about itself, the same fields for every engine (read without building a network)."""

    engine: str                      # "rvc" | "instant" | "quick"
    name: str
    path: Path
    version: str                     # rvc: "v1" / "v2"; own engines: their format's version string
    sample_rate: int
    use_f0: bool
    encoder: str
    epochs: int | None
    steps: int | None
    speakers: int
    content_dim: int | None
    size: str                        # rvc preset: "full" | "light" | "tiny" | "custom"; own engines: the engine
    minutes_of_data: float | None    # None when the file does not say
    file_bytes: int
    rvc_compatible: bool = False     # loads unchanged in RVC WebUI and Applio
    author: str = ""
    vocoder: str = ""
    created: str = ""
    info: str = ""
    model_hash: str | None = None
    median_f0_hz: float | None = None  # own engines: the target's median pitch (for the transpose hint)

    @property
    def apps(self) -> tuple[str, ...]:
        """The apps that can load this file."""
        return ("Voiceapp", "RVC WebUI", "Applio") if self.engine == "rvc" and self.rvc_compatible else ("Voiceapp",)


def is_voice_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VOICE_SUFFIXES and not path.name.startswith(".")


def read_voice_info(path: Path | str) -> VoiceInfo:
    """The `VoiceInfo` of a `.pth` (rvc) or Voiceapp `.safetensors` voice file; InputError when it is neither."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        return _own_info(path, _read_own_meta(path))
    return _rvc_info(path, read_checkpoint(path, mmap=True))


# ----------------------------------------------------------------------------------------------- .pth (rvc)
def read_checkpoint(path: Path | str, mmap: bool = False) -> dict:
    """`torch.load(weights_only=True)` on CPU with errors a user can act on. Returns the top-level dict."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingArtifactError(f"Model file {path} does not exist. Check the path, or import the model in the "
                                   f"Models tab.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # an unknown opcode: damaged, or not a torch file at all
            why = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
            raise InputError(f"{path.name} is not a readable PyTorch file ({why.group(1)[:100] if why else 'bad pickle'}); "
                             f"it was refused and nothing was written. Download or copy it again.") from err
        raise UnsafeFileError(f"{path.name} was refused: it contains Python code besides weights, and loading it "
                              f"would run code stored in the file (its pickle references {_pickled_name(err)}). "
                              f"Nothing was written. Voice models are plain tensors; only use models from people "
                              f"you trust, or re-export it as a plain RVC .pth.") from err
    except RuntimeError as err:
        if mmap and "mmap" in str(err).lower():  # old (non-zip) torch format cannot be memory-mapped
            return read_checkpoint(path, mmap=False)
        raise InputError(f"{path.name} is not a readable PyTorch file ({err}). It may be truncated; "
                         f"download or copy it again.") from err
    except (EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise InputError(f"{path.name} is not a readable PyTorch file ({type(err).__name__}: {err}). It may "
                         f"be truncated; download or copy it again.") from err
    if not isinstance(data, dict):
        raise InputError(f"{path.name} holds a {type(data).__name__}, not an RVC model dict (with 'weight' and "
                         f"'config'). Is it a voice model .pth?")
    return data


def check_rvc_voice(ckpt: dict, path: Path) -> dict:
    """`ckpt` when it is an RVC voice model dict (`weight` + an 18-entry `config`), else InputError saying what it is."""
    if "weight" not in ckpt and "model" in ckpt:
        raise InputError(f"{path.name} is a training checkpoint (like G_*.pth / D_*.pth), not a voice model. "
                         f"Import the small model that training exports (models/voices/<exp>/<exp>.pth).")
    config = ckpt.get("config")
    if not isinstance(ckpt.get("weight"), dict) or not isinstance(config, (list, tuple)) or len(config) < 17:
        raise InputError(f"{path.name} is not an RVC voice model (it needs 'weight' and an 18-entry "
                         f"'config'); found keys {sorted(map(str, ckpt))[:8]}.")
    return ckpt


def _pickled_name(err: Exception) -> str:
    match = re.search(r"GLOBAL ([\w.]+ [\w.]+)", str(err))
    return match.group(1).replace(" ", ".") if match else "a Python object"


def int_flag(value: Any, default: int = 1) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return 0 if value.strip().lower() in {"0", "false", "no", ""} else 1
    return int(bool(value))


def _epoch_of(ckpt: dict) -> int | None:
    if isinstance(ckpt.get("epoch"), (int, np.integer)):
        return int(ckpt["epoch"])
    match = re.match(r"\s*(\d+)\s*epoch", str(ckpt.get("info", "")))
    return int(match.group(1)) if match else None


def _rate_of(ckpt: dict, config: list | None) -> int:
    from voiceapp.nets.synthesizer import parse_sample_rate

    if config and len(config) == 18:
        try:
            return parse_sample_rate(config[-1])
        except ConfigError:
            pass
    if ckpt.get("sr") is not None:
        return parse_sample_rate(ckpt["sr"])
    raise InputError("The model file names no sample rate (neither 'config' nor 'sr').")


def state_of(ckpt: dict, path: Path) -> dict:
    """The generator weights of a voice file (`weight`) or of a G_*.pth / pretrained f0G file (`model`)."""
    from voiceapp.nets.commons import to_rvc_keys

    state = ckpt.get("weight", ckpt.get("model"))
    if not isinstance(state, dict) or not state:
        raise InputError(f"{path.name} has no 'weight' (voice model) or 'model' (checkpoint) entry; keys: "
                         f"{sorted(ckpt)[:8]}. It is not an RVC voice model.")
    state = to_rvc_keys(state)
    if "enc_p.emb_phone.weight" not in state or "emb_g.weight" not in state:
        raise InputError(f"{path.name} does not hold an RVC synthesizer (no enc_p.emb_phone / emb_g weights); it "
                         f"may be a discriminator (D_*.pth) or another kind of model.")
    return state


def _rvc_info(path: Path, ckpt: dict) -> VoiceInfo:
    from voiceapp.nets.presets import CONTENT_DIMS

    state = state_of(ckpt, path)
    ours = ckpt.get("voiceapp") if isinstance(ckpt.get("voiceapp"), dict) else {}
    content_dim = int(state["enc_p.emb_phone.weight"].shape[1])
    version = str(ckpt.get("version") or "v1")
    widths = (int(state["enc_p.emb_phone.weight"].shape[0]), int(state["dec.conv_pre.weight"].shape[0]))
    size = str(ours.get("size") or ("full" if widths == (192, 512) else "custom"))
    vocoder = str(ckpt.get("vocoder") or VOCODER)
    step = ckpt.get("step")
    return VoiceInfo(
        engine="rvc", name=str(ckpt.get("model_name") or path.stem), path=path, version=version,
        sample_rate=_rate_of(ckpt, ckpt.get("config")), use_f0="enc_p.emb_pitch.weight" in state,
        encoder=str(ckpt.get("embedder_model") or ours.get("embedder") or DEFAULT_ENCODER),
        epochs=_epoch_of(ckpt), steps=int(step) if isinstance(step, (int, np.integer)) else None,
        speakers=int(state["emb_g.weight"].shape[0]), content_dim=content_dim, size=size,
        minutes_of_data=_float_or_none(ours.get("minutes_of_data")), file_bytes=path.stat().st_size,
        rvc_compatible=bool(size == "full" and content_dim == CONTENT_DIMS.get(version) and vocoder == VOCODER),
        author=str(ckpt.get("author") or ""), vocoder=vocoder, created=str(ckpt.get("creation_date") or ""),
        info=str(ckpt.get("info") or ""), model_hash=ckpt.get("model_hash"))


# ----------------------------------------------------------------------------------------------- .safetensors
def save_voice_tensors(path: Path | str, tensors: dict, meta: dict) -> Path:
    """Write a Voiceapp voice file (`.safetensors`) atomically: `tensors` (name -> torch.Tensor) and `meta`
    (the keys in the module docstring; "format" defaults to 1). ConfigError when `meta` is incomplete."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ConfigError(f"A Voiceapp voice file ends in .safetensors, not {path.name}.")
    meta = {"format": FORMAT_VERSION, **meta}
    problem = _meta_problem(meta)
    if problem:
        raise ConfigError(f"Cannot save {path.name}: its metadata {problem}.")
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    text = json.dumps(meta, sort_keys=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: text, DIGEST_KEY: _digest(text, tensors)})
    return path


def load_voice_tensors(path: Path | str) -> tuple[dict, dict]:
    """(tensors, meta) of a Voiceapp `.safetensors` voice file; safetensors only, never pickle.
    InputError naming the file and the next step for a missing, invalid or edited header, edited tensors, or
    a safetensors file that is not a Voiceapp voice."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta, header = _read_own_meta(path), _raw_header(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{path.name} is not a readable safetensors file ({err}). It may be truncated; copy it "
                         f"again or retrain the voice.") from err
    if header.get(DIGEST_KEY) != _digest(header[META_KEY], tensors):
        raise InputError(f"{path.name} was refused: its weights or metadata were changed after Voiceapp wrote it "
                         f"(checksum mismatch). Copy the file again or retrain the voice.")
    return tensors, meta


def _raw_header(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise MissingArtifactError(f"Voice file {path} does not exist. Check the path, or import the model in the "
                                   f"Models tab.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{path.name} is not a readable safetensors file ({err}). It may be truncated or "
                         f"edited; copy it again or retrain the voice.") from err


def _read_own_meta(path: Path) -> dict:
    header = _raw_header(path)
    if META_KEY not in header:
        raise InputError(f"{path.name} is a safetensors file but not a Voiceapp voice (no {META_KEY!r} metadata). "
                         f"Voice files are RVC .pth models or voices trained here; train or import one.")
    try:
        meta = json.loads(header[META_KEY])
    except json.JSONDecodeError as err:
        raise InputError(f"{path.name} has unreadable Voiceapp metadata ({err}); copy it again or retrain the "
                         f"voice.") from err
    problem = _meta_problem(meta) if isinstance(meta, dict) else "is not a JSON object"
    if problem:
        raise InputError(f"{path.name} has invalid Voiceapp metadata: it {problem}. Copy it again or retrain the "
                         f"voice (a newer Voiceapp may have written it).")
    return meta


def _meta_problem(meta: dict) -> str | None:
    missing = [k for k in OWN_META_KEYS if k not in meta]
    if missing:
        return f"lacks {', '.join(missing)}"
    if meta["format"] != FORMAT_VERSION:
        return f"has format {meta['format']!r}; this Voiceapp reads format {FORMAT_VERSION}"
    if meta["engine"] not in OWN_ENGINES:
        return f"names engine {meta['engine']!r}; Voiceapp's own files are {', '.join(OWN_ENGINES)}"
    if not isinstance(meta["config"], dict):
        return "has a 'config' that is not an object"
    return None


def _digest(meta_text: str, tensors: dict) -> str:
    import torch

    digest = hashlib.sha256(meta_text.encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _own_info(path: Path, meta: dict) -> VoiceInfo:
    config = meta["config"]
    return VoiceInfo(
        engine=meta["engine"], name=path.stem, path=path, version=str(meta["version"]),
        sample_rate=int(meta["sample_rate"]), use_f0=bool(meta["f0"]), encoder=str(meta["encoder"]),
        epochs=None if meta["epochs"] is None else int(meta["epochs"]),
        steps=None if meta["steps"] is None else int(meta["steps"]), speakers=int(config.get("speakers", 1)),
        content_dim=None if config.get("content_dim") is None else int(config["content_dim"]),
        size=str(config.get("size") or meta["engine"]),
        minutes_of_data=_float_or_none(meta["minutes_of_data"]), file_bytes=path.stat().st_size,
        author=str(meta.get("author") or ""), created=str(meta.get("created") or ""),
        median_f0_hz=_float_or_none(meta.get("median_f0_hz")))
