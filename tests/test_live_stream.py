"""The streaming converter: fixed delay, smooth joins, no state across sessions (generated audio, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import harmonic
from voiceapp.errors import ConfigError
from voiceapp.live.engines import WindowEngine
from voiceapp.live.stream import LiveConfig, StreamConverter


def _stream(conv: StreamConverter, x: np.ndarray, block: int) -> np.ndarray:
    return np.concatenate([conv.push(x[i:i + block]) for i in range(0, len(x), block)])


def test_output_is_the_input_minus_the_delay_and_joins_are_smooth():
    x = harmonic(180.0, 2.0, 16000, amplitude=0.4)
    conv = StreamConverter(WindowEngine(), LiveConfig(block_ms=50, lookahead_ms=20, crossfade_ms=10))
    y = _stream(conv, x, 800)
    assert len(y) == len(x) - conv.delay_samples
    assert np.max(np.abs(y - x[:len(y)])) < 1e-4          # passthrough: output[k] is input[k]
    assert np.abs(np.diff(y)).max() <= np.abs(np.diff(x)).max() + 1e-4


def test_state_resets_between_sessions():
    x = harmonic(200.0, 1.0, 16000, amplitude=0.4)
    conv = StreamConverter(WindowEngine(), LiveConfig(block_ms=100))
    first = _stream(conv, x, 1600)
    conv.reset()
    again = _stream(conv, x, 1600)
    assert np.array_equal(first, again)


def test_bad_config_is_refused():
    with pytest.raises(ConfigError):
        LiveConfig(block_ms=55)
