"""Silence slicer: cut speech at pauses, with RVC's parameters (threshold -42 dB, 1.5 s min length,
400 ms min interval, 15 ms hop, 500 ms of silence kept), and fixed-length chunking after it.

The algorithm is the one RVC uses (openvpi's audio-slicer): frame RMS; a silence long enough to cut
is cut at its quietest frame, keeping at most `max_sil_kept_ms` of it on each side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceapp.audio.dsp import frame_rms
from voiceapp.errors import ConfigError


@dataclass(frozen=True)
class SlicerConfig:
    threshold_db: float = -42.0      # frames quieter than this are silence
    min_length_ms: int = 1500        # a slice is at least this long (except the whole file when shorter)
    min_interval_ms: int = 400       # a silence must be this long to cut there
    hop_ms: int = 15                 # analysis hop
    max_sil_kept_ms: int = 500       # silence kept around a cut

    def __post_init__(self) -> None:
        if not (self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0):
            raise ConfigError("Slicer needs min_length_ms >= min_interval_ms >= hop_ms > 0, got "
                              f"{self.min_length_ms}, {self.min_interval_ms}, {self.hop_ms}.")
        if self.max_sil_kept_ms < self.hop_ms:
            raise ConfigError(f"Slicer max_sil_kept_ms ({self.max_sil_kept_ms}) must be >= hop_ms ({self.hop_ms}).")
        if not -100.0 <= self.threshold_db <= 0.0:
            raise ConfigError(f"Slicer threshold_db must be in [-100, 0], got {self.threshold_db}.")


def _argmin(values: np.ndarray, start: int, stop: int) -> int:
    segment = values[start:stop]
    return start + int(np.argmin(segment)) if len(segment) else start


def find_silences(audio: np.ndarray, sample_rate: int, cfg: SlicerConfig) -> tuple[list[tuple[int, int]], int, int]:
    """Return (silence tags in frames, frame count, hop in samples): the spans to cut out."""
    hop = round(sample_rate * cfg.hop_ms / 1000)
    min_interval_samples = sample_rate * cfg.min_interval_ms / 1000
    win = min(round(min_interval_samples), 4 * hop)
    min_length = round(sample_rate * cfg.min_length_ms / 1000 / hop)
    min_interval = round(min_interval_samples / hop)
    max_kept = round(sample_rate * cfg.max_sil_kept_ms / 1000 / hop)
    threshold = 10 ** (cfg.threshold_db / 20.0)
    rms = frame_rms(audio, win, hop)
    total = len(rms)
    if (len(audio) + hop - 1) // hop <= min_length:
        return [], total, hop
    tags: list[tuple[int, int]] = []
    silence_start: int | None = None
    clip_start = 0
    for i, level in enumerate(rms):
        if level < threshold:
            if silence_start is None:
                silence_start = i
            continue
        if silence_start is None:
            continue
        leading = silence_start == 0 and i > max_kept
        middle = i - silence_start >= min_interval and i - clip_start >= min_length
        if not leading and not middle:
            silence_start = None
            continue
        if i - silence_start <= max_kept:
            pos = _argmin(rms, silence_start, i + 1)
            tags.append((0, pos) if silence_start == 0 else (pos, pos))
            clip_start = pos
        elif i - silence_start <= 2 * max_kept:
            pos = _argmin(rms, i - max_kept, silence_start + max_kept + 1)
            pos_l = _argmin(rms, silence_start, silence_start + max_kept + 1)
            pos_r = _argmin(rms, i - max_kept, i + 1)
            if silence_start == 0:
                tags.append((0, pos_r))
                clip_start = pos_r
            else:
                tags.append((min(pos_l, pos), max(pos_r, pos)))
                clip_start = max(pos_r, pos)
        else:
            pos_l = _argmin(rms, silence_start, silence_start + max_kept + 1)
            pos_r = _argmin(rms, i - max_kept, i + 1)
            tags.append((0, pos_r) if silence_start == 0 else (pos_l, pos_r))
            clip_start = pos_r
        silence_start = None
    if silence_start is not None and total - silence_start >= min_interval:
        end = min(total, silence_start + max_kept)
        tags.append((_argmin(rms, silence_start, end + 1), total + 1))
    return tags, total, hop


def slice_audio(audio: np.ndarray, sample_rate: int, cfg: SlicerConfig = SlicerConfig()) -> list[tuple[int, int]]:
    """Cut mono `audio` at its silences. Returns (start, end) sample spans of the sounding parts.

    A recording with no silence long enough comes back as one span; one that is silence throughout
    comes back as no span.
    """
    tags, total, hop = find_silences(audio, sample_rate, cfg)
    n = len(audio)
    if not tags:
        return [(0, n)] if n else []
    spans: list[tuple[int, int]] = []
    if tags[0][0] > 0:
        spans.append((0, tags[0][0] * hop))
    for (_, left_end), (right_start, _) in zip(tags[:-1], tags[1:]):
        spans.append((left_end * hop, right_start * hop))
    if tags[-1][1] < total:
        spans.append((tags[-1][1] * hop, total * hop))
    return [(max(0, a), min(n, b)) for a, b in spans if min(n, b) > max(0, a)]


@dataclass(frozen=True)
class ChunkConfig:
    chunk_s: float = 3.7            # RVC's training slice length (0 or None: no chunking)
    overlap_s: float = 0.3

    def __post_init__(self) -> None:
        if self.chunk_s and not 0 <= self.overlap_s < self.chunk_s:
            raise ConfigError(f"Chunk overlap ({self.overlap_s} s) must be >= 0 and shorter than the "
                              f"chunk ({self.chunk_s} s).")


def chunk_spans(length: int, sample_rate: int, cfg: ChunkConfig = ChunkConfig()) -> list[tuple[int, int]]:
    """Cut `length` samples into chunks of `chunk_s` stepping `chunk_s - overlap_s`, RVC's way.

    A chunk is cut while more than `chunk_s + overlap_s` remains; the remainder is the last chunk.
    """
    if not cfg.chunk_s or length <= 0:
        return [(0, length)] if length > 0 else []
    step = int(sample_rate * (cfg.chunk_s - cfg.overlap_s))
    size = int(sample_rate * cfg.chunk_s)
    tail = (cfg.chunk_s + cfg.overlap_s) * sample_rate
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        if length - start > tail:
            spans.append((start, start + size))
            start += step
        else:
            spans.append((start, length))
            return spans
