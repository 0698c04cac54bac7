"""Vocal isolation without weights: centre-channel similarity x harmonic/percussive mask x vocal band.

Three soft masks multiplied per time-frequency bin (all on the full-rate STFT, per patch of frames):
- centre (stereo only): Avendano-Jot inter-channel similarity psi = 2|L R*| / (|L|^2 + |R|^2) raised to
  `centre_power`; lead vocals are mixed to the centre, most instruments are not;
- harmonic: soft HPSS mask H^2 / (H^2 + P^2) with H, P the channel-mean magnitude median-filtered along time
  and along frequency (Fitzgerald 2010); removes drums and transients;
- band: 1 between `low_hz` and `high_hz`, falling linearly to 0 one octave beyond each edge.

Measured on the two real songs with true stems in shared/data (bench/separate.py), this beat centre-only,
REPET-SIM (nearest-neighbour median background) and centre x REPET-SIM in vocals SDR, and it is ~20x faster
than REPET-SIM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from voiceapp.errors import ConfigError


@dataclass(frozen=True)
class DspConfig:
    centre_power: float = 3.0     # sharper -> less side-panned bleed, more vocal loss
    use_harmonic: bool = True     # multiply with the HPSS harmonic mask
    median_frames: int = 17       # harmonic median filter length (frames, ~0.2 s)
    median_bins: int = 17         # percussive median filter length (bins, ~370 Hz)
    low_hz: float = 200.0
    high_hz: float = 8000.0
    patch_frames: int = 128       # context of one estimate (frames of ~11.6 ms)

    def __post_init__(self) -> None:
        if self.centre_power < 0 or not 0 < self.low_hz < self.high_hz:
            raise ConfigError(f"DspConfig: need centre_power >= 0 and 0 < low_hz < high_hz, got {self}")
        if self.patch_frames < 2 or self.patch_frames % 2:
            raise ConfigError(f"DspConfig.patch_frames must be even and >= 2, got {self.patch_frames}")


def band_weight(freqs_hz: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """1 inside [low, high], linear to 0 at low / 2 and at 2 * high."""
    w = np.ones_like(freqs_hz, dtype=np.float32)
    w = np.where(freqs_hz < low_hz, np.clip((freqs_hz / low_hz - 0.5) * 2.0, 0.0, 1.0), w)
    w = np.where(freqs_hz > high_hz, np.clip(2.0 - freqs_hz / high_hz, 0.0, 1.0), w)
    return w.astype(np.float32)


def centre_mask(patches: np.ndarray, power: float) -> np.ndarray:
    """(K, C, F, T) complex -> (K, 1, F, T) similarity mask; ones for mono."""
    if patches.shape[1] < 2 or power == 0:
        return np.ones((patches.shape[0], 1, *patches.shape[2:]), dtype=np.float32)
    left, right = patches[:, 0], patches[:, 1]
    psi = 2.0 * np.abs(left * np.conj(right)) / (np.abs(left) ** 2 + np.abs(right) ** 2 + 1e-12)
    return (psi ** power)[:, None].astype(np.float32)


def harmonic_mask(magnitude: np.ndarray, median_frames: int, median_bins: int) -> np.ndarray:
    """(K, C, F, T) magnitude -> soft harmonic mask H^2 / (H^2 + P^2)."""
    harm = ndimage.median_filter(magnitude, size=(1, 1, 1, median_frames), mode="reflect")
    perc = ndimage.median_filter(magnitude, size=(1, 1, median_bins, 1), mode="reflect")
    return (harm ** 2 / (harm ** 2 + perc ** 2 + 1e-12)).astype(np.float32)


class DspSeparator:
    """A `MaskEstimator` (voiceapp.separate.stft) that needs no weights."""

    def __init__(self, name: str = "dsp", cfg: DspConfig = DspConfig()) -> None:
        self.name = name
        self.cfg = cfg
        self.patch_frames = cfg.patch_frames

    def estimate(self, patches: np.ndarray, sample_rate: int, bin_hz: float) -> np.ndarray:
        cfg = self.cfg
        freqs = np.arange(patches.shape[2], dtype=np.float32) * bin_hz
        band = band_weight(freqs, cfg.low_hz, cfg.high_hz)
        used = int(np.count_nonzero(band > 0) and (np.nonzero(band > 0)[0][-1] + 1))
        mask = np.zeros(patches.shape, dtype=np.float32)
        if used == 0:
            return mask
        part = patches[:, :, :used]
        m = centre_mask(part, cfg.centre_power) * band[None, None, :used, None]
        if cfg.use_harmonic:  # on the channel mean: as good as per channel, and half the median filtering
            m = m * harmonic_mask(np.abs(part).mean(axis=1, keepdims=True), cfg.median_frames, cfg.median_bins)
        mask[:, :, :used] = np.broadcast_to(m, part.shape)
        return mask
