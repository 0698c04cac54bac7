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


def test_instant_and_rvc_voices_stream_without_clicks(workspace, services, small_torch_ops):
    from helpers import make_feature_experiment, make_voice
    from voiceapp.infer.models import load_voice, load_voice_file
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.live.engines import window_engine
    from voiceapp.train.instant import build_instant

    exp = make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1), sample_rate=16000)
    voices = [load_voice_file(build_instant(exp, workspace)),
              load_voice(make_voice(workspace, "tiny_rvc", sample_rate=40000), services)]
    x = harmonic(180.0, 1.5, 16000, amplitude=0.4) * np.hanning(24000) ** 0.2
    for voice in voices:
        conv = StreamConverter(window_engine(voice, InferConfig(f0_method="pm"), services=services),
                               LiveConfig(block_ms=100, context_ms=400))
        y = _stream(conv, x, 1600)
        expected = round((len(x) - conv.delay_samples) * voice.sample_rate / 16000)
        assert abs(len(y) - expected) <= 1 and np.all(np.isfinite(y))
        assert np.abs(y).max() > 1e-3 and np.abs(np.diff(y)).max() < 0.5       # no jump at a block join


def test_live_cli_streams_a_file(workspace, tmp_path, capsys):
    import soundfile as sf

    from helpers import make_feature_experiment, write_wav
    from voiceapp import cli
    from voiceapp.train.instant import build_instant

    build_instant(make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1), sample_rate=16000), workspace)
    src = write_wav(tmp_path / "in.wav", harmonic(180.0, 1.0, 16000, amplitude=0.4), 16000)
    out = tmp_path / "out.wav"
    assert cli.main(["live", "--model", "alice", "--input", str(src), "--out", str(out), "--block-ms", "100",
                     "--f0-method", "pm", "--gate-db", "-60", "--root", str(workspace.root)]) == 0
    printed = capsys.readouterr().out
    latency = 1600 + 320 + 2                        # block + look-ahead (+2 samples of rounding); no resampler at 16 kHz
    assert len(sf.read(out)[0]) == 16000 - latency and f"{latency} shorter than the input" in printed
    assert "load mean" in printed and "as set x10" in printed and "dropped 0" in printed
    assert "adaptation off" in printed and printed.count("ms compute") == 10
    assert cli.main(["live", "--model", "passthrough", "--input", str(src), "--out", str(out), "--quiet",
                     "--root", str(workspace.root)]) == 0
    assert "passthrough x10" in capsys.readouterr().out
    assert cli.main(["live", "--model", "passthrough", "--input", str(src), "--out", str(out), "--quiet",
                     "--realtime", "--root", str(workspace.root)]) == 0          # paced at real time: ~1 s
    assert "adaptive (real-time pacing)" in capsys.readouterr().out and len(sf.read(out)[0]) == 16000 - latency
