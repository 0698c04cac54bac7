"""The voice-model store: `models/voices/<name>/<name>.pth` (+ `<name>.index`).

Import a community model (`.pth`, `.index`, or a `.zip` of them, from disk or an http(s) URL), list, show
info, rename, delete and export as a zip. Every `.pth` is opened with `torch.load(weights_only=True)`, so a
pickle that needs code is refused before anything is written; zips are checked member by member (no `..`,
no absolute paths, no links, caps on count and unpacked size, no zip bombs) and refused as a whole when one
member is bad. Work happens in `models/.downloads/`; the finished folder is renamed into place.
Importing lives in `voiceapp.modelstore_import` (`import_model`, `download_url`).
"""

from __future__ import annotations

import logging
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.progress import Progress, no_progress
from voiceapp.workspace import Workspace, atomic_path, sanitize_name

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pth", ".pt")
INDEX_SUFFIX = ".index"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoreLimits:
    """Caps that keep a hostile or broken archive or download from filling the disk."""

    max_zip_members: int = 200
    max_unpacked_bytes: int = 4 * 1024**3       # all members together, as declared and as actually read
    max_compression_ratio: float = 200.0        # a member above 1 MB that unpacks more than this: a zip bomb
    max_download_bytes: int = 4 * 1024**3
    timeout_s: float = 60.0


@dataclass(frozen=True)
class VoiceEntry:
    name: str
    pth: Path
    index: Path | None
    size_bytes: int


@dataclass
class ImportResult:
    name: str
    pth: Path | None
    index: Path | None
    replaced: bool = False
    notes: list[str] = field(default_factory=list)


# --- reading model files ----------------------------------------------------------------------------------


def read_model_file(path: Path) -> dict:
    """Load a voice model's dict with `weights_only=True`; InputError for code pickles and non-models."""
    ckpt = _torch_load_safely(Path(path))
    if not isinstance(ckpt, dict):
        raise InputError(f"{Path(path).name} holds a {type(ckpt).__name__}, not an RVC voice model.")
    if "weight" not in ckpt and "model" in ckpt:
        raise InputError(f"{Path(path).name} is a training checkpoint (like G_*.pth / D_*.pth), not a voice model. "
                         f"Import the small model that training exports (models/voices/<exp>/<exp>.pth).")
    config = ckpt.get("config")
    if not isinstance(ckpt.get("weight"), dict) or not isinstance(config, (list, tuple)) or len(config) < 17:
        raise InputError(f"{Path(path).name} is not an RVC voice model (it needs 'weight' and an 18-entry "
                         f"'config'); found keys {sorted(map(str, ckpt))[:8]}.")
    return ckpt


def _torch_load_safely(path: Path) -> object:
    import pickle

    import torch

    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # an unknown opcode: damaged, or not a torch file at all
            why = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
            raise InputError(f"{path.name} is not a readable PyTorch file ({why.group(1)[:100] if why else 'bad pickle'}); "
                             f"it was refused and nothing was written. Download it again.") from err
        raise InputError(f"{path.name} contains Python code besides weights (a pickle that would run code when "
                         f"loaded), so it was refused and nothing was written. Only import models from people "
                         f"you trust; a normal RVC model loads without code.") from err
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(f"{path.name} is not a readable PyTorch file ({type(err).__name__}: {err}). "
                         f"It may be truncated; download it again.") from err


def summarize(ckpt: dict) -> dict:
    """Version, sample rate, f0, epochs, encoder, ... of a loaded voice model dict (RVC and Applio keys)."""
    config, weight = list(ckpt["config"]), ckpt["weight"]
    info_text = str(ckpt.get("info", "") or "")
    epochs = ckpt.get("epoch")
    if epochs is None and (m := re.match(r"(\d+)\s*epoch", info_text)):
        epochs = int(m.group(1))
    emb_g, emb_phone = weight.get("emb_g.weight"), weight.get("enc_p.emb_phone.weight")
    return {
        "version": str(ckpt.get("version", "v1")),
        "sample_rate": _sample_rate(ckpt, config),
        "f0": bool(int(ckpt.get("f0", 1))),
        "epochs": None if epochs is None else int(epochs),
        "step": None if ckpt.get("step") is None else int(ckpt["step"]),
        "encoder": str(ckpt.get("embedder_model") or "contentvec"),
        "content_dim": None if emb_phone is None else int(emb_phone.shape[1]),
        "speakers": None if emb_g is None else int(emb_g.shape[0]),
        "author": str(ckpt.get("author", "") or ""),
        "created": str(ckpt.get("creation_date", "") or ""),
        "model_name": str(ckpt.get("model_name", "") or ""),
        "vocoder": str(ckpt.get("vocoder", "HiFi-GAN") or "HiFi-GAN"),
        "info": info_text,
    }


def read_metadata(path: Path) -> dict:
    """summarize()'s keys for a model file, through the networks' reader when it is installed."""
    try:
        from voiceapp.nets.voicefile import read_voice_metadata
    except ImportError:
        return summarize(read_model_file(path))
    meta = read_voice_metadata(path)
    return {"version": meta["version"], "sample_rate": meta["sample_rate"], "f0": bool(meta["use_f0"]),
            "epochs": meta.get("epoch"), "step": meta.get("step"), "encoder": meta["embedder"],
            "content_dim": meta.get("content_dim"), "speakers": meta.get("n_speakers"),
            "author": str(meta.get("author") or ""), "created": str(meta.get("creation_date") or ""),
            "model_name": str(meta.get("name") or ""), "vocoder": str(meta.get("vocoder") or ""),
            "info": str(meta.get("info") or ""), "net_size": meta.get("size"),
            "rvc_compatible": meta.get("rvc_compatible")}


