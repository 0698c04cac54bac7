"""TTS engines that run a program installed on the system: `espeak-ng`, `flite`, festival's `text2wave`.

Each is available when its program is on PATH. The text goes to the program in a temporary file
(never on the command line, so a text starting with "-" is not taken for an option) and the speech
comes back as a wav file in the same temporary folder.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.tts.engine import TtsEngine, TtsVoice

log = logging.getLogger(__name__)

_TIMEOUT_S = 300


def _run(cmd: list[str], what: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except FileNotFoundError as err:
        raise MissingArtifactError(f"{cmd[0]} is not installed; install it or pick another engine.") from err
    except subprocess.TimeoutExpired as err:
        raise InputError(f"{what} took longer than {_TIMEOUT_S} s; split the text into shorter pieces.") from err
    if done.returncode != 0:
        raise InputError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[:300]}")
    return done.stdout


def _speak_to_wav(text: str, command: callable, what: str) -> tuple[np.ndarray, int]:
    """Write `text` to a file, run `command(text_path, wav_path)`, read the wav back as mono float32."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="voiceapp-tts-") as tmp:
        text_path, wav_path = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
        text_path.write_text(text + "\n", encoding="utf-8")
        _run(command(text_path, wav_path), what)
        if not wav_path.exists() or wav_path.stat().st_size <= 44:
            return np.zeros(0, dtype=np.float32), 16000
        audio, sample_rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sample_rate)


class EspeakCliEngine(TtsEngine):
    name = "espeak-ng-cli"
    label = "eSpeak NG program (system espeak-ng)"
    requirement = "the `espeak-ng` program (Debian/Ubuntu: apt install espeak-ng)"
    default_voice = "en-us"

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        return shutil.which("espeak-ng") is not None

    def voices(self) -> list[TtsVoice]:
        return list(_espeak_cli_voices())

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        wpm = int(round(min(max(175 * rate, 80), 450)))
        return _speak_to_wav(text, lambda t, w: ["espeak-ng", "-b", "1", "-v", voice.id, "-s", str(wpm),
                                                 "-w", str(w), "-f", str(t)], "espeak-ng")


@functools.lru_cache(maxsize=1)
def _espeak_cli_voices() -> tuple[TtsVoice, ...]:
    """Parse `espeak-ng --voices`: Pty, Language, Age/Gender, VoiceName, File, Other languages."""
    voices, seen = [], set()
    for line in _run(["espeak-ng", "--voices"], "espeak-ng --voices").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5 or parts[4].startswith("mb/") or parts[1] in seen:  # mbrola voices need mbrola
            continue
        seen.add(parts[1])
        gender = {"M": "male", "F": "female"}.get(parts[2].split("/")[-1], "")
        voices.append(TtsVoice(parts[1], parts[3].replace("_", " "), parts[1], gender))
    return tuple(voices)


# Voices flite is built with on Debian; names from `flite -lv`, genders from the CMU voice notes.
_FLITE_GENDERS = {"slt": "female", "awb": "male", "rms": "male", "kal": "male", "kal16": "male", "awb_time": "male"}


class FliteEngine(TtsEngine):
    name = "flite"
    label = "Flite (system flite, English)"
    requirement = "the `flite` program (Debian/Ubuntu: apt install flite)"
    default_voice = "slt"

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        return shutil.which("flite") is not None

    def voices(self) -> list[TtsVoice]:
        return list(_flite_voices())

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        stretch = f"{1.0 / rate:.3f}"
        return _speak_to_wav(text, lambda t, w: ["flite", "-voice", voice.id, "--setf", f"duration_stretch={stretch}",
                                                 "-f", str(t), "-o", str(w)], "flite")


@functools.lru_cache(maxsize=1)
def _flite_voices() -> tuple[TtsVoice, ...]:
    out = _run(["flite", "-lv"], "flite -lv")
    names = out.split(":", 1)[-1].split() if ":" in out else out.split()
    return tuple(TtsVoice(n, n, "en", _FLITE_GENDERS.get(n, "")) for n in names if n != "awb_time")


class FestivalEngine(TtsEngine):
    name = "festival"
    label = "Festival (system festival)"
    requirement = "festival's `text2wave` program and a voice (Debian/Ubuntu: apt install festival festvox-kallpc16k)"

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        return shutil.which("text2wave") is not None and bool(_festival_voices())

    def voices(self) -> list[TtsVoice]:
        return list(_festival_voices())

    @property
    def default_voice(self) -> str:  # type: ignore[override]
        voices = _festival_voices()
        ids = [v.id for v in voices]
        return "kal_diphone" if "kal_diphone" in ids else (ids[0] if ids else "")

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        if not re.fullmatch(r"[A-Za-z0-9_]+", voice.id):
            raise InputError(f"Festival voice names are letters, digits and '_'; got {voice.id!r}.")
        stretch = f"{1.0 / rate:.3f}"
        return _speak_to_wav(text, lambda t, w: ["text2wave", "-o", str(w), "-eval", f"(voice_{voice.id})",
                                                 "-eval", f"(Parameter.set 'Duration_Stretch {stretch})", str(t)],
                             "festival text2wave")


@functools.lru_cache(maxsize=1)
def _festival_voices() -> tuple[TtsVoice, ...]:
    """Voices installed as /usr/share/festival/voices/<language>/<voice>/ (Debian's layout)."""
    voices = []
    for root in (Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices")):
        if root.is_dir():
            for folder in sorted(root.glob("*/*")):
                if folder.is_dir():
                    voices.append(TtsVoice(folder.name, folder.name, folder.parent.name, ""))
    return tuple(voices)


COMMAND_ENGINES: dict[str, type[TtsEngine]] = {"espeak-ng-cli": EspeakCliEngine, "flite": FliteEngine,
                                               "festival": FestivalEngine}
