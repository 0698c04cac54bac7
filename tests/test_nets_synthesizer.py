"""The RVC synthesizer and discriminators: exact parameter names/shapes, numerics of the parts, tiny forward/backward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from voiceapp.errors import ConfigError
from voiceapp.nets.attentions import MultiHeadAttention
from voiceapp.nets.commons import WNConv1d, WNConvTranspose1d, rand_slice_segments, slice_segments, to_rvc_keys
from voiceapp.nets.discriminator import MultiPeriodDiscriminator
from voiceapp.nets.nsf import sine_excitation
from voiceapp.nets.synthesizer import SynthConfig, Synthesizer, parse_sample_rate, rate_label

VARIANTS = [f"{v}_{r}_{f}" for v in ("v1", "v2") for r in ("32k", "40k", "48k") for f in ("f0", "nof0")]


@pytest.fixture(autouse=True)
def _fast_small_convs(small_torch_ops):
    yield


def _cfg_of(variant: str, size: str = "full") -> SynthConfig:
    version, rate, f0 = variant.split("_")
    return SynthConfig.preset(version, parse_sample_rate(rate), f0 == "f0", size)


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_has_rvc_names_and_shapes(variant, reference):
    ref = reference["synthesizers"][variant]
    cfg = _cfg_of(variant)
    assert cfg.to_rvc_list() == ref["config"]
    with torch.device("meta"):
        net = Synthesizer(cfg)
    shapes = _shapes(net)
    assert shapes == ref["full_generator"]
    assert {k: v for k, v in shapes.items() if "enc_q" not in k} == ref["small"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_discriminator_has_rvc_names_and_shapes(version, reference):
    with torch.device("meta"):
        disc = MultiPeriodDiscriminator(version)
    assert _shapes(disc) == reference[f"discriminator_{version}"]


def test_full_model_builds_on_cpu_with_weight_norm_names():
    net = Synthesizer(SynthConfig.preset("v2", 40000))
    names = dict(net.named_parameters())
    assert "dec.ups.0.weight_g" in names and "dec.ups.0.weight_v" in names and "dec.ups.0.weight" not in names
    assert names["dec.ups.0.weight_g"].shape == (512, 1, 1)
    assert net.dec.conv_post.bias is None
    assert sum(p.numel() for k, p in names.items() if not k.startswith("enc_q")) == 27_537_346


def test_light_and_tiny_keep_the_module_tree():
    full = set(Synthesizer(SynthConfig.tiny()).state_dict())
    with torch.device("meta"):
        light = Synthesizer(SynthConfig.preset("v2", 40000, size="light"))
        ref = Synthesizer(SynthConfig.preset("v2", 40000))
    assert set(light.state_dict()) < set(ref.state_dict())  # fewer layers / resblocks, same names otherwise
    assert {k.split(".")[0] for k in full} == {"enc_p", "dec", "enc_q", "flow", "emb_g"}
    light_cfg = SynthConfig.preset("v2", 40000, size="light")
    assert light_cfg.upsample_initial_channel < 512 and not light_cfg.rvc_compatible
    assert light.enc_q.pre.weight.shape[0] == light_cfg.posterior_channels < 192
    again = SynthConfig.from_rvc_list(light_cfg.to_rvc_list(), "v2", True, size="light")
    assert again == light_cfg
    assert SynthConfig.preset("v2", 40000).rvc_compatible


def test_config_round_trip_and_validation():
    cfg = SynthConfig.preset("v1", "48k", use_f0=False)
    again = SynthConfig.from_rvc_list(cfg.to_rvc_list(), version="v1", use_f0=False)
    assert again == cfg
    assert cfg.hop_length == 480 and cfg.segment_frames == 24
    assert SynthConfig.preset("v2", 48000).segment_frames == 36
    assert SynthConfig.preset("v2", 32000).segment_frames == 40
    assert SynthConfig.preset("v2", 40000, content_dim=384).content_dim == 384
    assert SynthConfig.preset("v1", 40000).content_dim == 256
    assert SynthConfig(**cfg.to_dict()) == cfg
    assert parse_sample_rate("40k") == parse_sample_rate("40000") == parse_sample_rate(40000) == 40000
    assert rate_label(48000) == "48k"
    with pytest.raises(ConfigError):
        SynthConfig.preset("v3", 40000)
    with pytest.raises(ConfigError):
        SynthConfig.preset("v2", 40000, size="huge")
    with pytest.raises(ConfigError):
        parse_sample_rate("fast")


def _naive_relative_attention(attn: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Direct O(T^2) loop form of relative-position attention (offset j-i, embeddings zero beyond the window)."""
    b, c, t = x.shape
    h, d, w = attn.n_heads, attn.k_channels, attn.window_size
    q = attn.conv_q(x).view(b, h, d, t)
    k = attn.conv_k(x).view(b, h, d, t)
    v = attn.conv_v(x).view(b, h, d, t)
    ek, ev = attn.emb_rel_k[0], attn.emb_rel_v[0]
    out = torch.zeros(b, h, d, t)
    for i in range(t):
        scores = torch.zeros(b, h, t)
        for j in range(t):
            rel = ek[j - i + w] if abs(j - i) <= w else torch.zeros(d)
            scores[:, :, j] = ((q[:, :, :, i] / math.sqrt(d)) * (k[:, :, :, j] + rel)).sum(-1)
        scores = scores.masked_fill(mask[:, :, i, :] == 0, -1e4)
        p = torch.softmax(scores, -1)
        for j in range(t):
            rel = ev[j - i + w] if abs(j - i) <= w else torch.zeros(d)
            out[:, :, :, i] += p[:, :, j, None] * (v[:, :, :, j] + rel)
    return attn.conv_o(out.reshape(b, c, t))


