"""The voice-model store: `models/voices/<name>/<name>.pth|.safetensors` (+ an `.index`).

One listing rule (`voice_files`, `list_models`), one name/path resolution (`resolve_voice_path`) and ONE
index-matching rule (`find_index`), used by the Models tab, the Inference and TTS tabs and the CLI. Also:
info, rename, delete, export as a zip. Importing lives in `voiceapp.voices.importer`.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceapp.errors import InputError, MissingArtifactError, VoiceAppError
from voiceapp.progress import Progress, no_progress
from voiceapp.voices.file import VOICE_SUFFIXES, VoiceInfo, is_voice_file, read_voice_info
from voiceapp.workspace import Workspace, atomic_path, file_sha256, sanitize_name

log = logging.getLogger(__name__)

INDEX_SUFFIX = ".index"


@dataclass(frozen=True)
class VoiceEntry:
    """A model folder's main voice file (`<name>.pth` or `<name>.safetensors`) and its index."""

    name: str
    path: Path
    index: Path | None
    size_bytes: int


# --- listing -------------------------------------------------------------------------------------------------


def main_voice_file(folder: Path) -> Path | None:
    """`<folder>/<folder name>.pth` or `.safetensors`, the newer when both are there (an experiment trained
    with rvc and then with quick, or the other way round: the model trained last); None when neither is."""
    found = [folder / f"{folder.name}{suffix}" for suffix in VOICE_SUFFIXES]
    found = [p for p in found if p.is_file()]
    return max(found, key=_mtime) if found else None


def voice_files(ws: Workspace) -> list[Path]:
    """Every voice file `models/voices/<name>/*.pth|*.safetensors` (intermediate exports such as
    `<name>_e10_s100.pth` included), sorted by folder then file name."""
    if not ws.voices_dir.is_dir():
        return []
    found = [p for folder in ws.voices_dir.iterdir() if folder.is_dir() and not folder.name.startswith(".")
             for p in folder.iterdir() if is_voice_file(p)]
    return sorted(found, key=lambda p: (p.parent.name, p.name))


def list_models(ws: Workspace) -> list[VoiceEntry]:
    """Every folder `models/voices/<name>/` that holds `<name>.pth` or `<name>.safetensors`."""
    if not ws.voices_dir.is_dir():
        return []
    out = []
    for folder in sorted(ws.voices_dir.iterdir(), key=lambda p: p.name.lower()):
        path = main_voice_file(folder) if folder.is_dir() and not folder.name.startswith(".") else None
        if path is not None:
            out.append(VoiceEntry(folder.name, path, find_index(path, ws), path.stat().st_size))
    return out


def voice_choices(ws: Workspace) -> list[str]:
    return [m.name for m in list_models(ws)]


def get_model(ws: Workspace, name: str) -> VoiceEntry:
    folder = ws.voice_dir(name)
    path = main_voice_file(folder)
    if path is None:
        known = [m.name for m in list_models(ws)]
        raise MissingArtifactError(f"No voice model named {name!r} in {ws.voices_dir}; known: {known or 'none'}. "
                                   f"Import one in the Models tab or with `python -m voiceapp models import`.")
    return VoiceEntry(folder.name, path, find_index(path, ws), path.stat().st_size)


def resolve_voice_path(name_or_path: str | Path, ws: Workspace | None = None) -> Path:
    """A voice file path as given, or the main file of models/voices/NAME/; `MissingArtifactError` naming the
    choices."""
    path = Path(str(name_or_path)).expanduser()
    if path.suffix.lower() in VOICE_SUFFIXES and path.is_file():
        return path
    if ws is not None and str(name_or_path).strip():
        try:
            candidate = main_voice_file(ws.voice_dir(str(name_or_path).strip()))
        except VoiceAppError:
            candidate = None
        if candidate is not None:
            return candidate
    known = voice_choices(ws) if ws is not None else []
    raise MissingArtifactError(f"Voice model {str(name_or_path)!r} not found. "
                               + (f"Available: {', '.join(known)}. " if known else "No models in models/voices/. ")
                               + "Give a model name or the path of a .pth file (import one in the Models tab).")


# --- the index of a model ------------------------------------------------------------------------------------


def is_usable_index(path: Path) -> bool:
    """An `.index` file that is not hidden and not RVC's empty `trained_*.index`."""
    return (path.suffix.lower() == INDEX_SUFFIX and path.is_file() and not path.name.startswith(".")
            and not path.name.lower().startswith("trained_"))