def _sample_rate(ckpt: dict, config: list) -> int | None:
    try:
        return int(config[-1])
    except (TypeError, ValueError, IndexError):
        pass
    sr = str(ckpt.get("sr", ""))
    return {"32k": 32000, "40k": 40000, "48k": 48000}.get(sr) or (int(sr) if sr.isdigit() else None)


# --- the store ----------------------------------------------------------------------------------------------


def list_models(ws: Workspace) -> list[VoiceEntry]:
    """Every folder `models/voices/<name>/` that holds `<name>.pth`."""
    if not ws.voices_dir.is_dir():
        return []
    out = []
    for folder in sorted(ws.voices_dir.iterdir(), key=lambda p: p.name.lower()):
        pth = folder / f"{folder.name}.pth"
        if folder.is_dir() and not folder.name.startswith(".") and pth.is_file():
            out.append(VoiceEntry(folder.name, pth, find_index(folder), pth.stat().st_size))
    return out


def find_index(folder: Path, name: str | None = None) -> Path | None:
    """The retrieval index of a model folder: `<name>.index`, else RVC's `added_*.index`, else any usable one."""
    name = name or folder.name
    if (folder / f"{name}{INDEX_SUFFIX}").is_file():
        return folder / f"{name}{INDEX_SUFFIX}"
    found = [p for p in folder.glob(f"*{INDEX_SUFFIX}") if p.is_file() and not p.name.startswith(("trained_", "."))]
    found.sort(key=lambda p: (not p.name.startswith("added_"), -p.stat().st_mtime))
    return found[0] if found else None


def get_model(ws: Workspace, name: str) -> VoiceEntry:
    folder = ws.voice_dir(name)
    pth = folder / f"{folder.name}.pth"
    if not pth.is_file():
        known = [m.name for m in list_models(ws)]
        raise MissingArtifactError(f"No voice model named {name!r} in {ws.voices_dir}; known: {known or 'none'}. "
                                   f"Import one in the Models tab or with `python -m voiceapp models import`.")
    return VoiceEntry(folder.name, pth, find_index(folder), pth.stat().st_size)


def model_info(ws: Workspace, name: str, with_hash: bool = True) -> dict:
    """Info of one model: summarize() + name, paths, size, sha256 and the index."""
    from voiceapp.assets import file_sha256

    entry = get_model(ws, name)
    info = {"name": entry.name, **read_metadata(entry.pth), "size_bytes": entry.size_bytes,
            "path": str(entry.pth), "index": str(entry.index) if entry.index else None,
            "index_present": entry.index is not None,
            "index_bytes": entry.index.stat().st_size if entry.index else None}
    if with_hash:
        info["sha256"] = file_sha256(entry.pth)
    return info


def rename_model(ws: Workspace, old: str, new: str) -> Path:
    """Rename the folder and the files named after the model (`old.pth`, `old.index`, `old_best.pth`, ...)."""
    entry = get_model(ws, old)
    new_name = sanitize_name(new, "model name")
    target = ws.voice_dir(new_name)
    if target.exists() and target != entry.pth.parent:
        raise InputError(f"A voice model named {new_name!r} already exists; choose another name or delete it first.")
    folder = entry.pth.parent
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.stem == entry.name or path.name.startswith(f"{entry.name}_")):
            path.rename(folder / (new_name + path.name[len(entry.name):]))
    folder.rename(target)
    log.info("renamed voice model %s -> %s", entry.name, new_name)
    return target / f"{new_name}.pth"


def delete_model(ws: Workspace, name: str, confirm: bool = False) -> None:
    """Delete `models/voices/<name>/` and everything in it; needs `confirm=True`."""
    entry = get_model(ws, name)
    if not confirm:
        raise InputError(f"Deleting {entry.name!r} removes {entry.pth.parent} and everything in it; confirm first "
                         f"(tick the confirmation box, or pass --yes).")
    folder = entry.pth.parent
    if folder.resolve().parent != ws.voices_dir.resolve():
        raise InputError(f"Refusing to delete {folder}: it is not a model folder under {ws.voices_dir}.")
    shutil.rmtree(folder)
    log.info("deleted voice model %s", entry.name)


def export_model(ws: Workspace, name: str, out: Path | str | None = None, progress: Progress = no_progress) -> Path:
    """Write `<name>.pth` and its index into a zip (written to a temporary file, then renamed into place).

    `out` defaults to `outputs/<name>.zip` in the workspace; a folder gets `<name>.zip` inside it.
    """
    entry = get_model(ws, name)
    out = Path(out).expanduser() if out is not None else ws.outputs_dir / f"{entry.name}.zip"
    if out.suffix.lower() != ".zip":
        out = out.with_suffix(".zip") if out.suffix else out / f"{entry.name}.zip"
    members = [(entry.pth, f"{entry.name}.pth")]
    if entry.index is not None:
        members.append((entry.index, entry.index.name))
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i, (path, arcname) in enumerate(members):
            progress(i / len(members), f"adding {arcname}")
            zf.write(path, arcname)
    progress(1.0, f"exported {out.name}")
    return out


def voice_choices(ws: Workspace) -> list[str]:
    return [m.name for m in list_models(ws)]

