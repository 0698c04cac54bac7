"""Text splitting and audio joining for long texts.

A long text is spoken one sentence at a time (so progress moves, Stop works, and each conversion
stays short); the pieces are trimmed of the engine's own leading/trailing silence, faded in and out
over a few milliseconds (no clicks: every join starts and ends at zero) and joined with a fixed pause.
"""

from __future__ import annotations

import re

import numpy as np

# A period after these words (or after a single capital letter, an initial) does not end a sentence.
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "fig",
                  "approx", "dept", "mt", "ft", "inc", "ltd", "co"}
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:、，；：—])\s+")
_SPEAKABLE = re.compile(r"\w", re.UNICODE)


def _ends_with_abbreviation(sentence: str) -> bool:
    word = sentence.rsplit(None, 1)[-1].rstrip(".").lower() if sentence.strip() else ""
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _sentences(paragraph: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        candidate = paragraph[start:match.start()].strip()
        if candidate.endswith(".") and _ends_with_abbreviation(candidate):
            continue
        out.append(paragraph[start:match.end()].strip())
        start = match.end()
    out.append(paragraph[start:].strip())
    return [s for s in out if s]


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence longer than `max_chars` at clause punctuation, then at spaces."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for part in (_CLAUSE_END.split(sentence) if _CLAUSE_END.search(sentence) else sentence.split()):
        if pieces and len(pieces[-1]) + 1 + len(part) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {part}"
        elif len(part) > max_chars and _CLAUSE_END.search(sentence):
            pieces.extend(_split_long(part, max_chars))  # a clause still too long: cut it at spaces
        else:
            pieces.append(part)
    return pieces


def split_sentences(text: str, max_chars: int = 250) -> list[str]:
    """Split `text` into sentences of at most `max_chars` characters (a longer sentence is cut at
    commas, then at spaces; a single word longer than that stays whole). Blank lines and line breaks
    end a sentence too. Pieces with nothing to say (only punctuation) are dropped."""
    out: list[str] = []
    for paragraph in re.split(r"\s*\n\s*", text or ""):
        paragraph = re.sub(r"\s+", " ", paragraph).strip()
        for sentence in _sentences(paragraph):
            out.extend(p for p in _split_long(sentence, max_chars) if _SPEAKABLE.search(p))
    return out


def frame_rms_db(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS level (dB re full scale) of consecutive non-overlapping frames of `frame` samples."""
    n = len(audio) // frame
    if n == 0:
        return np.full(1, 20 * np.log10(np.sqrt(np.mean(audio ** 2)) + 1e-10) if len(audio) else -200.0)
    frames = audio[:n * frame].reshape(n, frame).astype(np.float64)
    return 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-10)


def trim_silence(audio: np.ndarray, sample_rate: int, threshold_db: float = -45.0,
                 margin_s: float = 0.03) -> np.ndarray:
    """Cut leading and trailing stretches quieter than `threshold_db` below the peak, keeping `margin_s`."""
    if len(audio) == 0:
        return audio
    frame = max(1, int(0.01 * sample_rate))
    levels = frame_rms_db(audio, frame)
    peak_db = 20 * np.log10(float(np.max(np.abs(audio))) + 1e-10)
    loud = np.flatnonzero(levels > peak_db + threshold_db)
    if len(loud) == 0:
        return audio[:0]
    margin = int(margin_s * sample_rate)
    start = max(0, loud[0] * frame - margin)
    end = min(len(audio), (loud[-1] + 1) * frame + margin)
    return audio[start:end]


def fade(audio: np.ndarray, sample_rate: int, fade_s: float) -> np.ndarray:
    """Raised-cosine fade-in and fade-out over `fade_s` at both ends (shorter for very short audio)."""
    n = min(int(fade_s * sample_rate), len(audio) // 2)
    if n <= 0:
        return audio.astype(np.float32, copy=True)
    out = audio.astype(np.float32, copy=True)
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def join_pieces(pieces: list[np.ndarray], sample_rate: int, pause_s: float = 0.25,
                fade_s: float = 0.01) -> tuple[np.ndarray, list[int]]:
    """Fade each piece in and out and join them with `pause_s` of silence between (with `pause_s` 0,
    consecutive pieces overlap by `fade_s`: a crossfade). Returns (audio, start sample of each piece)."""
    pause = int(round(pause_s * sample_rate))
    overlap = int(round(fade_s * sample_rate)) if pause == 0 else 0
    faded = [fade(p, sample_rate, fade_s) for p in pieces]
    total = sum(len(p) for p in faded) + pause * max(len(faded) - 1, 0)
    out = np.zeros(max(total, 0), dtype=np.float32)
    starts, position = [], 0
    for piece in faded:
        position = max(0, position - min(overlap, len(piece)))
        starts.append(position)
        out[position:position + len(piece)] += piece
        position += len(piece) + pause
    end = starts[-1] + len(faded[-1]) if faded else 0
    return out[:end], starts
