"""What the demo converts and into whom: LJ Speech (shipped) as the target, another real speaker as the source.

- Target: `voiceapp/demo/data/ljspeech/` (32 clips, 3.7 min, public domain; see its README). The first
  `DemoConfig.reference_clips` are held out as the reference that speaker similarity is measured against.
- Source, the first that is there: the user's own file (`--source`); Allison Smith's voice prompts from Debian's
  `asterisk-core-sounds-en-g722` (a real US speaker, CC BY-SA 3.0, installed with apt, not shipped here);
  else eSpeak NG speaking two sentences (and the report says why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError
from voiceapp.progress import NEVER, CancelToken

log = logging.getLogger(__name__)

LJ_DIR = Path(__file__).resolve().parent / "data" / "ljspeech"
ALLISON_PACKAGE = "asterisk-core-sounds-en-g722"
ALLISON_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ALLISON_PROMPTS: tuple[str, ...] = ("vm-intro", "tt-allbusy", "demo-thanks", "tt-weasels")   # 23 s together
PROMPT_GAP_S = 0.4
SOURCE_RATE = 16_000                                       # the prompts are G.722 (16 kHz)
MAX_SOURCE_FILE_S = 30 * 60.0                              # a longer --source file is refused (memory)


@dataclass
class Material:
    train_files: list[Path]            # LJ clips to train on
    reference_files: list[Path]        # held-out LJ clips (similarity reference)
    source: np.ndarray                 # mono float32
    source_rate: int
    source_label: str                  # who speaks the source, for the report
    source_kind: str                   # "file" | "allison" | "espeak"
    notes: list[str] = field(default_factory=list)


def lj_files(folder: Path = LJ_DIR) -> list[Path]:
    """The shipped LJ Speech clips, in their dataset order."""
    files = sorted(folder.glob("LJ*.flac"))
    if not files:
        raise InputError(f"The demo's LJ Speech clips are missing from {folder}; restore them with "
                         "`git checkout -- voiceapp/demo/data`.")
    return files


def split_target(reference_clips: int, target_clips: int | None, folder: Path = LJ_DIR) -> tuple[list[Path],
                                                                                                list[Path]]:
    """(train files, reference files): the first `reference_clips` are held out, then up to `target_clips`."""
    files = lj_files(folder)
    reference, rest = files[:reference_clips], files[reference_clips:]
    train = rest[:target_clips] if target_clips is not None else rest
    if not train:
        raise InputError(f"No LJ clip is left to train on ({len(files)} clips, {reference_clips} held out).")
    return train, reference


def load_clips(paths: list[Path], sample_rate: int) -> np.ndarray:
    """The clips decoded at `sample_rate` and joined end to end."""
    from voiceapp.audio import load_audio

    return np.concatenate([load_audio(p, sample_rate)[0] for p in paths])


def allison_source(folder: Path = ALLISON_DIR, prompts: tuple[str, ...] = ALLISON_PROMPTS) -> np.ndarray | None:
    """Allison Smith's prompts joined with short gaps at 16 kHz; None when the Debian package is not installed."""
    from voiceapp.audio import load_audio

    paths = [folder / f"{name}.g722" for name in prompts]
    if not all(p.is_file() for p in paths):
        return None
    gap = np.zeros(int(PROMPT_GAP_S * SOURCE_RATE), np.float32)
    pieces = []
    for path in paths:
        pieces += [load_audio(path, SOURCE_RATE)[0], gap]
    return np.concatenate(pieces[:-1])


def espeak_source(voice: str) -> tuple[np.ndarray, int]:
    """eSpeak NG speaking the demo's source sentences in `voice`."""
    from voiceapp.demo.text import SOURCE_SENTENCES
    from voiceapp.tts.engines import get_engine

    engine = get_engine("espeak")
    engine.voice(voice)  # unknown voice -> InputError now
    return engine.synthesize(" ".join(SOURCE_SENTENCES), voice)


def load_source(source_file: str | None, fallback_voice: str, max_s: float,
                allison_dir: Path = ALLISON_DIR) -> tuple[np.ndarray, int, str, str, list[str]]:
    """(audio, rate, label, kind, notes) of the voice to convert; see the module docstring for the order."""
    from voiceapp.audio import load_audio

    notes: list[str] = []
    if source_file:
        path = Path(source_file).expanduser()
        audio, rate = load_audio(path, None, max_duration_s=MAX_SOURCE_FILE_S)
        label, kind = f"your recording `{path.name}`", "file"
    else:
        prompts = allison_source(allison_dir)
        if prompts is not None:
            audio, rate = prompts, SOURCE_RATE
            label, kind = (f"Allison Smith (Asterisk voice prompts, Debian `{ALLISON_PACKAGE}`, CC BY-SA 3.0)",
                           "allison")
        else:
            audio, rate = espeak_source(fallback_voice)
            label, kind = f"eSpeak NG voice `{fallback_voice}` (synthetic)", "espeak"
            notes.append(f"The real source speaker was not found ({allison_dir} is missing), so eSpeak NG's "
                         f"`{fallback_voice}` speaks the source instead. For a real speaker, install "
                         f"`{ALLISON_PACKAGE}` (`sudo apt install {ALLISON_PACKAGE}`) or pass your own "
                         "recording with `--source FILE`.")
    if len(audio) > max_s * rate:
        notes.append(f"The source was cut to its first {max_s:.0f} s.")
        audio = audio[:int(max_s * rate)]
    if len(audio) < 0.5 * rate or float(np.abs(audio).max(initial=0.0)) < 1e-3:
        raise InputError(f"The source ({label}) is shorter than 0.5 s or silent; give a recording of speech.")
    return np.asarray(audio, np.float32), int(rate), label, kind, notes


def make_material(cfg: Any, cancel: CancelToken = NEVER) -> Material:
    """The target's files and the decoded source for `cfg` (a DemoConfig)."""
    train, reference = split_target(cfg.reference_clips, cfg.target_clips)
    cancel.raise_if_set()
    audio, rate, label, kind, notes = load_source(cfg.source, cfg.fallback_voice, cfg.source_max_s,
                                                  Path(cfg.allison_dir))
    for note in notes:
        log.warning("%s", note)
    return Material(train, reference, audio, rate, label, kind, notes)
