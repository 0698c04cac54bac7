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
from dataclasses import dataclass
from typing import Callable

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError

log = logging.getLogger(__name__)

RATE_PERCENT_MIN = -50
RATE_PERCENT_MAX = 100


@dataclass(frozen=True)
class TtsVoice:
    """One voice of an engine. `id` is what `--voice` and the dropdown take."""

    id: str
    name: str
    language: str = ""
    gender: str = ""  # "male", "female" or "" when the engine does not say

    @property
    def label(self) -> str:
        extra = ", ".join(x for x in (self.language, self.gender) if x)
        return f"{self.name} ({extra})" if extra else self.name


def rate_factor(rate_percent: float) -> float:
    """Speaking-rate multiplier for a percentage change: +50 -> 1.5 x as fast, -50 -> half as fast."""
    if not RATE_PERCENT_MIN <= rate_percent <= RATE_PERCENT_MAX:
        raise InputError(f"Speaking rate {rate_percent:+g} % is out of range; choose "
                         f"{RATE_PERCENT_MIN}..{RATE_PERCENT_MAX} %.")
    return 1.0 + rate_percent / 100.0


class TtsEngine:
    """Base class. Subclasses set the class attributes and implement `voices` and `_synthesize`."""

    name: str = ""
    label: str = ""
    online: bool = False          # True: the text is sent to a server on the internet
    online_notice: str = ""       # shown next to the engine when `online`
    requirement: str = ""         # what makes it available, shown when it is not
    default_voice: str = ""
    needs_workspace: bool = False  # constructor takes the Workspace (engines that find voice files on disk)

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        """Whether this engine can run here (program, package or voice files present)."""
        raise NotImplementedError

    def voices(self) -> list[TtsVoice]:
        raise NotImplementedError

    def voice(self, voice_id: str | None) -> TtsVoice:
        """The voice with this id (the default voice for None/""), or `InputError` naming some valid ones."""
        wanted = (voice_id or self.default_voice or "").strip()
        voices = self.voices()
        for v in voices:
            if v.id == wanted:
                return v
        for v in voices:  # forgiving: case-insensitive id, or the display name
            if wanted.lower() in (v.id.lower(), v.name.lower()):
                return v
        sample = ", ".join(v.id for v in voices[:12])
        raise InputError(f"Unknown voice {wanted!r} for the {self.name} engine. Some of its {len(voices)} voices: "
                         f"{sample}. List them all with `python -m voiceapp tts --list-voices --engine {self.name}`.")

    def synthesize(self, text: str, voice_id: str | None = None, rate_percent: float = 0.0) -> tuple[np.ndarray, int]:
        """Speak `text` (one sentence or a few); returns (mono float32 audio, sample rate)."""
        if not text or not text.strip():
            raise InputError("There is no text to speak; type a sentence or upload a .txt file.")
        voice = self.voice(voice_id)
        audio, sample_rate = self._synthesize(text.strip(), voice, rate_factor(rate_percent))
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        return audio, int(sample_rate)

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        raise NotImplementedError


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
