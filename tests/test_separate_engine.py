"""The chunked STFT mask engine: perfect reconstruction, chunked == unchunked, any rate and channel count."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from helpers import song_stems
from voiceapp.separate.dsp import DspConfig, DspSeparator
from voiceapp.separate.model import MaskModelConfig, UNetSeparator
from voiceapp.separate.stft import StftConfig, separate_array


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


class _AllPass:
    name = "all"
    patch_frames = 16

    def estimate(self, patches, sample_rate, bin_hz):
        return np.ones(patches.shape, np.float32)


def _tiny_unet() -> UNetSeparator:
    import torch

    from voiceapp.nets.unet import UNet

    torch.manual_seed(0)
    cfg = MaskModelConfig.tiny()
    return UNetSeparator("tiny", UNet(cfg.unet).eval(), cfg)


@pytest.mark.parametrize("sample_rate", [8000, 11025, 22050, 37800, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_all_pass_mask_reconstructs_the_input(sample_rate, channels):
    rng = np.random.default_rng(channels)
    audio = (rng.standard_normal((channels, sample_rate + 77)) * 0.1).astype(np.float32)
    out = separate_array(audio[0] if channels == 1 else audio, sample_rate, _AllPass(), chunk_s=0.3)
    assert out.shape == (audio[0] if channels == 1 else audio).shape
    assert np.max(np.abs(out - (audio[0] if channels == 1 else audio))) < 1e-5


def test_grid_keeps_bin_spacing_and_hop_duration_at_every_rate():
    cfg = StftConfig()
    for rate in (16000, 22050, 44100, 48000, 96000):
        n_fft, hop = cfg.for_rate(rate)
        assert abs(rate / n_fft - cfg.bin_hz) / cfg.bin_hz < 0.01
        assert abs(hop / rate - cfg.hop_length / cfg.reference_rate) < 1e-4


@pytest.mark.parametrize("make", [lambda: DspSeparator(cfg=DspConfig(patch_frames=32)), _tiny_unet])
def test_chunked_equals_unchunked(make):
    vocals, acc = song_stems(sample_rate=16000, seconds=3.0)
    mix = vocals + acc
    separator = make()
    whole = separate_array(mix, 16000, separator, chunk_s=60.0)
    chunked = separate_array(mix, 16000, separator, chunk_s=0.5)
    assert np.sqrt(np.mean(whole ** 2)) > 1e-3  # not a trivial all-zero mask
    assert np.max(np.abs(whole - chunked)) < 1e-4


def test_streamed_file_equals_in_memory(tmp_path):
    from voiceapp.separate.separator import SeparateConfig, separate_file

    vocals, acc = song_stems(sample_rate=16000, seconds=3.0)
    mix = vocals + acc
    path = tmp_path / "song.wav"
    sf.write(path, mix.T, 16000, subtype="FLOAT")
    separator = _tiny_unet()
    result = separate_file(path, tmp_path / "out", separator, SeparateConfig(chunk_s=0.9))
    streamed, rate = sf.read(result.vocals, dtype="float32", always_2d=True)
    expected = separate_array(mix, 16000, separator, chunk_s=60.0)
    assert rate == 16000 and streamed.shape == mix.T.shape
    assert np.max(np.abs(streamed.T - expected)) < 1e-4
    inst, _ = sf.read(result.instrumental, dtype="float32", always_2d=True)
    assert np.max(np.abs(inst.T + streamed.T - mix)) < 1e-5


def test_unet_mask_above_the_modelled_band_follows_the_top_bins():
    from voiceapp.separate.model import extend_high_band

    cfg = MaskModelConfig.tiny()
    low = np.linspace(0, 1, cfg.n_bins, dtype=np.float32)[:, None].repeat(4, axis=1)
    full = extend_high_band(low, cfg.n_bins + 50, cfg)
    assert full.shape == (cfg.n_bins + 50, 4)
    np.testing.assert_allclose(full[cfg.n_bins:], np.broadcast_to(low[-cfg.high_band_bins:].mean(axis=0), (50, 4)),
                               rtol=1e-6)


def _patches(channels: int = 2, bins: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (2, channels, bins, MaskModelConfig.tiny().patch_frames)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64) * 0.01


def _with(**options) -> UNetSeparator:
    from dataclasses import replace

    import torch

    from voiceapp.nets.unet import UNet

    torch.manual_seed(0)
    cfg = replace(MaskModelConfig.tiny(), **options)
    return UNetSeparator("tiny", UNet(cfg.unet).eval(), cfg)


def test_unet_options_blend_with_the_dsp_mask():
    from voiceapp.separate.dsp import DspConfig, DspSeparator, centre_mask

    patches, n = _patches(), MaskModelConfig.tiny().n_bins
    dsp = DspSeparator("dsp", DspConfig(patch_frames=MaskModelConfig.tiny().patch_frames))
    dsp_mask = dsp.estimate(patches, 44100, 21.5)
    plain = _with().estimate(patches, 44100, 21.5)
    high = _with(high_band="dsp").estimate(patches, 44100, 21.5)
    np.testing.assert_allclose(high[:, :, :n], plain[:, :, :n], rtol=1e-6)
    np.testing.assert_allclose(high[:, :, n:], dsp_mask[:, :, n:], rtol=1e-6)  # above the band: the DSP mask
    only_dsp = _with(high_band="dsp", dsp_mix=1.0).estimate(patches, 44100, 21.5)
    np.testing.assert_allclose(only_dsp, dsp_mask, rtol=1e-5, atol=1e-6)
    lifted = _with(mask_power=0.5).estimate(patches, 44100, 21.5)
    np.testing.assert_allclose(lifted[:, :, :n], np.sqrt(plain[:, :, :n]), rtol=1e-5)
    centred = _with(centre_power=2.0).estimate(patches, 44100, 21.5)
    np.testing.assert_allclose(centred, plain * centre_mask(patches, 2.0), rtol=1e-5)


def test_unet_options_are_checked_and_survive_the_sidecar():
    from voiceapp.errors import ConfigError

    with pytest.raises(ConfigError):
        MaskModelConfig.tiny().__class__(high_band="mirror")
    with pytest.raises(ConfigError):
        _with(dsp_mix=1.5)
    cfg = _with(high_band="dsp", dsp_mix=0.4, mask_power=0.5, centre_power=1.0).cfg
    assert MaskModelConfig.from_dict(cfg.to_dict()) == cfg
