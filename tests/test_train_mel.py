"""Spectrogram and mel match RVC's recipe (reflect pad, center=False, hann, Slaney mel, log clamp)."""

import numpy as np
import pytest
import torch

from helpers import harmonic
from voiceapp.train.mel import RVC_MEL, MelConfig, mel_basis, mel_spectrogram, spectrogram


def _reference(wave: np.ndarray, cfg: MelConfig) -> np.ndarray:
    import librosa

    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = np.pad(wave.astype(np.float64), (pad, pad), mode="reflect")
    window = np.hanning(cfg.win_length + 1)[:-1]  # periodic hann, as torch.hann_window
    frames = 1 + (len(x) - cfg.n_fft) // cfg.hop_length
    spec = np.stack([np.abs(np.fft.rfft(x[i * cfg.hop_length: i * cfg.hop_length + cfg.n_fft] * window))
                     for i in range(frames)], axis=1)
    spec = np.sqrt(spec ** 2 + 1e-6)
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels)
    return np.log(np.maximum(basis @ spec, 1e-5))


@pytest.mark.parametrize("rate", [32000, 40000, 48000])
def test_rvc_table_and_frame_count(rate):
    cfg = MelConfig.for_rate(rate)
    assert (cfg.n_fft, cfg.hop_length, cfg.n_mels) == RVC_MEL[rate]
    wave = torch.from_numpy(harmonic(200, 0.5, rate))
    spec = spectrogram(wave, cfg)
    assert spec.shape == (cfg.n_fft // 2 + 1, len(wave) // cfg.hop_length)
    assert mel_basis(cfg).shape == (cfg.n_mels, cfg.n_fft // 2 + 1)


def test_mel_matches_numpy_reference_and_batches():
    cfg = MelConfig.for_rate(40000)
    wave = harmonic(220, 0.4, 40000) + 0.01 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    ours = mel_spectrogram(torch.from_numpy(wave)[None], cfg)[0].numpy()
    ref = _reference(wave, cfg)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    batch = torch.stack([torch.from_numpy(wave), torch.zeros(len(wave))])
    out = mel_spectrogram(batch, cfg)
    np.testing.assert_allclose(out[0].numpy(), ours, atol=1e-5)
    silence = _reference(np.zeros(len(wave), np.float32), cfg)  # magnitude floor sqrt(1e-6), then the clamp
    np.testing.assert_allclose(out[1].numpy(), silence, atol=1e-4)
    assert silence.min() >= np.log(1e-5) - 1e-6


def test_slaney_not_htk():
    import librosa

    cfg = MelConfig.for_rate(32000)
    slaney = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=80)
    htk = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=80, htk=True)
    ours = mel_basis(cfg).numpy()
    assert np.allclose(ours, slaney) and not np.allclose(ours, htk)