def test_relative_attention_matches_direct_formula():
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 8, n_heads=2, window_size=3).eval()
    x = torch.randn(2, 8, 9)
    lengths = torch.tensor([9, 6])
    m = (torch.arange(9)[None] < lengths[:, None]).float().unsqueeze(1)
    mask = m.unsqueeze(2) * m.unsqueeze(-1)
    with torch.no_grad():
        fast = attn(x, mask)
        slow = _naive_relative_attention(attn, x, mask)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_weight_norm_matches_torch_and_accepts_parametrization_keys():
    torch.manual_seed(0)
    conv = WNConv1d(4, 6, 3, padding=1)
    ref = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(4, 6, 3, padding=1))
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(conv.weight_g)
        ref.parametrizations.weight.original1.copy_(conv.weight_v)
        ref.bias.copy_(conv.bias)
    x = torch.randn(1, 4, 10)
    assert torch.allclose(conv(x), ref(x), atol=1e-6)
    applio_style = ref.state_dict()
    assert "parametrizations.weight.original0" in applio_style
    fresh = WNConv1d(4, 6, 3, padding=1)
    fresh.load_state_dict(applio_style)
    assert torch.allclose(fresh(x), ref(x), atol=1e-6)
    assert set(to_rvc_keys({"a.parametrizations.weight.original1": 0})) == {"a.weight_v"}
    up = WNConvTranspose1d(8, 4, 16, 10, padding=3)
    assert up.weight_g.shape == (8, 1, 1) and up(torch.randn(1, 8, 5)).shape == (1, 4, 50)


def test_sine_source_has_the_requested_pitch():
    rate, hop, f0 = 40000, 400, 220.0
    source = sine_excitation(torch.full((1, 50), f0), hop, rate, noise_std=0.0)[0, :, 0].numpy()
    assert source.shape == (50 * hop,)
    spectrum = np.abs(np.fft.rfft(source * np.hanning(len(source))))
    assert abs(np.argmax(spectrum) * rate / len(source) - f0) < 2.0
    assert abs(np.max(np.abs(source)) - 0.1) < 0.01
    silent = sine_excitation(torch.zeros(1, 50), hop, rate)[0, :, 0]
    assert 0.01 < float(silent.std()) < 0.06  # unvoiced: noise of std sine_amp/3


def test_segment_slicing_stays_inside_each_sequence():
    x = torch.arange(2 * 3 * 20, dtype=torch.float32).view(2, 3, 20)
    lengths = torch.tensor([20, 9])
    for _ in range(20):
        sl, starts = rand_slice_segments(x, lengths, 8)
        assert sl.shape == (2, 3, 8)
        assert int(starts[1]) + 8 <= 9 and int(starts[0]) + 8 <= 20
        assert torch.equal(sl, slice_segments(x, starts, 8))
        assert torch.equal(sl[0, 1], x[0, 1, int(starts[0]):int(starts[0]) + 8])


