"""Which voice model, content encoder, f0 method and index a conversion uses, each loaded once.

Which file a name means and which index belongs to it is the store's rule (`voiceapp.voices.store`).

Loaded objects live in `services.cache` (keyed by file, modification time and device); without
`services` they are loaded for the call only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from voiceapp.errors import InputError
from voiceapp.workspace import user_path

if TYPE_CHECKING:
    from voiceapp.services import Services
    from voiceapp.voices.rvc import VoiceModel
    from voiceapp.voices.world import WorldVoice

log = logging.getLogger(__name__)

_ENCODER_ALIASES = {"hubert_base": "contentvec", "hubert_base.pt": "contentvec", "hubert": "contentvec",
                    "hubert-base": "contentvec", "contentvec_base": "contentvec"}


def cached(services: Services, key: tuple, load: Callable[[], Any]) -> Any:
    return services.cache.get(key, load)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def load_voice(name_or_path: str | Path, services: Services) -> VoiceModel | WorldVoice:
    """The voice model for a name or a .pth/.safetensors path, loaded once per (file, mtime, device) via
    `services.cache`: a `VoiceModel` (rvc engine) or a `WorldVoice` (instant, quick), as the file says."""
    from voiceapp.voices.store import resolve_voice_path

    path = resolve_voice_path(name_or_path, services.workspace).resolve()
    device = services.device
    return cached(services, ("voice", str(path), _mtime(path), device), lambda: load_voice_file(path, device))


def load_voice_file(path: Path, device: str = "cpu") -> VoiceModel | WorldVoice:
    """Load a voice file of any engine (the suffix tells: .pth rvc, .safetensors Voiceapp's own engines)."""
    if path.suffix.lower() == ".safetensors":
        from voiceapp.voices.world import load_world_voice

        return load_world_voice(path, device="cpu")
    from voiceapp.voices.rvc import load_voice_model

    return load_voice_model(path, device=device)


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


def load_encoder_cached(name: str, voice: Any, services: Services) -> Any:
    from voiceapp.features.encoders import load_encoder

    device, workspace = services.device, services.workspace
    key = ("content-encoder", name, voice.version, device, str(workspace.root))  # feature extraction's key too
    return cached(services, key,
                  lambda: load_encoder(name, version=voice.version, device=device, workspace=workspace))


def load_f0_cached(name: str, services: Services) -> Any:
    from voiceapp.features.f0 import load_f0_method

    device, workspace = services.device, services.workspace
    key = ("f0-method", name, device, str(workspace.root))  # feature extraction's key too: one copy for both
    return cached(services, key, lambda: load_f0_method(name, device=device, workspace=workspace))


def load_retrieval_cached(path: Path, services: Services) -> Any:
    from voiceapp.index.retrieval import load_index

    path = Path(path).resolve()
    return cached(services, ("index", str(path), _mtime(path)), lambda: load_index(path))


def default_f0(services: Services) -> str:
    from voiceapp.features.f0 import default_f0_method

    return default_f0_method(services.workspace)


def conversion_output_dir(workspace: Any, model: str | Path, out_folder: str | None = None) -> Path:
    """The folder the user typed, or outputs/converted/<model>/."""
    if out_folder and str(out_folder).strip():
        return user_path(out_folder)
    return workspace.conversions_dir(Path(str(model)).stem)


def conversion_output_path(workspace: Any, model: str | Path, input_path: str | Path, fmt: str) -> Path:
    """outputs/converted/<model>/<input stem>.<fmt>, numbered (`_2`, `_3`, ...) rather than overwriting."""
    folder, stem = conversion_output_dir(workspace, model), Path(str(input_path)).stem
    path, n = folder / f"{stem}.{fmt}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}.{fmt}"
    return path
