"""The pipeline's cutting, padding and joining, checked with stand-in networks whose output is known.

The stand-in encoder returns each 20 ms frame's mean |x|; the stand-in synthesizer writes every 10 ms frame's
feature value for `hop` samples. The output's envelope must therefore follow the input's envelope at the
same times, across every cut, and the output must be exactly as long as the input.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from helpers import sine
from voiceapp.errors import InputError
from voiceapp.infer import pipeline
from voiceapp.infer.pipeline import InferConfig, convert


class EnvelopeEncoder:
    name, dim, frame_rate_hz = "env", 4, 50.0

    def __init__(self):
        self.lengths = []

    def encode(self, audio_16k):
        self.lengths.append(len(audio_16k))
        n = len(audio_16k) // 320
        frames = np.abs(audio_16k[:n * 320]).reshape(n, 320).mean(axis=1)
        return np.repeat(frames[:, None], self.dim, axis=1).astype(np.float32)


class FrameNet:
    def __init__(self, hop):
        import torch

        self.hop = hop
        self._p = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def parameters(self):
        return iter([self._p])

    def infer(self, phone, lengths, pitch, pitchf, sid, noise_scale=0.66666, generator=None, skip_head=None,
              return_length=None):
        import torch

        self.calls.append((phone.shape[1], skip_head, return_length))
        values = phone[0, :int(lengths[0]), 0]
        if skip_head is not None:
            values = values[skip_head:skip_head + return_length]
        noise = torch.randn(values.shape, generator=generator) * 1e-3 * noise_scale
        return torch.repeat_interleave(values + noise, self.hop)[None, None]


def _voice(hop=400, rate=40_000, use_f0=True):
    net = FrameNet(hop)
    config = SimpleNamespace(hop_length=hop, content_dim=4)
    return SimpleNamespace(path="standin.pth", config=config, version="v2", sample_rate=rate, use_f0=use_f0,
                           embedder="env", n_speakers=1, metadata={}, net=net)


@pytest.fixture
def standins(monkeypatch):
    encoder = EnvelopeEncoder()
    monkeypatch.setattr(pipeline, "load_encoder_cached", lambda name, voice, services: encoder)
    monkeypatch.setattr(pipeline, "load_f0_cached", lambda name, services: (lambda a: np.full(len(a) // 160 + 1, 150.0)))
    import voiceapp.features.f0 as f0mod  # noqa: F401  (coarse_f0 must exist)
    return encoder


def _cfg(**kwargs):
    return InferConfig(f0_method="standin", precision="fp32", **kwargs)


def _envelope(x, rate, frame_s=0.1):
    n = int(rate * frame_s)
    k = len(x) // n
    return np.abs(x[:k * n]).reshape(k, n).mean(axis=1)


def test_output_follows_input_across_cuts(standins, services):
    rate = 16_000
    t = np.arange(int(40.3 * rate)) / rate
    amp = 0.2 + 0.6 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 7.0))  # slow swell
    x = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    voice = _voice()
    cfg = _cfg(rms_mix_rate=1.0, index_rate=0.0, protect=0.5, decoder_context_s=0.3,
                      segment_pad_s=0.5, segment_query_s=1.0, segment_center_s=6.0, segment_max_s=8.0)
    result = convert(x, rate, voice, cfg, services=services)
    assert result.segments == 7 and len(voice.net.calls) == 7
    assert all(head == 50 - 30 for _, head, _ in voice.net.calls)  # decoder: 0.3 s context inside 0.5 s padding
    shapes = [frames for frames, _, _ in voice.net.calls]
    assert max(shapes.count(f) for f in shapes) >= 5 and all(f % 100 == 0 for f in shapes), shapes  # kernels reused
    # the encoder sees whole seconds: at most (2 x query) / bucket + 2 distinct lengths however long the input
    # (oneDNN keeps kernels per shape, so one length per piece made memory grow with the input's length)
    assert all(n % 16_000 == 0 for n in standins.lengths) and len(set(standins.lengths)) <= 4, standins.lengths
    assert result.sample_rate == 40_000 and len(result.audio) == int(round(len(x) * 40_000 / rate))
    env_in = _envelope(x, rate) * 2 / np.pi * 2 / np.pi  # encoder mean|x| of a sine, then peak-safe scaling
    env_out = _envelope(result.audio, 40_000)
    env_in = env_in / env_in.max()
    env_out = env_out / env_out.max()
    assert np.max(np.abs(env_in[2:-2] - env_out[2:-2])) < 0.05
    assert set(result.timings) >= {"load", "f0", "features", "synthesis", "total"} and result.rtf > 0
    whole = convert(x, rate, _voice(), InferConfig(**{**cfg.__dict__, "decoder_context_s": None}), services=services)
    assert len(whole.audio) == len(result.audio)
    assert np.max(np.abs(whole.audio - result.audio)) < 0.01  # RVC's full decode: the same up to the noise


def test_same_seed_same_output_other_seed_differs(standins, services):
    x = sine(180, 2.0)
    voice = _voice(hop=320, rate=32_000)
    a = convert(x, 16_000, voice, _cfg(seed=3, rms_mix_rate=1.0), services=services).audio
    b = convert(x, 16_000, voice, _cfg(seed=3, rms_mix_rate=1.0), services=services).audio
    c = convert(x, 16_000, voice, _cfg(seed=4, rms_mix_rate=1.0), services=services).audio
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("seconds", [0.1, 0.013, 1.0])
def test_short_inputs_keep_their_length(standins, seconds, services):
    x = sine(200, seconds, 44_100)
    result = convert(x, 44_100, _voice(hop=480, rate=48_000), _cfg(), services=services)
    assert abs(len(result.audio) - seconds * 48_000) <= 480 and np.all(np.isfinite(result.audio))


def test_six_channels_and_silence(standins, services):
    six = np.stack([sine(200 + 20 * i, 1.0) for i in range(6)])
    result = convert(six, 16_000, _voice(), _cfg(), services=services)
    assert len(result.audio) == 40_000
    silent = convert(np.zeros(16_000, np.float32), 16_000, _voice(), _cfg(), services=services)
    assert np.all(np.isfinite(silent.audio)) and not silent.audio.any() and "silent" in silent.summary()
    with pytest.raises(InputError):
        convert(np.zeros(0, np.float32), 16_000, _voice(), _cfg(), services=services)
    with pytest.raises(InputError):
        convert(np.full(100, np.nan, np.float32), 16_000, _voice(), _cfg(), services=services)


def test_speaker_id_out_of_range(standins, services):
    with pytest.raises(InputError, match="Speaker id 3"):
        convert(sine(200, 0.5), 16_000, _voice(), _cfg(speaker_id=3), services=services)
