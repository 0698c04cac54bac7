"""The Dataset stage end to end: clips, report, bad input, reruns, CLI, UI handler."""

import hashlib
import json
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from helpers import harmonic, phrase_with_gaps, write_wav
from voiceapp import cli
from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
from voiceapp.dataset.slicer import ChunkConfig
from voiceapp.errors import InputError


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_clips_at_both_rates_with_manifest_and_report(tmp_path, workspace, services):
    src = write_wav(tmp_path / "in" / "speech.wav", phrase_with_gaps(44_100, tone_s=5.0, n=3), 44_100)
    before = _digest(src)
    ds = workspace.dataset("alice")
    result = prepare_dataset([tmp_path / "in"], ds, DatasetConfig(sample_rate=40_000), services=services)
    assert _digest(src) == before
    clips = sorted(ds.clips_dir.glob("*.wav"))
    assert len(clips) == len(result.clips) >= 6  # 3 pieces of ~5 s -> 2 chunks each
    for clip in clips:
        info = sf.info(str(clip))
        assert info.samplerate == 40_000 and info.frames <= int(3.7 * 40_000)
        info16 = sf.info(str(ds.clips_16k_dir / clip.name))
        assert info16.samplerate == 16_000 and abs(info16.frames - info.frames * 0.4) <= 2
        audio, _ = sf.read(str(clip))
        assert 0.5 < np.max(np.abs(audio)) <= 0.9 + 1e-6  # RVC normalisation: 0.9 * 0.75 + 0.25 * peak
    report = json.loads(ds.report_path.read_text())
    assert report["clip_count"] == len(clips) and report["files_ok"] == 1
    assert 0.2 < report["input_minutes"] < 0.3 and report["kept_minutes"] > 0.2
    assert sum(report["length_histogram"]["counts"]) == len(clips)
    assert any("Under 1 minute" in a for a in report["advice"])


def test_rerun_skips_known_input_and_adds_new(tmp_path, workspace, services):
    a = write_wav(tmp_path / "a.wav", phrase_with_gaps(16_000, n=2), 16_000)
    ds = workspace.dataset("bob")
    first = prepare_dataset([a], ds, DatasetConfig(sample_rate=32_000), services=services)
    mtimes = {p.name: p.stat().st_mtime_ns for p in ds.clips_dir.glob("*.wav")}
    b = write_wav(tmp_path / "b.wav", phrase_with_gaps(16_000, n=2, tone_s=3.0), 16_000)
    second = prepare_dataset([a, b], ds, DatasetConfig(sample_rate=32_000), services=services)
    assert second.skipped_known == [a] and second.processed == [b]
    assert {p.name: p.stat().st_mtime_ns for p in ds.clips_dir.glob("*.wav") if p.name in mtimes} == mtimes
    assert len(second.clips) > len(first.clips)
    with pytest.raises(InputError, match="40000|32000"):
        prepare_dataset([a], ds, DatasetConfig(sample_rate=40_000), services=services)


def test_bad_inputs_are_reported_and_the_rest_is_processed(tmp_path, workspace, services):
    folder = tmp_path / "mixed"
    write_wav(folder / "good take.wav", phrase_with_gaps(22_050, n=2), 22_050)
    (folder / "random.wav").write_bytes(np.random.default_rng(1).bytes(10_000))
    (folder / "empty.wav").write_bytes(b"")
    write_wav(folder / "short.wav", harmonic(220, 0.1, 16_000), 16_000)
    write_wav(folder / "silence.wav", np.zeros(3 * 16_000, np.float32), 16_000)
    write_wav(folder / "low rate.wav", phrase_with_gaps(8_000, n=2), 8_000)
    write_wav(folder / "high rate.wav", phrase_with_gaps(192_000, n=2, tone_s=1.6), 192_000)
    six = np.stack([phrase_with_gaps(48_000, n=2)] * 6)
    write_wav(folder / "six channels.wav", six, 48_000)
    write_wav(folder / "hot float.wav", phrase_with_gaps(16_000, n=2) * 2.2, 16_000, subtype="FLOAT")
    write_wav(folder / "quote's \"name\" ü日本.wav", phrase_with_gaps(16_000, n=2), 16_000)
    digests = {p: _digest(p) for p in folder.iterdir()}
    result = prepare_dataset([folder], workspace.dataset("mix"), DatasetConfig(), services=services)
    reasons = {p.name: r for p, r in result.rejected}
    assert set(reasons) == {"random.wav", "empty.wav", "short.wav", "silence.wav"}
    assert "empty" in reasons["empty.wav"] and "too short" in reasons["short.wav"]
    assert "silent" in reasons["silence.wav"]
    assert all(name in reason for name, reason in reasons.items())
    processed = {p.name for p in result.processed}
    assert {"good take.wav", "low rate.wav", "high rate.wav", "six channels.wav", "hot float.wav"} <= processed
    assert any("ü日本" in p.name for p in result.processed)
    assert result.report["files_rejected"] == 4
    assert any("above full scale" in w for w in result.report["warnings"])
    assert {p: _digest(p) for p in folder.iterdir()} == digests


