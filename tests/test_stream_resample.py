"""The live path's low-delay streaming resampler: chunking does not change the output, tones keep their level,
what lies above the lower Nyquist frequency is removed, and it holds back about its filter's half-width."""

from __future__ import annotations

import numpy as np
import pytest

from voiceapp.audio.stream_resample import StreamResampler

RATES = [(44100, 16000), (48000, 16000), (40000, 48000), (40000, 44100), (16000, 48000), (32000, 44100)]


def _tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


@pytest.mark.parametrize("rates", RATES)
def test_the_output_does_not_depend_on_the_chunks_and_holds_back_only_milliseconds(rates):
    a, b = rates
    x = np.random.default_rng(0).standard_normal(a).astype(np.float32) * 0.1
    whole = StreamResampler(a, b).resample_chunk(x)
    stream, parts, i = StreamResampler(a, b), [], 0
    rng = np.random.default_rng(1)
    while i < len(x):
        n = int(rng.integers(0, 700))
        parts.append(stream.resample_chunk(x[i:i + n]))
        i += n
    assert np.array_equal(np.concatenate(parts), whole)
    held_ms = 1000 * (len(x) * b / a - len(whole)) / b
    assert 0.5 < held_ms < 2.5
    stream.reset()
    assert np.array_equal(stream.resample_chunk(x), whole)            # reset: a new stream


@pytest.mark.parametrize("rates", RATES)
def test_tones_keep_their_level_and_time_and_what_cannot_be_kept_is_removed(rates):
    a, b = rates
    nyquist = 0.5 * min(a, b)
    y = StreamResampler(a, b).resample_chunk(_tone(1000.0, a))
    ref = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(len(y)) / b)
    assert np.abs(y[b // 10:] - ref[b // 10:]).max() < 1e-4          # no delay, no gain change
    edge = StreamResampler(a, b).resample_chunk(_tone(0.8 * nyquist, a))
    level = np.sqrt(2) * edge[b // 10:-b // 10].std()                 # the tone's amplitude (samples miss its peaks)
    assert 0.445 < level < 0.51                                        # within 1 dB at 80 % of Nyquist
    if b < a:                                                          # downsampling: no alias of a high tone
        alias = StreamResampler(a, b).resample_chunk(_tone(1.15 * nyquist, a))
        assert np.abs(alias[b // 10:]).max() < 0.5 * 10 ** (-50 / 20)
    assert np.allclose(StreamResampler(a, b).resample_chunk(np.ones(a, np.float32))[b // 10:], 1.0, atol=1e-5)


def test_bad_rates_are_refused():
    with pytest.raises(ValueError):
        StreamResampler(0, 16000)
