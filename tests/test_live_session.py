"""The live session: fixed latency at any device rate, smooth joins, resets, overload handling, the noise gate
(generated audio, tiny voices with the fake content encoder, CPU)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import harmonic
from voiceapp.audio import highpass
from voiceapp.errors import ConfigError, VoiceAppError
from voiceapp.live.engines import PitchTrack, WindowEngine
from voiceapp.live.session import LiveSession, LiveSettings, Level, open_session


def _voiced(seconds: float, rate: int) -> np.ndarray:
    """A voiced signal with a soft onset and end (harmonics of 180 Hz)."""
    n = int(seconds * rate)
    return (harmonic(180.0, seconds, rate, amplitude=0.4) * np.hanning(n) ** 0.2).astype(np.float32)


def _stream(session: LiveSession, x: np.ndarray, seed: int = 0, max_chunk: int = 2400) -> tuple[np.ndarray, list]:
    """Push `x` in random chunk sizes; returns the output and (input so far, output so far) after each push."""
    rng = np.random.default_rng(seed)
    outs, counts, i = [], [], 0
    while i < len(x):
        chunk = x[i:i + int(rng.integers(1, max_chunk))]
        outs.append(session.push(chunk))
        i += len(chunk)
        counts.append((i, sum(len(o) for o in outs)))
    return np.concatenate(outs), counts


@pytest.fixture
def instant(workspace):
    from helpers import make_feature_experiment
    from voiceapp.train.instant import build_instant

    build_instant(make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1), sample_rate=16000), workspace)
    return "alice"


@pytest.mark.parametrize("rate", [48000, 44100])
def test_output_is_the_input_minus_the_latency_without_clicks(instant, services, small_torch_ops, rate):
    # adaptation off: on a busy machine the measured load would step the level down (tests assert no timings)
    session = open_session(LiveSettings(model=instant, block_ms=100, gate_db=None, device_rate=rate), services,
                           level="as set", adaptive=False)
    x = _voiced(2.0, rate)
    y, counts = _stream(session, x)
    latency = session.latency_samples
    assert latency == pytest.approx(rate * session.latency_ms / 1000, abs=1)
    assert session.latency_ms >= 120                                  # block + look-ahead at least
    for n_in, n_out in counts:                                       # exact after every push, not just at the end
        assert n_out == max(0, n_in - latency)
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 1e-3
    assert np.abs(np.diff(y)).max() < 0.5                           # no jump at a block join
    stats = session.stats()
    assert stats["level"] == "as set" and stats["blocks"] >= 19 and stats["dropped"] == 0
    assert stats["latency_ms"] == pytest.approx(session.latency_ms, abs=0.1)
    assert (stats["warning"] is None) == (session.measured["as set"] <= 0.8)
    assert {"load", "degraded", "in_db", "out_db", "gate_open"} <= set(stats)


def test_joins_of_a_passthrough_session_are_as_smooth_as_the_input():
    rate = 48000
    session = LiveSession(LiveSettings(model="passthrough", gate_db=None, device_rate=rate, block_ms=50),
                          [Level("passthrough", WindowEngine())])
    x = _voiced(2.0, rate)
    y, _ = _stream(session, x)
    steady = slice(rate // 4, len(y))
    assert np.abs(np.diff(y[steady])).max() <= np.abs(np.diff(x)).max() * 1.1
    heard = highpass(x, rate)[0]                                     # the session's 48 Hz high-pass (causal)
    assert np.abs(y[steady] - heard[steady]).max() < 0.02            # output[k] is input[k], played `latency` later


def test_reset_gives_the_same_output_for_the_same_input(instant, services, small_torch_ops):
    session = open_session(LiveSettings(model=instant, block_ms=50, gate_db=None, device_rate=48000), services,
                           level="as set", adaptive=False)
    x = _voiced(1.0, 48000)
    first, _ = _stream(session, x)
    session.reset()
    again, _ = _stream(session, x)
    assert np.array_equal(first, again) and session.stats()["blocks"] > 0


class _Slow(WindowEngine):
    """Passthrough that takes `seconds` per block (or only on the blocks listed in `only`)."""

    def __init__(self, seconds: float, only: set[int] | None = None) -> None:
        super().__init__()
        self.seconds, self.only, self.calls = seconds, only, 0

    def convert(self, window, start, stop, origin=0):
        self.calls += 1
        if self.only is None or self.calls in self.only:
            time.sleep(self.seconds)
        return super().convert(window, start, stop, origin) * 0.5     # audibly not the passthrough level


def test_a_slow_engine_is_overloaded_and_the_session_steps_down_instead_of_falling_behind():
    rate, block_ms = 16000, 50
    slow = _Slow(0.08)                                                # 80 ms per 50 ms block: load 1.6
    session = LiveSession(LiveSettings(model="slow", block_ms=block_ms, gate_db=None, device_rate=rate),
                          [Level("as set", slow), Level("passthrough", WindowEngine())])
    x = _voiced(1.5, rate)
    block = rate * block_ms // 1000
    seen, total = [], 0
    for i in range(0, len(x), block):
        total += len(session.push(x[i:i + block]))
        seen.append(session.stats())
        assert total == max(0, i + block - session.latency_samples)  # never further behind than the latency
    assert seen[3]["level"] == "passthrough" and seen[3]["degraded"]  # three slow blocks, then a lighter level
    assert "cannot keep up" in seen[3]["warning"] and seen[1]["warning"] is None
    assert max(s["load"] for s in seen) > 1.0 and slow.calls == 3
    # a caller that hands over many blocks at once: the newest are converted, the older ones pass through
    session = LiveSession(LiveSettings(model="slow", block_ms=block_ms, gate_db=None, device_rate=rate),
                          [Level("as set", _Slow(0.08)), Level("passthrough", WindowEngine())],
                          measured={"as set": 1.6})
    assert len(session.push(x[:8 * block])) == 8 * block - session.latency_samples
    assert session.stats()["dropped"] == 7 and session.stats()["level"] == "passthrough"


def test_a_single_slow_block_does_not_flip_levels():
    rate, block_ms = 16000, 50
    spike = _Slow(0.2, only={4})
    session = LiveSession(LiveSettings(model="spike", block_ms=block_ms, gate_db=None, device_rate=rate),
                          [Level("as set", spike), Level("passthrough", WindowEngine())])
    x = _voiced(1.0, rate)
    block = rate * block_ms // 1000
    levels = []
    for i in range(0, len(x), block):
        session.push(x[i:i + block])
        levels.append(session.stats()["level"])
    assert set(levels) == {"as set"} and spike.calls == len(levels)


def test_open_session_warns_when_the_model_is_too_heavy(instant, services, small_torch_ops, monkeypatch):
    from voiceapp.live import engines

    fast = engines.WorldWindow.convert

    def slow_unless_pm(self, window, start, stop, origin=0):
        if self.cfg.f0_method != "pm":
            time.sleep(0.12)                                          # > a 100 ms block: load above 1
        return fast(self, window, start, stop, origin)

    monkeypatch.setattr(engines.WorldWindow, "convert", slow_unless_pm)
    session = open_session(LiveSettings(model=instant, f0_method="harvest", gate_db=None), services)
    stats = session.stats()
    assert stats["levels"] == ["as set", "pm pitch", "pm pitch, 300 ms context", "passthrough"]
    assert stats["level"] != "as set" and stats["degraded"]        # which lighter level: the machine's load says
    assert "too heavy for live use on this machine" in stats["warning"]
    assert "instant voice (16 kHz) with harvest pitch" in stats["warning"]
    light = open_session(LiveSettings(model=instant, f0_method="pm", gate_db=None), services)
    assert (light.stats()["warning"] is None) == (light.measured["as set"] <= 0.8)    # no timing asserted


def test_the_gate_silences_noise_and_opens_for_speech():
    rate = 16000
    session = LiveSession(LiveSettings(model="passthrough", gate_db=-40.0, device_rate=rate, block_ms=50),
                          [Level("passthrough", WindowEngine())])
    rng = np.random.default_rng(1)
    noise = (0.001 * rng.standard_normal(rate)).astype(np.float32)          # about -60 dBFS
    speech = _voiced(1.0, rate)
    quiet = session.push(noise)
    assert not session.stats()["gate_open"] and np.abs(quiet[len(quiet) // 2:]).max() == 0.0
    loud = session.push(speech)
    assert session.stats()["gate_open"] and np.abs(loud).max() > 0.1
    assert session.stats()["in_db"] > -30 and session.stats()["out_db"] > -30
    hold = session.push(noise[:800])                                        # one quiet block: held open
    assert session.stats()["gate_open"] and len(hold) == 800


def test_bad_settings_and_a_missing_model_are_refused(services):
    with pytest.raises(VoiceAppError, match="nobody"):
        open_session(LiveSettings(model="nobody"), services)
    with pytest.raises(ConfigError, match="block_ms"):
        LiveSettings(model="x", block_ms=55)
    with pytest.raises(ConfigError, match="gate_db"):
        LiveSettings(model="x", gate_db=12.0)


def test_the_pitch_track_keeps_emitted_frames_and_continues_them():
    track = PitchTrack()
    first = np.full(30, 200.0, dtype=np.float32)
    out = track.fix(first, origin_frame=0, commit_until=20)          # frames 0..19 emitted
    assert np.allclose(out, 200.0)
    later = np.full(30, 150.0, dtype=np.float32)                     # a shorter view says 150 Hz for frames 10..
    later[25] = 600.0                                                # an octave error (x4) on a new frame
    later[27] = 0.0                                                  # a lone unvoiced frame inside voicing
    out = track.fix(later, origin_frame=10, commit_until=20)         # frames 10..29 seen, 10..29 emitted
    assert np.allclose(out[:10], 200.0)                              # frames 10..19 kept as emitted
    assert out[15] == pytest.approx(150.0) and out[25] == pytest.approx(150.0) and out[27] == pytest.approx(150.0)
    silent = np.zeros(30, dtype=np.float32)
    silent[15] = 180.0                                               # a lone voiced frame in silence
    assert track.fix(silent, origin_frame=100, commit_until=30)[15] == 0.0
    track.reset()
    assert np.allclose(track.fix(later, origin_frame=10, commit_until=0)[:10], 150.0)   # nothing kept after reset


def test_the_pitch_tracker_runs_on_the_new_tail_of_a_window_and_keeps_the_emitted_frames():
    from types import SimpleNamespace

    from voiceapp.live.engines import PITCH_MARGIN_FRAMES, _pitch

    seen = []

    def tracker(x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        return np.full(len(x) // 160 + 1, 200.0, dtype=np.float32)

    engine = SimpleNamespace(parts=SimpleNamespace(f0_fn=tracker), pitch=PitchTrack())
    window = np.zeros(86 * 160, dtype=np.float32)
    first = _pitch(engine, window, 86, 80 * 160, 84 * 160, origin=0)          # nothing known: the whole window
    assert seen[-1] == len(window) and np.allclose(first, 200.0)
    assert engine.pitch.known_frames(0, 86) == 84 and engine.pitch.known_frames(5, 86) == 79
    later = _pitch(engine, window, 86, 80 * 160, 84 * 160, origin=4 * 160)    # 4 frames on: 80 known
    assert seen[-1] == len(window) - (80 - PITCH_MARGIN_FRAMES) * 160        # the tail only
    assert later.shape == (86,) and np.allclose(later, 200.0)                # the known frames from the track


def test_an_rvc_voice_streams_with_its_levels(workspace, services, small_torch_ops):
    from helpers import make_voice

    make_voice(workspace, "tiny_rvc", sample_rate=40000)
    session = open_session(LiveSettings(model="tiny_rvc", block_ms=100, gate_db=None, device_rate=48000), services,
                           level="as set", adaptive=False)
    assert session.stats()["levels"] == ["as set", "pm pitch, 300 ms context", "passthrough"]
    x = _voiced(1.5, 48000)
    y, counts = _stream(session, x, seed=2)
    assert all(n_out == max(0, n_in - session.latency_samples) for n_in, n_out in counts)
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 1e-3 and np.abs(np.diff(y)).max() < 0.5


def _levels_over(session: LiveSession, x: np.ndarray, block: int) -> list[str]:
    levels = []
    for i in range(0, len(x) - block + 1, block):
        session.push(x[i:i + block])
        levels.append(session.stats()["level"])
    return levels


def _runs(levels: list[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for name in levels:
        runs = runs[:-1] + [(name, runs[-1][1] + 1)] if runs and runs[-1][0] == name else runs + [(name, 1)]
    return runs


def test_the_session_steps_back_up_after_seconds_of_headroom_and_backs_off_when_that_fails():
    rate, block = 16000, 800                                          # 50 ms blocks
    settings = LiveSettings(model="slow", block_ms=50, gate_db=None, device_rate=rate)
    x = _voiced(10.0, rate)
    briefly = LiveSession(settings, [Level("as set", _Slow(0.08, only={1, 2, 3})),
                                     Level("passthrough", WindowEngine())])
    runs = _runs(_levels_over(briefly, x, block))
    assert [name for name, _ in runs] == ["as set", "passthrough", "as set"]
    assert runs[0][1] == 2 and runs[1][1] >= 60     # down after the 3rd slow block; up only after 3 s of headroom
    always = LiveSession(settings, [Level("as set", _Slow(0.08)), Level("passthrough", WindowEngine())])
    runs = _runs(_levels_over(always, x, block))
    assert [name for name, _ in runs][:4] == ["as set", "passthrough", "as set", "passthrough"]
    assert runs[1][1] >= 60 and runs[3][1] >= 120                     # a failed try doubles the wait (3 s, 6 s)


def test_a_quick_voice_searches_only_the_new_frames_of_each_block(workspace, services, small_torch_ops):
    from helpers import make_feature_experiment
    from voiceapp.train.config import TrainConfig
    from voiceapp.train.quick import train_quick

    exp = make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1), sample_rate=16000)
    train_quick(exp, TrainConfig(experiment="alice", engine="quick", preset="tiny", max_steps=1, validation_clips=1),
                workspace)
    session = open_session(LiveSettings(model="alice", block_ms=100, gate_db=None, device_rate=16000), services,
                           level="as set", adaptive=False)
    engine = session.levels[0].engine
    searched = []
    inner = engine.parts.matcher
    search = inner.search
    inner.search = lambda queries, k: searched.append(len(queries)) or search(queries, k)
    try:
        y, _ = _stream(session, _voiced(1.5, 16000), max_chunk=1600)
    finally:
        inner.search = search
    assert engine.margin_frames == 6 and len(engine.matches) > 0
    # without the carried neighbours each block would search its 5 content frames + 2 * (6 + 1) of margin
    assert max(searched[3:]) <= 8 and np.all(np.isfinite(y)) and np.abs(np.diff(y)).max() < 0.5
    session.reset()
    assert engine.matches == {}


def test_blocks_arriving_together_once_are_converted_and_only_repeated_lateness_steps_down():
    rate, block_ms = 16000, 50
    block = rate * block_ms // 1000
    settings = LiveSettings(model="fast", block_ms=block_ms, gate_db=None, device_rate=rate)
    x = _voiced(4.0, rate)
    # load 0.5 as measured: two blocks at once (a hiccup of the machine or the transport) cost one block length
    session = LiveSession(settings, [Level("as set", _Slow(0.0)), Level("passthrough", WindowEngine())],
                          measured={"as set": 0.5})
    session.push(x[:2 * block])
    assert session.stats()["dropped"] == 0 and session.stats()["level"] == "as set"
    # late three times within 3 s (35 ms per 50 ms block, three blocks at once): this level cannot keep up here
    session = LiveSession(settings, [Level("as set", _Slow(0.035)), Level("passthrough", WindowEngine())],
                          measured={"as set": 0.7})
    for start in (0, 6, 12):
        session.push(x[start * block:(start + 3) * block])          # three blocks at once: 2.1 block lengths
        session.push(x[(start + 3) * block:(start + 6) * block])
    assert session.stats()["level"] == "passthrough" and session.stats()["dropped"] > 0


def test_a_hopeless_level_is_not_tried_again():
    rate, block = 16000, 800                                          # 50 ms blocks
    settings = LiveSettings(model="heavy", block_ms=50, gate_db=None, device_rate=rate)
    heavy = _Slow(0.12)                                               # 120 ms per 50 ms block: load 2.4
    session = LiveSession(settings, [Level("as set", heavy), Level("passthrough", WindowEngine())])
    levels = _levels_over(session, _voiced(8.0, rate), block)
    assert levels[:2] == ["as set"] * 2 and set(levels[3:]) == {"passthrough"}   # never back: each try stalls
    assert heavy.calls == 3


def test_a_session_thread_runs_one_torch_and_one_blas_thread_until_the_last_session_ends(monkeypatch):
    """Two session threads, as the Live tab's server runs them: the BLAS limit is taken by the first and given
    back by the last (threadpoolctl recorded here: OpenBLAS's own cross-thread behaviour depends on which thread
    set it first, so the process-wide effect is measured by bench/live.py's per-thread CPU, not asserted)."""
    import threading

    import threadpoolctl
    import torch

    from voiceapp.live.session import one_compute_thread

    calls: list = []

    class Limiter:
        def __init__(self, limits=None, user_api=None) -> None:
            calls.append(("limit", limits, user_api))

        def restore_original_limits(self) -> None:
            calls.append(("restore",))

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", Limiter)
    torch_before = torch.get_num_threads()
    seen: dict = {}

    def session(name: str, entered: threading.Event, leave: threading.Event) -> None:
        with one_compute_thread():
            seen[name] = torch.get_num_threads()
            entered.set()
            leave.wait(10)

    events = {name: (threading.Event(), threading.Event()) for name in ("a", "b")}
    threads = {name: threading.Thread(target=session, args=(name, *events[name])) for name in events}
    threads["a"].start()
    events["a"][0].wait(10)
    threads["b"].start()
    events["b"][0].wait(10)
    events["a"][1].set()
    threads["a"].join(10)
    seen["after_a"] = list(calls)                 # b still runs: nothing given back yet
    events["b"][1].set()
    threads["b"].join(10)
    assert seen["a"] == seen["b"] == 1 and torch.get_num_threads() == torch_before
    assert seen["after_a"] == [("limit", 1, "blas")]
    assert calls == [("limit", 1, "blas"), ("restore",)]
    with one_compute_thread():                    # a later session takes it again
        pass
    assert calls[-2:] == [("limit", 1, "blas"), ("restore",)]
