"""Linear and mel spectrograms exactly as RVC trains with (reference/rvc-facts.md §4).

    spectrogram: reflect pad (n_fft - hop) / 2 on both sides, `center=False`, hann window of `win_length`,
                 magnitude sqrt(re^2 + im^2 + 1e-6)                    -> (batch, n_fft // 2 + 1, frames)
    mel:         librosa Slaney mel filters (fmin 0, fmax sr/2) @ magnitude, log(clamp(x, 1e-5))
                 80 channels at 32 kHz, 125 at 40 kHz, 128 at 48 kHz  -> (batch, n_mels, frames)

A clip of `n` samples gives `n // hop` frames. Computed in fp32 even under autocast.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

# sample rate -> (n_fft = win_length, hop_length, n_mels)
RVC_MEL: dict[int, tuple[int, int, int]] = {32000: (1024, 320, 80), 40000: (2048, 400, 125), 48000: (2048, 480, 128)}
LOG_CLAMP = 1e-5


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int
    fmin: float = 0.0
    fmax: float | None = None

    @classmethod
    def for_rate(cls, sample_rate: int) -> "MelConfig":
        n_fft, hop, n_mels = RVC_MEL[int(sample_rate)]
        return cls(int(sample_rate), n_fft, hop, n_fft, n_mels)

    @classmethod
    def for_synth(cls, synth_cfg) -> "MelConfig":
        """The mel settings of a `SynthConfig`: RVC's table, or derived for tiny/light configs."""
        n_fft = 2 * (int(synth_cfg.spec_channels) - 1)
        hop = int(np.prod(synth_cfg.upsample_rates))
        rate = int(synth_cfg.sample_rate)
        if rate in RVC_MEL and RVC_MEL[rate][:2] == (n_fft, hop):
            return cls.for_rate(rate)
        return cls(rate, n_fft, hop, n_fft, max(16, min(128, n_fft // 8)))

    @property
    def spec_channels(self) -> int:
        return self.n_fft // 2 + 1


@lru_cache(maxsize=16)
def _mel_basis_np(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def mel_basis(cfg: MelConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney mel filter bank."""
    return torch.from_numpy(_mel_basis_np(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)).to(device)


def spectrogram(wave: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Magnitude spectrogram of `wave` (batch, samples) or (samples,) -> (batch, n_fft//2+1, samples // hop)."""
    squeeze = wave.dim() == 1
    wave = wave.float().reshape(-1, wave.shape[-1])
    pad = (cfg.n_fft - cfg.hop_length) // 2
    wave = torch.nn.functional.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(cfg.win_length, device=wave.device, dtype=torch.float32)
    with torch.autocast(device_type=wave.device.type, enabled=False):
        stft = torch.stft(wave, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window=window,
                          center=False, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        spec = torch.sqrt(stft.real.pow(2) + stft.imag.pow(2) + 1e-6)
    return spec[0] if squeeze else spec


def spec_to_mel(spec: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Log-mel (…, n_mels, frames) from a magnitude spectrogram (…, n_fft//2+1, frames)."""
    with torch.autocast(device_type=spec.device.type, enabled=False):
        mel = torch.matmul(mel_basis(cfg, spec.device), spec.float())
        return torch.log(torch.clamp(mel, min=LOG_CLAMP))


def mel_spectrogram(wave: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Log-mel of `wave` (batch, samples) -> (batch, n_mels, samples // hop)."""
    return spec_to_mel(spectrogram(wave, cfg), cfg)