def find_index(voice_path: Path | str, ws: Workspace | None = None) -> Path | None:
    """The index that belongs to a voice file, as RVC/Applio pick it; the one rule of the whole app.

    In the model's folder: `<model>.index`; else the usable indexes whose name contains the model's name
    (RVC's `added_*` first, then the newest); else the only usable index there. Then the same by name in
    `logs/<model>/` (an experiment's index before it is copied). None when nothing matches or it is ambiguous.
    """
    voice_path = Path(voice_path)
    name = voice_path.parent.name or voice_path.stem
    stems = {s.lower() for s in (name, voice_path.stem) if s}
    folders = [voice_path.parent]
    if ws is not None:
        try:
            folders.append(ws.experiment(name).root)
        except VoiceAppError:
            pass
    for folder in folders:
        if not folder.is_dir():
            continue
        if folder == voice_path.parent and is_usable_index(exact := folder / f"{name}{INDEX_SUFFIX}"):
            return exact
        found = [p for p in folder.glob(f"*{INDEX_SUFFIX}") if is_usable_index(p)]
        named = [p for p in found if any(s in p.name.lower() for s in stems)]
        if named:
            return min(named, key=lambda p: (not p.name.startswith("added_"), -_mtime(p), p.name))
        if len(found) == 1 and folder == voice_path.parent:
            return found[0]
    return None


def list_indexes(ws: Workspace) -> list[Path]:
    """Every usable `.index` under models/voices/ and logs/, sorted."""
    found: list[Path] = []
    for root in (ws.voices_dir, ws.logs_dir):
        if root.is_dir():
            found += [p for p in root.rglob(f"*{INDEX_SUFFIX}") if is_usable_index(p)]
    return sorted(found, key=lambda p: (p.parent.name, p.name))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --- info ----------------------------------------------------------------------------------------------------


def info_fields(info: VoiceInfo) -> dict[str, Any]:
    """The keys `models info --json` and the Models tab show (a stable CLI contract) from a `VoiceInfo`."""
    return {"engine": info.engine, "version": info.version, "sample_rate": info.sample_rate, "f0": info.use_f0,
            "epochs": info.epochs, "step": info.steps, "encoder": info.encoder, "content_dim": info.content_dim,
            "speakers": info.speakers, "author": info.author, "created": info.created, "model_name": info.name,
            "vocoder": info.vocoder, "info": info.info, "net_size": info.size,
            "rvc_compatible": info.rvc_compatible, "apps": list(info.apps),
            "minutes_of_data": info.minutes_of_data}


def model_info(ws: Workspace, name: str, with_hash: bool = True) -> dict:
    """Info of one model: its `VoiceInfo` (as `info_fields`) + name, paths, size, sha256 and the index."""
    entry = get_model(ws, name)
    info = {"name": entry.name, **info_fields(read_voice_info(entry.path)), "size_bytes": entry.size_bytes,
            "path": str(entry.path), "index": str(entry.index) if entry.index else None,
            "index_present": entry.index is not None,
            "index_bytes": entry.index.stat().st_size if entry.index else None}
    if with_hash:
        info["sha256"] = file_sha256(entry.path)
    return info


def pitch_hint(median_f0_hz: float) -> str:
    """Which transpose suits a voice of this median pitch, from a typical male (~120 Hz) or female (~210 Hz) one."""
    import math

    def steps(source_hz: float) -> int:
        return max(-24, min(24, int(round(12 * math.log2(median_f0_hz / source_hz)))))

    return f"transpose about {steps(120):+d} from a male voice, {steps(210):+d} from a female one"


def describe_model(path: Path | str) -> str:
    """One markdown line about a voice file, read cheaply from its metadata."""
    path = Path(path)
    info = read_voice_info(path)
    parts = [f"**{path.stem}**", info.version, f"{info.sample_rate} Hz", "pitch" if info.use_f0 else "no pitch"]
    if info.engine != "rvc":
        parts = [f"**{path.stem}**", f"{info.engine} engine (Voiceapp only)", f"{info.sample_rate} Hz"]
        if info.minutes_of_data:
            parts.append(f"{info.minutes_of_data:.1f} min of the target")
        if info.engine == "quick" and info.steps:
            parts.append(f"{info.steps} training steps")
        if info.median_f0_hz:
            parts.append(f"median pitch {info.median_f0_hz:.0f} Hz ({pitch_hint(info.median_f0_hz)})")
        return " · ".join(parts)
    if info.encoder:
        parts.append(f"encoder {info.encoder}")
    if info.epochs is not None:
        parts.append(f"epoch {info.epochs}")
    return " · ".join(parts)   # no speaker count: RVC files have 109 slots whether one or many were trained


