"""Pitch of a whole (mirrored) input for conversion, computed block by block so memory stays bounded."""

from __future__ import annotations

from typing import Any

import numpy as np

from voiceapp.infer import steps
from voiceapp.infer.steps import SAMPLE_RATE, WINDOW
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress


MIN_PARALLEL_BLOCK = 5 * SAMPLE_RATE  # shorter blocks are not worth their extra context


def f0_blocks(audio_pad: np.ndarray, f0_fn: Any, block: int, context: int, cancel: CancelToken = NEVER,
              progress: Progress = no_progress, workers: int = 1) -> np.ndarray:
    """f0 (Hz, one value per 160 samples, len//160 + 1 values) of `audio_pad`, computed block by block.

    Each block sees `context` samples of real neighbouring audio on both sides, so the result equals
    one call on the whole signal up to the methods' own edge effects (inside the context). With
    `workers` > 1 the blocks run in that many threads (pyworld, parselmouth and torch release the GIL),
    and the audio is split so every worker has a block.
    """
    n = len(audio_pad)
    n_frames = n // WINDOW + 1
    if workers > 1:
        share = -(-n // workers)
        block = min(block, max(MIN_PARALLEL_BLOCK, -(-share // WINDOW) * WINDOW))
    starts = list(range(0, n, block))
    if len(starts) == 1 or n <= block + 2 * context:
        return steps.fit_frames(np.asarray(f0_fn(audio_pad), dtype=np.float32), n_frames)

    def one(start: int) -> np.ndarray:
        cancel.raise_if_set()
        lo, hi = max(0, start - context), min(n, start + block + context)
        f0 = np.asarray(f0_fn(audio_pad[lo:hi]), dtype=np.float32)
        count = block // WINDOW if start + block < n else n_frames - start // WINDOW
        return steps.fit_frames(f0[(start - lo) // WINDOW:], count)

    out = np.zeros(n_frames, dtype=np.float32)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(starts)))) as pool:
        for i, (start, piece) in enumerate(zip(starts, pool.map(one, starts))):
            out[start // WINDOW:start // WINDOW + len(piece)] = piece
            progress((i + 1) / len(starts), "pitch")
    return out


def pitch_track(audio_pad: np.ndarray, f0_fn: Any, method: str | None, pad: int, transpose_semitones: float,
                filter_radius: int, f0_curve: str | None, block_s: float, cancel: CancelToken = NEVER,
                progress: Progress = no_progress, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(coarse pitch int64 1..255, pitchf Hz float32), len(audio_pad)//160 frames each, of the mirrored input.

    RVC's order: f0 -> (harvest and filter_radius > 2: median of 3) -> transpose -> the f0 curve replaces the
    pitch from the end of the left padding (`pad` samples) on -> coarse.
    """
    from scipy import signal

    from voiceapp.features.f0 import coarse_f0, read_f0_csv

    block = int(block_s * SAMPLE_RATE) // WINDOW * WINDOW
    f0 = f0_blocks(audio_pad, f0_fn, block, pad, cancel, progress, workers)
    if method == "harvest" and filter_radius > 2:
        f0 = signal.medfilt(f0, 3).astype(np.float32)
    f0 = steps.transpose_f0(f0, transpose_semitones)
    if f0_curve:
        times_s, curve_hz = read_f0_csv(f0_curve)
        f0 = steps.apply_f0_curve(f0, times_s, curve_hz, pad // WINDOW)
    p_len = len(audio_pad) // WINDOW
    f0 = steps.fit_frames(f0, p_len)
    return np.asarray(coarse_f0(f0), dtype=np.int64), f0.astype(np.float32)
