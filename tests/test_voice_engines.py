"""The instant and quick voice engines on generated voices with the fake content encoder (no weights, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import harmonic, make_feature_experiment
from voiceapp.errors import Cancelled, InputError, VoiceAppError
from voiceapp.infer.models import load_voice_file
from voiceapp.infer.pipeline import InferConfig, convert
from voiceapp.progress import CancelToken
from voiceapp.train.config import TrainConfig
from voiceapp.train.instant import build_instant, engine_model_path
from voiceapp.train.quick import train_quick

RATE = 16000


@pytest.fixture
def target(workspace):
    """20 s of a generated voice (5 clips), features with the fake 16-d encoder."""
    return make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1, 3.9), sample_rate=RATE)


def _source(seconds: float = 1.5) -> np.ndarray:
    return harmonic(180.0, seconds, 16000, amplitude=0.4) * np.hanning(int(seconds * 16000)) ** 0.2


def _quick_cfg(**changes) -> TrainConfig:
    base = dict(experiment="alice", engine="quick", preset="tiny", max_steps=2, validation_clips=1, seed=3)
    return TrainConfig(**{**base, **changes})


def test_instant_voice_converts_a_generated_voice(workspace, services, target):
    path = build_instant(target, workspace)
    assert path == engine_model_path(workspace, "alice") and path.suffix == ".safetensors"
    voice = load_voice_file(path)
    assert (voice.engine, voice.sample_rate, voice.embedder) == ("instant", RATE, "fake-16")
    assert voice.minutes_of_data == pytest.approx(20 / 60, abs=0.02)
    x = _source()
    cfg = InferConfig(f0_method="pm")
    a = convert(x, 16000, voice, cfg, services=services)
    b = convert(x, 16000, voice, cfg, services=services)
    assert abs(len(a.audio) - len(x)) <= 160 and a.sample_rate == RATE
    assert np.all(np.isfinite(a.audio)) and np.abs(a.audio).max() > 0.01
    assert np.array_equal(a.audio, b.audio)                      # deterministic
    assert a.encoder == "fake-16" and a.index_path is None


def test_any_length_and_joins_without_clicks(workspace, services, target):
    voice = load_voice_file(build_instant(target, workspace))
    long = np.tile(_source(1.0), 30)                              # 30 s: several pieces
    out = convert(long, 16000, voice, InferConfig(f0_method="pm", segment_center_s=6.0, segment_max_s=7.0),
                  services=services)
    assert out.segments > 1 and abs(len(out.audio) - len(long)) <= 160
    jumps = np.abs(np.diff(out.audio))
    assert jumps.max() < 0.5                                      # no sample-to-sample jump at a join


def test_neighbour_blend_switches_between_source_and_target(workspace, services, target):
    _train(target, workspace, max_steps=3)
    voice = load_voice_file(engine_model_path(workspace, "alice"))
    assert voice.engine == "quick" and voice.net is not None
    x = _source()
    full = convert(x, 16000, voice, InferConfig(f0_method="pm", neighbour_blend=1.0, protect=0.5), services=services)
    none = convert(x, 16000, voice, InferConfig(f0_method="pm", neighbour_blend=0.0, protect=0.5), services=services)
    assert not np.allclose(full.audio, none.audio)

    from voiceapp.features.encoders import load_encoder
    from voiceapp.index.neighbours import FrameMatcher
    from voiceapp.infer import world_engine

    parts = world_engine._Parts(load_encoder("fake-16"), FrameMatcher(voice.content), None, "pm")
    content = voice.content[7:8] + 0.0          # one piece whose source content equals target frame 7's
    f0 = np.array([150.0, 150.0], dtype=np.float32)
    cfg = InferConfig(protect=0.5)
    # blend 0: the network sees the source's own content; blend 1: only the average of the matched target frames
    seen = []
    net = voice.net
    voice.net = lambda features, pitch, frames: seen.append(features.clone()) or torch.zeros(1, 1, 2, frames.shape[-1])
    world_engine._acoustic_frames(voice, parts, content, f0, cfg, 0.0)
    world_engine._acoustic_frames(voice, parts, content, f0, cfg, 1.0)
    voice.net = net
    idx = parts.matcher.search(content, world_engine.NEIGHBOURS)
    assert np.allclose(seen[0].numpy()[0], content)
    assert np.allclose(seen[1].numpy()[0], voice.content[idx].mean(axis=1))

    # instant: the output frames are exactly the average of the matched target frames
    instant = load_voice_file(build_instant(target, workspace))
    sp, ap = world_engine._acoustic_frames(instant, parts, content, f0, cfg, 1.0)
    assert np.allclose(sp, instant.sp[idx[0]].mean(axis=0)) and np.allclose(ap, instant.ap[idx[0]].mean(axis=0))


def _train(exp, workspace, token: CancelToken | None = None, **changes):
    return train_quick(exp, _quick_cfg(**changes), workspace, cancel=token or CancelToken())


def _weights(workspace) -> dict[str, torch.Tensor]:
    state = torch.load(sorted(workspace.experiment("alice").root.glob("Q_*.pth"))[-1], weights_only=True)
    return state["model"]


def test_quick_trains_saves_and_resumes_exactly(workspace, target, tmp_path):
    result = _train(target, workspace, max_steps=2)
    assert result.step == 2 and result.voice_model.is_file() and result.checkpoint.name == "Q_2.pth"
    straight = _weights(workspace)
    events = [json.loads(line)["type"] for line in target.events_path.read_text().splitlines()]
    assert events[0] == "start" and "save" in events and events[-1] == "done"

    for path in target.root.glob("Q_*.pth"):
        path.unlink()
    assert _train(target, workspace, max_steps=1).step == 1
    resumed = _train(target, workspace, max_steps=2)                 # 1 + 1 == 2 steps
    assert resumed.step == 2
    again = _weights(workspace)
    assert all(torch.equal(straight[k], again[k]) for k in straight)
    assert "resume" in target.events_path.read_text()


def test_stop_leaves_a_loadable_model(workspace, target):
    token = CancelToken()

    class Stopper:
        calls = 0

        def __call__(self, fraction: float, message: str) -> None:
            self.calls += 1
            if "step 2" in message:
                token.set()

    with pytest.raises(Cancelled):
        train_quick(target, _quick_cfg(max_steps=50), workspace, progress=Stopper(), cancel=token)
    voice = load_voice_file(engine_model_path(workspace, "alice"))
    assert voice.engine == "quick" and voice.steps >= 1
    assert target.events_path.read_text().strip().splitlines()[-1].count('"stopped"') == 1


def test_model_file_is_not_a_pickle_and_a_tampered_header_is_refused(workspace, target):
    path = build_instant(target, workspace)
    assert not path.read_bytes().startswith(b"PK") and b"voiceapp" in path.read_bytes()[:4096]
    data = bytearray(path.read_bytes())
    at = data.index(b"median_f0_hz")
    at += next(i for i, c in enumerate(data[at:]) if chr(c).isdigit() and chr(c) != "0")  # a digit of its value
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    bad = path.with_name("bad.safetensors")
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="bad.safetensors"):
        load_voice_file(bad)


def test_tts_speaks_into_an_instant_voice(workspace, services, target):
    from voiceapp.tts.speak import TtsConfig, speak

    path = build_instant(target, workspace)
    result = speak("Hello there.", "espeak", "en-us", TtsConfig(), voice_model=str(path),
                   infer_cfg=InferConfig(f0_method="pm"), services=services)
    assert result.audio is not None and result.sample_rate == RATE and result.index_path is None
    assert np.all(np.isfinite(result.audio)) and np.abs(result.audio).max() > 0.01
    assert "model file" in result.transpose.source          # the voice's own median pitch sets the transpose


def test_train_cli_engines(workspace, target, capsys):
    from voiceapp import cli

    root = str(workspace.root)
    assert cli.main(["train", "alice", "--root", root, "--engine", "instant"]) == 0
    assert "instant voice" in capsys.readouterr().out
    assert cli.main(["train", "alice", "--root", root, "--engine", "quick", "--preset", "tiny", "--max-steps", "2"]) == 0
    assert "trained alice (quick)" in capsys.readouterr().out
    assert json.loads(target.train_config_path.read_text())["engine"] == "quick"
    assert load_voice_file(engine_model_path(workspace, "alice")).engine == "quick"


def test_default_engine_follows_the_base_assets(workspace):
    from voiceapp.train.cli import default_engine

    engine, why = default_engine(workspace)
    assert engine == "quick" and "ContentVec" in why and "pretrained" in why


def test_bad_input_gives_clear_messages(workspace, services, target):
    voice = load_voice_file(build_instant(target, workspace))
    silent = convert(np.zeros(16000, np.float32), 16000, voice, InferConfig(f0_method="pm"), services=services)
    assert np.all(np.isfinite(silent.audio)) and any("silent" in n for n in silent.notes)
    short = convert(_source(0.1), 16000, voice, InferConfig(f0_method="pm"), services=services)
    assert abs(len(short.audio) - 1600) <= 160 and np.all(np.isfinite(short.audio))

    small = make_feature_experiment(workspace, name="tiny5", lengths_s=(2.5, 2.5), sample_rate=RATE)
    with pytest.raises(InputError, match=r"5 s of usable speech.*at least 15 s"):
        build_instant(small, workspace)
    nothing = workspace.experiment("nobody")
    with pytest.raises(VoiceAppError, match="features"):
        build_instant(nothing, workspace)


def test_live_span_only_acoustic_step_equals_the_whole_window(workspace, services, target):
    from voiceapp.live.engines import WorldWindow, receptive_frames

    _train(target, workspace, max_steps=2)
    quick = load_voice_file(engine_model_path(workspace, "alice"))
    torch.nn.init.normal_(quick.net.out.weight, std=0.2)          # a residual that depends on the neighbours
    instant = load_voice_file(build_instant(target, workspace))
    # tiny net: input conv k3 (1) + blocks k3 at dilations 1, 2 (1 + 2) + 1x1 convs (0), + 2 frames of margin
    assert receptive_frames(quick.net) == 6
    window = _source(1.2)
    start, stop = 9600, 11360
    for voice in (instant, quick):
        engine = WorldWindow(voice, InferConfig(f0_method="pm"), services)
        span = engine.convert(window, start, stop)
        engine.margin_frames = 10 ** 6                             # the whole window
        whole = engine.convert(window, start, stop)
        assert np.abs(whole).max() > 1e-3 and np.allclose(span, whole, atol=1e-5)
        if voice.net is not None:
            engine.margin_frames = 0                               # too little context for the net
            assert not np.allclose(engine.convert(window, start, stop), whole, atol=1e-5)


def test_the_approximate_matcher_finds_the_exact_neighbours_of_a_few_frames():
    from voiceapp.index.neighbours import FrameMatcher

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((64, 32)).astype(np.float32)
    target = (centres[rng.integers(0, 64, 6000)] + 0.3 * rng.standard_normal((6000, 32))).astype(np.float32)
    exact, fast = FrameMatcher(target), FrameMatcher(target, approximate=True)
    assert exact.coarse is None and fast.coarse is not None
    queries = target[rng.integers(0, 6000, 40)] + 0.1 * rng.standard_normal((40, 32)).astype(np.float32)
    a, b = exact.search(queries, 4), fast.search(queries, 4)
    assert b.shape == (40, 4) and b.dtype == np.int64 and (b >= 0).all()
    assert np.mean([len(set(x) & set(y)) / 4 for x, y in zip(a, b)]) > 0.9
    many = np.repeat(queries, 3, axis=0)                            # a whole file: the exact scan
    assert np.array_equal(fast.search(many, 4), exact.search(many, 4))
    small = FrameMatcher(target[:100], approximate=True)            # too few frames for lists: exact
    assert small.coarse is None and np.array_equal(small.search(queries, 4), FrameMatcher(target[:100]).search(queries, 4))


def test_the_quick_net_computes_a_span_as_the_whole_sequence_does():
    from voiceapp.nets.quicknet import QuickConfig, QuickNet

    torch.manual_seed(0)
    cfg = QuickConfig(content_dim=24, hidden=32, blocks=5, kernel=5)
    net = QuickNet(cfg).eval()
    torch.nn.init.normal_(net.out.weight, std=0.2)                  # a residual that depends on the context
    t = 60
    content, pitch = torch.randn(1, t, 24), torch.randn(1, t, 4)
    matched = torch.randn(1, t, 2, cfg.out_dims)
    with torch.inference_mode():
        whole = net(content, pitch, matched)
        for start, stop in ((28, 32), (0, 3), (57, 60), (0, 60), (59, 70)):
            part = net.forward_span(content, pitch, matched, start, stop)
            assert part.shape == whole[:, start:stop].shape
            assert torch.allclose(part, whole[:, start:stop], atol=1e-5)
        cropped = net(content[:, 10:50], pitch[:, 10:50], matched[:, 10:50])   # a crop pads its own edges ...
        assert not torch.allclose(cropped[:, :3], whole[:, 10:13], atol=1e-5)  # ... which a span must not do
