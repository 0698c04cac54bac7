"""Pitch of a whole (mirrored) input for conversion, computed block by block so memory stays bounded."""

from __future__ import annotations

from typing import Any

import numpy as np

from voiceapp.infer import steps
from voiceapp.infer.steps import SAMPLE_RATE, WINDOW
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress


def f0_blocks(audio_pad: np.ndarray, f0_fn: Any, block: int, context: int, cancel: CancelToken,
               progress: Progress) -> np.ndarray:
    """f0 (Hz, one value per 160 samples, len//160 + 1 values) of `audio_pad`, computed block by block.

    Each block sees `context` samples of real neighbouring audio on both sides, so the result equals
    one call on the whole signal up to the methods' own edge effects (inside the context).
    """
    n = len(audio_pad)
    n_frames = n // WINDOW + 1
    if n <= block + 2 * context:
        return np.asarray(f0_fn(audio_pad), dtype=np.float32)[:n_frames]
    out = np.zeros(n_frames, dtype=np.float32)
    for start in range(0, n, block):
        cancel.raise_if_set()
        lo, hi = max(0, start - context), min(n, start + block + context)
        f0 = np.asarray(f0_fn(audio_pad[lo:hi]), dtype=np.float32)
        first = (start - lo) // WINDOW
        count = min(block // WINDOW, n_frames - start // WINDOW) if start + block < n else n_frames - start // WINDOW
        piece = steps.fit_frames(f0[first:], count)
        out[start // WINDOW:start // WINDOW + count] = piece
        progress(min(1.0, (start + block) / n), "pitch")
    return out


def pitch_track(audio_pad: np.ndarray, f0_fn: Any, method: str | None, pad: int, transpose_semitones: float,
                filter_radius: int, f0_curve: str | None, block_s: float, cancel: CancelToken = NEVER,
                progress: Progress = no_progress) -> tuple[np.ndarray, np.ndarray]:
    """(coarse pitch int64 1..255, pitchf Hz float32), len(audio_pad)//160 frames each, of the mirrored input.

    RVC's order: f0 -> (harvest and filter_radius > 2: median of 3) -> transpose -> the f0 curve replaces the
    pitch from the end of the left padding (`pad` samples) on -> coarse.
    """
    from scipy import signal

    from voiceapp.features.f0 import coarse_f0, read_f0_csv

    block = int(block_s * SAMPLE_RATE) // WINDOW * WINDOW
    f0 = f0_blocks(audio_pad, f0_fn, block, pad, cancel, progress)
    if method == "harvest" and filter_radius > 2:
        f0 = signal.medfilt(f0, 3).astype(np.float32)
    f0 = steps.transpose_f0(f0, transpose_semitones)
    if f0_curve:
        times_s, curve_hz = read_f0_csv(f0_curve)
        f0 = steps.apply_f0_curve(f0, times_s, curve_hz, pad // WINDOW)
    p_len = len(audio_pad) // WINDOW
    f0 = steps.fit_frames(f0, p_len)
    return np.asarray(coarse_f0(f0), dtype=np.int64), f0.astype(np.float32)
