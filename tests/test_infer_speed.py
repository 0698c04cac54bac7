"""The CPU decoder copy (voiceapp/infer/speed.py): channels-last 2-D convs on fixed tiles give the decoder's
own output, and only the decoder is replaced."""

import numpy as np
import pytest
import torch

from voiceapp.infer.speed import channels_last_decoder, for_precision, resolve_precision
from voiceapp.nets.synthesizer import SynthConfig, Synthesizer


def _net(use_f0: bool) -> Synthesizer:
    torch.manual_seed(0)
    return Synthesizer(SynthConfig.tiny("v2", 40000, use_f0=use_f0), with_posterior=False).eval()


def _decode(dec, z, f0, g):
    with torch.inference_mode():
        if f0 is None:
            return dec(z, g=g)
        return dec(z, f0, g=g, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("use_f0", [True, False])
def test_tiled_channels_last_decoder_equals_the_decoder(use_f0):
    net = _net(use_f0)
    frames, hop, context = 137, net.cfg.hop_length, 8
    z = torch.randn(1, net.cfg.inter_channels, frames)
    f0 = (180 + 40 * torch.sin(torch.arange(frames) / 9.0))[None] if use_f0 else None
    f0 = f0 * (torch.arange(frames) % 40 > 8) if use_f0 else None  # unvoiced stretches too
    g = net.emb_g(torch.tensor([0])).unsqueeze(-1)
    ref = _decode(net.dec, z, f0, g)
    fast = channels_last_decoder(net.dec, torch.float32, tile_frames=40, context=context)  # 4 tiles
    out = _decode(fast, z, f0, g)
    assert out.shape == ref.shape == (1, 1, frames * hop)
    inner = slice(context * hop, (frames - context) * hop)
    assert torch.max(torch.abs(out[..., inner] - ref[..., inner])) < 1e-5
    bf16 = _decode(channels_last_decoder(net.dec, torch.bfloat16, tile_frames=40, context=context), z, f0, g)
    assert bf16.dtype == torch.float32
    err = torch.sqrt(torch.mean((bf16 - ref)[..., inner] ** 2)) / torch.sqrt(torch.mean(ref[..., inner] ** 2))
    assert err < 0.1


def test_for_precision_replaces_only_the_decoder():
    from types import SimpleNamespace

    net = _net(True)
    voice = SimpleNamespace(path="v.pth", net=net)
    fast = for_precision(voice, "fp32")
    assert fast.net is not net and fast.net.dec is not net.dec and fast.net.enc_p is net.enc_p
    assert voice.net.dec is net.dec and "weight" in dict(net.dec.conv_pre.named_parameters())
    assert fast.net.dec.inner.conv_pre.weight.dim() == 4
    with pytest.raises(ValueError):
        for_precision(voice, "fp16")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("auto", "cuda") == "fp32"


def test_fast_voice_converts_like_the_original():
    net = _net(True)
    frames = 90
    phone = torch.randn(1, frames, net.cfg.content_dim)
    pitch = torch.full((1, frames), 60, dtype=torch.long)
    pitchf = torch.full((1, frames), 200.0)
    args = (phone, torch.tensor([frames]), pitch, pitchf, torch.tensor([0]))
    from types import SimpleNamespace

    fast = for_precision(SimpleNamespace(path="v.pth", net=net), "fp32").net
    with torch.inference_mode():
        a = net.infer(*args, generator=torch.Generator().manual_seed(2))
        b = fast.infer(*args, generator=torch.Generator().manual_seed(2))
    hop = net.cfg.hop_length
    assert a.shape == b.shape
    assert np.allclose(a[..., 16 * hop:-16 * hop].numpy(), b[..., 16 * hop:-16 * hop].numpy(), atol=1e-5)
