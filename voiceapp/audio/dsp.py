"""Small signal helpers: channel mixing, resampling, filters, levels and RVC's normalisation."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) -> (samples,) by averaging; mono input is returned unchanged."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=0, dtype=np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample (samples,) or (channels, samples) with soxr."""
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return soxr.resample(audio, from_rate, to_rate, quality=quality).astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(audio.T), from_rate, to_rate, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32)


@lru_cache(maxsize=16)
def highpass_sos(sample_rate: int, cutoff_hz: float = 48.0, order: int = 5) -> np.ndarray:
    """RVC's Butterworth high-pass (order 5, 48 Hz) as second-order sections."""
    from scipy import signal  # imported on first use: keeps the app's start fast

    return signal.butter(order, cutoff_hz, btype="high", fs=sample_rate, output="sos")


def highpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float = 48.0, zero_phase: bool = False,
             state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """High-pass `audio`; causal (dataset preparation) or zero-phase (conversion).

    Returns (filtered, state) so a long signal can be filtered block by block (causal only).
    """
    from scipy import signal

    sos = highpass_sos(sample_rate, cutoff_hz)
    audio = np.asarray(audio, dtype=np.float64)
    if zero_phase:
        padlen = min(3 * (2 * len(sos) + 1), max(audio.shape[-1] - 1, 0))
        return signal.sosfiltfilt(sos, audio, padlen=padlen).astype(np.float32), np.zeros((len(sos), 2))
    if state is None:
        state = np.zeros((len(sos), 2))
    out, state = signal.sosfilt(sos, audio, zi=state)
    return out.astype(np.float32), state


def peak(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def db(value: float, floor_db: float = -120.0) -> float:
    return float(max(20.0 * np.log10(max(value, 1e-12)), floor_db))


def rvc_normalize(audio: np.ndarray, max_peak: float = 0.9, alpha: float = 0.75) -> np.ndarray:
    """RVC's clip normalisation: blend of the peak-normalised clip (weight alpha) and the clip itself."""
    top = peak(audio)
    if top <= 0:
        return np.asarray(audio, dtype=np.float32)
    return (audio / top * (max_peak * alpha) + (1.0 - alpha) * audio).astype(np.float32)


def frame_rms(audio: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS per frame, frames centred on multiples of `hop_length` (zero padded, like librosa center=True)."""
    audio = np.asarray(audio, dtype=np.float32)
    pad = frame_length // 2
    padded = np.pad(audio, (pad, pad))
    n_frames = 1 + max(len(padded) - frame_length, 0) // hop_length
    if len(padded) < frame_length:
        return np.zeros(1, dtype=np.float32)
    squares = np.empty(len(padded) + 1, dtype=np.float64)
    squares[0] = 0.0
    np.square(padded, out=squares[1:], dtype=np.float64)
    np.cumsum(squares, out=squares)
    starts = np.arange(n_frames) * hop_length
    energy = (squares[starts + frame_length] - squares[starts]) / frame_length
    return np.sqrt(np.maximum(energy, 0.0)).astype(np.float32)