# Below these a voice is undertrained: an rvc model needs tens of epochs (hundreds from scratch), a quick voice
# ~1000 steps (bench/RESULTS.md quality: 4217 steps in 10 CPU minutes gave similarity 0.80), and a voice needs a
# minute or more of the target's speech.
UNDERTRAINED_RVC_EPOCHS = 20
UNDERTRAINED_QUICK_STEPS = 1000
TOO_LITTLE_DATA_MINUTES = 1.0


def quality_hint(path: Path | str, falling: tuple[float, float] | None = None) -> str:
    """A sentence warning that the voice in `path` is undertrained or has too little data; "" when it is not
    (or cannot be told). `falling`: (earlier, last) validation loss when it was still falling at the saves before
    this file (`train.monitor.validation_still_falling`), which means more training helps."""
    from voiceapp.errors import VoiceAppError

    path = Path(path)
    try:
        info = read_voice_info(path)
    except VoiceAppError:
        return ""
    problems = []
    trend = falling
    if trend is not None:
        problems.append(f"its validation loss was still falling when it was saved ({trend[0]:.3f} → {trend[1]:.3f} "
                        f"over the last saves)")
    if info.engine == "rvc" and info.epochs is not None and info.epochs < UNDERTRAINED_RVC_EPOCHS:
        problems.append(f"it trained only {info.epochs} epoch(s) (RVC models need {UNDERTRAINED_RVC_EPOCHS}+ from "
                        f"a pretrained base, hundreds from scratch)")
    if info.engine == "quick" and info.steps is not None and info.steps < UNDERTRAINED_QUICK_STEPS:
        problems.append(f"it trained only {info.steps} steps (about {UNDERTRAINED_QUICK_STEPS}+ give a recognisable "
                        f"voice)")
    if info.minutes_of_data is not None and info.minutes_of_data < TOO_LITTLE_DATA_MINUTES:
        problems.append(f"it learned from {info.minutes_of_data:.1f} min of the target's speech (give it "
                        f"{TOO_LITTLE_DATA_MINUTES:g} min or more)")
    if not problems:
        return ""
    return ("Quality hint: this voice is undertrained — " + "; ".join(problems) + ". Expect a buzzy or unclear "
            "result; train longer (Train › Resume continues from the last save) or add recordings.")


# --- managing ------------------------------------------------------------------------------------------------


def rename_model(ws: Workspace, old: str, new: str) -> Path:
    """Rename the folder and the files named after the model (`old.pth`, `old.index`, `old_best.pth`, ...)."""
    entry = get_model(ws, old)
    new_name = sanitize_name(new, "model name")
    target = ws.voice_dir(new_name)
    if target.exists() and target != entry.path.parent:
        raise InputError(f"A voice model named {new_name!r} already exists; choose another name or delete it first.")
    folder = entry.path.parent
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.stem == entry.name or path.name.startswith(f"{entry.name}_")):
            path.rename(folder / (new_name + path.name[len(entry.name):]))
    folder.rename(target)
    log.info("renamed voice model %s -> %s", entry.name, new_name)
    return target / f"{new_name}{entry.path.suffix}"


def delete_model(ws: Workspace, name: str, confirm: bool = False) -> None:
    """Delete `models/voices/<name>/` and everything in it; needs `confirm=True`."""
    entry = get_model(ws, name)
    if not confirm:
        raise InputError(f"Deleting {entry.name!r} removes {entry.path.parent} and everything in it; confirm first "
                         f"(tick the confirmation box, or pass --yes).")
    folder = entry.path.parent
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
    members = [(entry.path, f"{entry.name}{entry.path.suffix}")]
    if entry.index is not None:
        members.append((entry.index, entry.index.name))
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i, (path, arcname) in enumerate(members):
            progress(i / len(members), f"adding {arcname}")
            zf.write(path, arcname)
    progress(1.0, f"exported {out.name}")
    return out
