"""Text-to-speech engines: one registry that the CLI, the TTS tab and validation read.

An engine turns one piece of text into mono float32 speech at its own sample rate. The default,
`espeak`, is eSpeak NG through the shared library that the `espeakng-loader` package ships, so it
works right after `pip install -r requirements.txt` with nothing downloaded. Other engines appear
only when what they need is on this computer (a program on PATH, an installed package, voice files
under `models/base/piper/`). `edge-tts` sends the text to Microsoft's servers; it is marked
`online=True` and the UI and CLI say so.
"""

from __future__ import annotations

import logging
from typing import Callable

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.tts.engine import TtsEngine

log = logging.getLogger(__name__)


def _registry() -> dict[str, Callable[[], type[TtsEngine]]]:
    # Each entry imports its module only when asked, so listing the names costs nothing.
    def espeak() -> type[TtsEngine]:
        from voiceapp.tts.espeak_lib import EspeakLibraryEngine
        return EspeakLibraryEngine

    def command(name: str) -> Callable[[], type[TtsEngine]]:
        def load() -> type[TtsEngine]:
            from voiceapp.tts import command_engines
            return command_engines.COMMAND_ENGINES[name]
        return load

    def optional(name: str) -> Callable[[], type[TtsEngine]]:
        def load() -> type[TtsEngine]:
            from voiceapp.tts import optional_engines
            return optional_engines.OPTIONAL_ENGINES[name]
        return load

    return {"espeak": espeak, "espeak-ng-cli": command("espeak-ng-cli"), "flite": command("flite"),
            "festival": command("festival"), "piper": optional("piper"), "edge-tts": optional("edge-tts")}


# name -> loader of the engine class; the order is the order of the dropdown.
ENGINES: dict[str, Callable[[], type[TtsEngine]]] = _registry()
DEFAULT_ENGINE = "espeak"


def available_engines(workspace=None) -> list[str]:
    """Names of the engines that can run on this computer now, the offline default first."""
    names = []
    for name, load in ENGINES.items():
        try:
            if load().is_available(workspace):
                names.append(name)
        except Exception as err:  # noqa: BLE001 - a broken optional engine must not hide the others
            log.warning("TTS engine %s is not usable: %s", name, err)
    return names


def get_engine(name: str | None, workspace=None) -> TtsEngine:
    """An engine instance by name (`espeak` for None), or `InputError`/`MissingArtifactError` saying why not."""
    name = (name or DEFAULT_ENGINE).strip()
    if name not in ENGINES:
        raise InputError(f"Unknown TTS engine {name!r}; choose one of {', '.join(ENGINES)} "
                         f"(available here: {', '.join(available_engines(workspace))}).")
    cls = ENGINES[name]()
    if not cls.is_available(workspace):
        raise MissingArtifactError(f"The {name} TTS engine is not available on this computer: {cls.requirement}. "
                                   f"Available here: {', '.join(available_engines(workspace))}.")
    return cls(workspace) if cls.needs_workspace else cls()


def engine_label(name: str) -> str:
    """Dropdown label: the engine's description, with a warning when the text leaves the machine."""
    cls = ENGINES[name]()
    return f"{cls.label} — ONLINE: {cls.online_notice}" if cls.online else cls.label