def _batch(cfg: SynthConfig, frames=(30, 22)):
    torch.manual_seed(1)
    b, t = len(frames), max(frames)
    lengths = torch.tensor(frames)
    return dict(phone=torch.randn(b, t, cfg.content_dim), phone_lengths=lengths,
                pitch=torch.randint(1, 256, (b, t)) if cfg.use_f0 else None,
                pitchf=(torch.rand(b, t) * 200 + 100) if cfg.use_f0 else None,
                y=torch.rand(b, cfg.spec_channels, t), y_lengths=lengths, sid=torch.tensor([0, 1]))


@pytest.mark.parametrize("use_f0", [True, False])
def test_tiny_forward_backward(use_f0):
    cfg = SynthConfig.tiny(use_f0=use_f0)
    net, disc = Synthesizer(cfg), MultiPeriodDiscriminator("v2", "tiny")
    batch = _batch(cfg)
    o, ids, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q) = net(**batch)
    assert o.shape == (2, 1, cfg.segment_frames * cfg.hop_length)
    assert ids.shape == (2,) and int(ids[1]) + cfg.segment_frames <= 22
    assert z.shape == z_p.shape == m_q.shape == (2, cfg.inter_channels, 30) and m_p.shape == logs_p.shape
    assert x_mask.shape == y_mask.shape == (2, 1, 30) and float(y_mask[1, 0, 25]) == 0.0
    y_d_rs, y_d_gs, fmap_rs, fmap_gs = disc(torch.randn_like(o), o)
    assert len(y_d_rs) == len(y_d_gs) == 9 and len(fmap_rs[1]) == 6
    kl = (logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2 * logs_p)).mean()
    loss = sum(torch.mean((1 - g) ** 2) for g in y_d_gs) + o.abs().mean() + kl
    loss.backward()
    grads = {k: p.grad for k, p in net.named_parameters()}
    assert grads["enc_p.emb_phone.weight"] is not None and torch.isfinite(grads["dec.ups.0.weight_v"]).all()
    assert ("enc_p.emb_pitch.weight" in grads) == use_f0
    if use_f0:
        assert grads["enc_p.emb_pitch.weight"].abs().sum() > 0 and grads["dec.m_source.l_linear.weight"] is not None
    assert grads["enc_q.enc.in_layers.0.weight_g"].abs().sum() > 0


def test_tiny_infer_is_deterministic_with_a_generator_and_has_hop_length():
    cfg = SynthConfig.tiny()
    net = Synthesizer(cfg).eval()
    b = _batch(cfg)
    args = (b["phone"], b["phone_lengths"], b["pitch"], b["pitchf"], b["sid"])
    one = net.infer(*args, generator=torch.Generator().manual_seed(3))
    two = net.infer(*args, generator=torch.Generator().manual_seed(3))
    other = net.infer(*args, generator=torch.Generator().manual_seed(4))
    assert one.shape == (2, 1, 30 * cfg.hop_length)
    assert torch.equal(one, two) and not torch.equal(one, other)
    assert float(one.abs().max()) <= 1.0
    part = net.infer(*args, generator=torch.Generator().manual_seed(3), skip_head=10, return_length=12)
    assert part.shape == (2, 1, 12 * cfg.hop_length)


def test_light_discriminator_is_narrower():
    full = sum(p.numel() for p in MultiPeriodDiscriminator("v2", "full").parameters())
    light = sum(p.numel() for p in MultiPeriodDiscriminator("v2", "light").parameters())
    assert light * 8 < full
    assert len(MultiPeriodDiscriminator("v1", "light").discriminators) == 7


@pytest.mark.parametrize("variant", ["v1_32k_f0", "v1_48k_nof0", "v2_48k_f0", "v2_32k_nof0"])
def test_tiny_variants_infer_one_hop_per_frame(variant):
    cfg = _cfg_of(variant, "tiny")
    net = Synthesizer(cfg).eval()
    frames = 13
    pitch = torch.full((1, frames), 60) if cfg.use_f0 else None
    pitchf = torch.full((1, frames), 180.0) if cfg.use_f0 else None
    audio = net.infer(torch.randn(1, frames, cfg.content_dim), torch.tensor([frames]), pitch, pitchf,
                      torch.tensor([0]))
    assert audio.shape == (1, 1, frames * cfg.sample_rate // 100) and torch.isfinite(audio).all()
