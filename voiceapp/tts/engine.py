"""The base of every text-to-speech engine: `TtsEngine`, `TtsVoice` and the speaking-rate range.

Engine modules (`espeak_lib`, `command_engines`, `optional_engines`) subclass `TtsEngine`; the registry that
names them is `voiceapp.tts.engines`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceapp.errors import InputError

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
