"""Which voice model, content encoder, f0 method and index a conversion uses, each loaded once.

Loaded objects live in `services.cache` (keyed by file, modification time and device); without
`services` they are loaded for the call only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from voiceapp.errors import InputError, MissingArtifactError, VoiceAppError

log = logging.getLogger(__name__)

_ENCODER_ALIASES = {"hubert_base": "contentvec", "hubert_base.pt": "contentvec", "hubert": "contentvec",
                    "hubert-base": "contentvec", "contentvec_base": "contentvec"}


def cached(services: Any, key: tuple, load: Any) -> Any:
    return services.cache.get(key, load) if services is not None else load()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def resolve_model_path(name_or_path: str | Path, workspace: Any = None) -> Path:
    """A .pth path as given, or models/voices/NAME/NAME.pth; `MissingArtifactError` naming the choices."""
    path = Path(str(name_or_path)).expanduser()
    if path.suffix.lower() == ".pth" and path.is_file():
        return path
    if workspace is not None and str(name_or_path).strip():
        try:
            candidate = workspace.voice_model_path(str(name_or_path).strip())
        except VoiceAppError:
            candidate = None
        if candidate is not None and candidate.is_file():
            return candidate
    known = [p.stem for p in list_voice_models(workspace)] if workspace is not None else []
    raise MissingArtifactError(f"Voice model {str(name_or_path)!r} not found. "
                               + (f"Available: {', '.join(known)}. " if known else "No models in models/voices/. ")
                               + "Give a model name or the path of a .pth file (import one in the Models tab).")


def list_voice_models(workspace: Any) -> list[Path]:
    """Every models/voices/<name>/*.pth, sorted by name."""
    root = workspace.voices_dir
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("*/*.pth") if not p.name.startswith(".")), key=lambda p: (p.parent.name, p.name))


def load_voice(name_or_path: str | Path, services: Any = None, device: str | None = None) -> Any:
    """The `VoiceModel` for a name or .pth path, loaded once per (file, mtime, device) via `services.cache`."""
    from voiceapp.nets.voicefile import load_voice_model

    workspace = services.workspace if services is not None else None
    path = resolve_model_path(name_or_path, workspace).resolve()
    device = device or (services.device if services is not None else "cpu")
    return cached(services, ("voice", str(path), _mtime(path), device), lambda: load_voice_model(path, device=device))


def encoder_name_for(voice: Any, requested: str | None) -> str:
    """The content encoder to use: the model's own (`embedder` metadata; contentvec when absent).

    Raises `InputError` when `requested` names a different encoder than the one the model was trained with.
    """
    trained = str(getattr(voice, "embedder", None) or "contentvec")
    if not requested:
        return trained

    def norm(name: str) -> str:
        base = Path(name).name.lower() if ("/" in name or "\\" in name) else name.lower()
        return _ENCODER_ALIASES.get(base, base)

    if norm(requested) != norm(trained):
        raise InputError(f"{Path(str(voice.path)).name} was trained with {trained!r} content features; converting "
                         f"with {requested!r} would produce noise. Leave the encoder empty (it follows the model) "
                         f"or choose {trained!r}.")
    return requested


def load_encoder_cached(name: str, voice: Any, services: Any) -> Any:
    from voiceapp.features.encoders import load_encoder

    device = services.device if services is not None else "cpu"
    workspace = services.workspace if services is not None else None
    return cached(services, ("encoder", name, voice.version, device),
                   lambda: load_encoder(name, version=voice.version, device=device, workspace=workspace))


def load_f0_cached(name: str, services: Any) -> Any:
    from voiceapp.features.f0 import load_f0_method

    device = services.device if services is not None else "cpu"
    workspace = services.workspace if services is not None else None
    return cached(services, ("f0", name, device), lambda: load_f0_method(name, device=device, workspace=workspace))


def load_retrieval_cached(path: Path, services: Any) -> Any:
    from voiceapp.index.retrieval import load_index

    path = Path(path).resolve()
    return cached(services, ("index", str(path), _mtime(path)), lambda: load_index(path))


def default_f0(services: Any) -> str:
    from voiceapp.features.f0 import default_f0_method

    return default_f0_method(services.workspace if services is not None else None)


def find_index_for(voice_path: Path | str, workspace: Any = None) -> Path | None:
    """The index that belongs to a voice model, as RVC/Applio pick it: an `.index` (not `trained_`) in the
    model's folder (or logs/<name>/) whose name contains the model's name; else the only index in its folder."""
    voice_path = Path(voice_path)
    name = voice_path.parent.name if voice_path.parent.name else voice_path.stem
    stems = {name.lower(), voice_path.stem.lower()}
    folders = [voice_path.parent]
    if workspace is not None:
        try:
            folders.append(workspace.experiment(name).root)
        except VoiceAppError:
            pass
    for folder in folders:
        if not folder.is_dir():
            continue
        found = sorted(p for p in folder.glob("*.index") if "trained" not in p.name.lower()
                       and not p.name.startswith("."))
        named = [p for p in found if any(s and s in p.name.lower() for s in stems)]
        if named:
            return max(named, key=_mtime)
        if len(found) == 1 and folder == voice_path.parent:
            return found[0]
    return None


def list_indexes(workspace: Any) -> list[Path]:
    """Every usable `.index` under models/voices/ and logs/ (not RVC's empty `trained_` ones), sorted."""
    found: list[Path] = []
    for root in (workspace.voices_dir, workspace.logs_dir):
        if root.is_dir():
            found += [p for p in root.rglob("*.index") if "trained" not in p.name.lower() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: (p.parent.name, p.name))


def describe_model(path: Path | str) -> str:
    """One markdown line about a voice model file, read cheaply from its metadata."""
    from voiceapp.nets.voicefile import read_voice_metadata

    path = Path(path)
    info = read_voice_metadata(path)
    parts = [f"**{path.stem}**", str(info.get("version", "?")), f"{info.get('sample_rate', info.get('sr', '?'))} Hz",
             "pitch" if info.get("use_f0", info.get("f0", True)) else "no pitch"]
    if info.get("embedder"):
        parts.append(f"encoder {info['embedder']}")
    if info.get("epoch") is not None:
        parts.append(f"epoch {info['epoch']}")
    if info.get("n_speakers", 1) and int(info.get("n_speakers", 1)) > 1:
        parts.append(f"{info['n_speakers']} speaker slots")
    return " · ".join(parts)


def conversion_output_dir(workspace: Any, model: str | Path, out_folder: str | None = None) -> Path:
    """The folder the user typed, or outputs/converted/<model>/."""
    if out_folder and str(out_folder).strip():
        return Path(str(out_folder).strip().strip('"').strip("'")).expanduser()
    return workspace.conversions_dir(Path(str(model)).stem)


def conversion_output_path(workspace: Any, model: str | Path, input_path: str | Path, fmt: str) -> Path:
    """outputs/converted/<model>/<input stem>.<fmt>, numbered (`_2`, `_3`, ...) rather than overwriting."""
    folder, stem = conversion_output_dir(workspace, model), Path(str(input_path)).stem
    path, n = folder / f"{stem}.{fmt}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}.{fmt}"
    return path
