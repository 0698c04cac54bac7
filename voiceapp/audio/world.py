"""WORLD analysis and synthesis (pyworld) on Voiceapp's 10 ms frame grid, with compact spectral codes.

The `instant` and `quick` voice engines describe the target voice by WORLD frames: a spectral envelope coded
as `SP_DIMS` mel-cepstrum-like coefficients (`pyworld.code_spectral_envelope`, linear in the log spectrum, so
averages of codes are averages of smoothed log spectra) and a band aperiodicity (`code_aperiodicity`, one
value per 3 kHz band). Frames are 10 ms apart, the same 100 Hz grid as Voiceapp's f0 (16 kHz, hop 160).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_PERIOD_MS = 10.0
SP_DIMS = 60


@dataclass(frozen=True)
class WorldFrames:
    """Coded WORLD frames of one piece of audio at `sample_rate`: sp (frames, SP_DIMS), ap (frames, bands)."""

    sp: np.ndarray
    ap: np.ndarray
    sample_rate: int

    def __len__(self) -> int:
        return len(self.sp)


def fft_size(sample_rate: int) -> int:
    import pyworld as pw

    return int(pw.get_cheaptrick_fft_size(int(sample_rate)))


def ap_bands(sample_rate: int) -> int:
    import pyworld as pw

    return int(pw.get_num_aperiodicities(int(sample_rate)))


def _fill_unvoiced(f0_hz: np.ndarray) -> np.ndarray:
    """CheapTrick/D4C read unvoiced frames as f0 = 0 (their own default window); keep them so."""
    f0 = np.asarray(f0_hz, dtype=np.float64).copy()
    f0[~np.isfinite(f0) | (f0 < 0)] = 0.0
    return f0


def analyze(audio: np.ndarray, sample_rate: int, f0_hz: np.ndarray, sp_dims: int = SP_DIMS) -> WorldFrames:
    """Coded spectral envelope and aperiodicity of `audio` on the frames of `f0_hz` (Hz per 10 ms, 0 = unvoiced;
    e.g. Voiceapp's f0 methods on the 16 kHz copy). Frames past the audio's end are dropped."""
    import pyworld as pw

    x = np.ascontiguousarray(audio, dtype=np.float64)
    frames = min(len(f0_hz), len(x) * 100 // int(sample_rate) + 1)
    f0 = _fill_unvoiced(f0_hz[:frames])
    times = np.arange(frames, dtype=np.float64) * (FRAME_PERIOD_MS / 1000.0)
    sp = pw.cheaptrick(x, f0, times, int(sample_rate))
    ap = pw.d4c(x, f0, times, int(sample_rate))
    return WorldFrames(pw.code_spectral_envelope(sp, int(sample_rate), sp_dims).astype(np.float32),
                       pw.code_aperiodicity(ap, int(sample_rate)).astype(np.float32), int(sample_rate))


def decode(frames: WorldFrames) -> tuple[np.ndarray, np.ndarray]:
    """(spectral envelope, aperiodicity), each (frames, fft_size // 2 + 1) float64, from coded frames."""
    import pyworld as pw

    n_fft, rate = fft_size(frames.sample_rate), frames.sample_rate
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(frames.sp, dtype=np.float64), rate, n_fft)
    ap = pw.decode_aperiodicity(np.ascontiguousarray(np.minimum(frames.ap, 0.0), dtype=np.float64), rate, n_fft)
    return sp, ap


def synthesize(f0_hz: np.ndarray, frames: WorldFrames) -> np.ndarray:
    """float32 audio at `frames.sample_rate`, `len(f0_hz)` frames of 10 ms long (f0 0 = unvoiced)."""
    import pyworld as pw

    n = min(len(f0_hz), len(frames))
    sp, ap = decode(WorldFrames(frames.sp[:n], frames.ap[:n], frames.sample_rate))
    f0 = _fill_unvoiced(f0_hz[:n])
    audio = pw.synthesize(f0, sp, ap, frames.sample_rate, FRAME_PERIOD_MS)
    return audio.astype(np.float32)