def test_clipping_low_level_and_noise_warnings(tmp_path, workspace, services):
    sr = 16_000
    clipped = np.clip(phrase_with_gaps(sr, n=2) * 4, -1, 1)
    quiet = phrase_with_gaps(sr, n=2) * 0.02 + 0.0
    noisy = phrase_with_gaps(sr, n=2) + np.random.default_rng(0).normal(0, 0.02, 2 * 2 * sr + int(0.8 * sr)).astype(np.float32)
    paths = [write_wav(tmp_path / "clipped.wav", clipped, sr), write_wav(tmp_path / "quiet.wav", quiet, sr),
             write_wav(tmp_path / "noisy.wav", noisy, sr)]
    cfg = DatasetConfig(slicer=__import__("voiceapp.dataset.slicer", fromlist=["x"]).SlicerConfig(threshold_db=-60))
    result = prepare_dataset(paths, workspace.dataset("levels"), cfg, services=services)
    text = " ".join(result.report["warnings"])
    assert "clipped.wav" in text and "clipping" in text
    assert "quiet.wav" in text and "low level" in text
    assert "noisy.wav" in text and "noise" in text


def test_no_chunking_keeps_pieces_whole(tmp_path, workspace, services):
    src = write_wav(tmp_path / "long.wav", phrase_with_gaps(16_000, tone_s=6.0, n=2), 16_000)
    result = prepare_dataset([src], workspace.dataset("whole"), DatasetConfig(chunk=ChunkConfig(chunk_s=0)),
                             services=services)
    assert len(result.clips) == 2
    assert all(c > 6.0 for c in [result.report["clip_seconds"]["min"]])


@pytest.mark.slow
def test_one_hour_file_in_bounded_memory(tmp_path, workspace, services):
    sr = 8_000
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", sr, 1, "PCM_16") as handle:
        for minute in range(60):
            block = rng.normal(0, 0.001, 60 * sr).astype(np.float32)
            if minute % 6 == 0:
                block[: 4 * sr] += harmonic(200, 4.0, sr, amplitude=0.5)
            handle.write(block)
    tracemalloc.start()
    result = prepare_dataset([path], workspace.dataset("hour"), DatasetConfig(sample_rate=40_000), services=services)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.report["input_minutes"] == pytest.approx(60.0, abs=0.1)
    assert 10 <= result.report["clip_count"] <= 30
    assert peak_bytes < 250 * 2**20, f"peak {peak_bytes / 2**20:.0f} MiB; the whole hour at 40 kHz is 550 MiB"


@pytest.mark.slow
def test_folder_of_a_thousand_short_files(tmp_path, workspace, services):
    folder = tmp_path / "many"
    folder.mkdir()
    sr = 16_000
    for i in range(1000):
        seconds = 0.7 if i % 10 == 0 else 0.2
        sf.write(str(folder / f"utt {i:04d}.wav"), harmonic(150 + 0.37 * i, seconds, sr), sr, subtype="PCM_16")
    result = prepare_dataset([folder], workspace.dataset("many"), DatasetConfig(), services=services)
    assert len(result.processed) == 100 and len(result.rejected) == 900
    assert len(result.clips) == 100
    assert all("too short" in reason for _, reason in result.rejected)


def test_cli_exit_codes(tmp_path, monkeypatch, capsys):
    root = tmp_path / "root"
    src = write_wav(tmp_path / "v.wav", phrase_with_gaps(16_000, n=2), 16_000)
    assert cli.main(["dataset", "v", str(src), "--root", str(root), "--sample-rate", "48000"]) == 0
    assert (root / "datasets" / "v" / "report.json").exists()
    assert cli.main(["--root", str(root), "dataset", "v2", str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "missing.wav" in err[-1]
    assert cli.main(["dataset", "v3", str(src), "--root", str(root), "--sample-rate", "44100"]) != 0
    import voiceapp.dataset.cli as dataset_cli

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dataset_cli, "prepare_dataset", boom)
    assert cli.main(["dataset", "v4", str(src), "--root", str(root)]) == 1
    assert "voiceapp.log" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_cli_help_lists_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "dataset" in out


def test_isolate_vocals_first_slices_the_vocals(tmp_path, workspace, services):
    sr = 44_100
    t = np.arange(int(7 * sr)) / sr
    voice = phrase_with_gaps(sr, tone_s=1.6, gap_s=0.9, n=3)
    voice = np.pad(voice, (0, len(t) - len(voice)))
    pad = 0.15 * np.sin(2 * np.pi * 110 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    song = np.stack([voice + pad, voice + pad]).astype(np.float32)
    src = write_wav(tmp_path / "song.wav", song, sr)
    before = _digest(src)
    result = prepare_dataset([src], workspace.dataset("sung"), DatasetConfig(isolate_vocals="dsp"), services=services)
    assert result.clips and _digest(src) == before
    source = next(iter(json.loads(workspace.dataset("sung").manifest_path.read_text())["sources"].values()))
    assert source["isolated_with"] == "dsp" and "vocals" in source["raw"]
