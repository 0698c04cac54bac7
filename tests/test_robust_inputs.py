"""The small cases of issue 14 point 6, each as a user would expect it.

A dataset given its own folder, `f0` with a bad file or a folder, a damaged feature file in `train`, a config
that is not one, a code-carrying pretrained file, a failed or killed dataset run, and the model cache that
must not reload everything on every conversion.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from helpers import harmonic, make_feature_experiment, phrase_with_gaps, write_wav
from voiceapp import cli
from voiceapp.errors import ConfigError


def _root(workspace):
    return ["--root", str(workspace.root)]


def _clip_names(ds):
    return sorted(p.name for p in ds.clips_dir.iterdir())


def test_dataset_given_its_own_folder_does_not_slice_its_clips(tmp_path, workspace, capsys):
    take = write_wav(tmp_path / "take.wav", phrase_with_gaps(16000, n=3), 16000)
    assert cli.main(["dataset", "alice", str(take), "--copy-raw", *_root(workspace)]) == 0
    ds = workspace.dataset("alice")
    clips = _clip_names(ds)
    assert clips and list(ds.raw_dir.iterdir())
    capsys.readouterr()
    assert cli.main(["dataset", "alice", str(ds.root), *_root(workspace)]) == 0
    assert "own clips and were left out" in capsys.readouterr().out
    assert _clip_names(ds) == clips  # 15 stay 15, not 45
    assert cli.main(["dataset", "alice", str(ds.clips_dir), *_root(workspace)]) == 2
    assert "own clips" in capsys.readouterr().err and _clip_names(ds) == clips


def test_failed_dataset_leaves_no_folder_and_killed_runs_leave_no_temporaries(tmp_path, workspace, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    assert cli.main(["dataset", "nothing", str(junk), *_root(workspace)]) == 2
    assert not workspace.dataset("nothing").root.exists()
    take = write_wav(tmp_path / "take.wav", phrase_with_gaps(16000, n=2), 16000)
    ds = workspace.dataset("bea")
    ds.clips_dir.mkdir(parents=True)
    ds.raw_dir.mkdir(parents=True)
    leftovers = [ds.clips_dir / ".abc_00001.k2j4.tmp.wav", ds.raw_dir / ".take_abc.wav.tmp"]  # what a kill leaves
    for path in leftovers:
        path.write_bytes(b"half")
    assert cli.main(["dataset", "bea", str(take), "--copy-raw", *_root(workspace)]) == 0
    assert not any(p.exists() for p in leftovers)
    assert not [p for p in ds.root.rglob("*") if ".tmp" in p.name]
    assert cli.main(["dataset", "bea", str(junk), *_root(workspace)]) == 0  # an existing dataset stays
    assert ds.root.is_dir() and _clip_names(ds)


def test_a_file_that_fails_midway_leaves_none_of_its_clips(tmp_path, workspace, services, monkeypatch):
    from voiceapp.dataset import prepare
    from voiceapp.errors import InputError

    take = write_wav(tmp_path / "take.wav", phrase_with_gaps(16000, n=3), 16000)
    real = prepare._ClipWriter.write_span
    calls = []

    def breaks_on_the_second_span(self, audio, offset):
        calls.append(offset)
        if len(calls) == 2:
            raise InputError("take.wav: cannot decode (truncated).")
        return real(self, audio, offset)

    monkeypatch.setattr(prepare._ClipWriter, "write_span", breaks_on_the_second_span)
    ds = workspace.dataset("cy")
    with pytest.raises(InputError):
        prepare.prepare_dataset([take], ds, services=services)
    assert not ds.root.exists()  # the first span's clips went with the file


def test_f0_processes_the_good_files_and_reports_the_bad(tmp_path, workspace, capsys):
    good = write_wav(tmp_path / "in" / "good.wav", harmonic(220, 0.5, 16000), 16000)
    bad = tmp_path / "in" / "bad.wav"
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "curves"
    assert cli.main(["f0", str(bad), str(good), "--method", "dio", "--out", str(out), *_root(workspace)]) == 2
    captured = capsys.readouterr()
    assert "FAIL" in captured.err and "bad.wav" in captured.err and "1 curve(s) written" in captured.err
    assert (out / "good.csv").is_file() and not (out / "bad.csv").exists()
    assert cli.main(["f0", str(tmp_path / "in"), "--method", "dio", "--out", str(tmp_path / "c2"),
                     *_root(workspace)]) == 2  # a folder: its files, with the bad one reported
    assert (tmp_path / "c2" / "good.csv").is_file()
    bad.unlink()
    assert cli.main(["f0", str(tmp_path / "in"), "--method", "dio", "--out", str(tmp_path / "c3"),
                     *_root(workspace)]) == 0
    assert (tmp_path / "c3" / "good.csv").read_text().startswith("0.00,")
    assert cli.main(["f0", str(tmp_path / "nowhere"), "--method", "dio", *_root(workspace)]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["rvc", "quick"])
def test_train_skips_a_damaged_feature_file_and_names_it(workspace, capsys, one_torch_thread, engine):
    if engine == "rvc":
        exp = make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7))
        args = ["--epochs", "1", "--pretrained", "none", "--batch-size", "2", "--validation-clips", "0",
                "--no-voice-each-save"]
    else:  # quick needs 15 s of speech (the default engine without RVC's base assets)
        exp = make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1, 3.9, 4.0), sample_rate=16000)
        args = ["--max-steps", "2"]
    damaged = exp.content_dir / "clip_01.npy"
    damaged.write_bytes(pickle.dumps({"not": "an array"}))
    assert cli.main(["train", "alice", "--device", "cpu", "--engine", engine, "--preset", "tiny", *args,
                     *_root(workspace)]) == 0
    err = capsys.readouterr().err
    assert str(damaged) in err and "damaged feature file" in err and "pickle" not in err


def test_train_config_that_is_not_one(tmp_path, workspace, capsys):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    for path in (passwd, listing, tmp_path / "missing.json"):
        assert cli.main(["train", "--config", str(path), *_root(workspace)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "delete it" not in err and "Traceback" not in err
        assert "python -m voiceapp train EXP" in err
        assert "not a Voiceapp training config" in err or "No training config" in err
    own = workspace.experiment("x").train_config_path
    own.parent.mkdir(parents=True)
    own.write_text("{broken")
    with pytest.raises(ConfigError, match="delete it"):  # the experiment's own file: that advice fits
        from voiceapp.train.config import TrainConfig

        TrainConfig.load(own)


class _Touch:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (self.target,))


def test_a_code_carrying_pretrained_file_is_refused_in_one_line(tmp_path, workspace):
    from voiceapp.train.pretrained import choose_pretrained

    witness = tmp_path / "ran"
    g = workspace.pretrained_path("G", "v2", 40000)
    g.parent.mkdir(parents=True)
    torch.save({"model": {"x": torch.zeros(1)}, "evil": _Touch(witness)}, g)
    torch.save({"model": {}}, workspace.pretrained_path("D", "v2", 40000))
    with pytest.raises(ConfigError) as err:
        choose_pretrained(workspace, "auto", "full", "v2", 40000, True, 768, "contentvec")
    message = str(err.value)
    assert "\n" not in message and "weights_only" not in message and "Python code" in message
    assert str(g) in message and "download it again" in message and not witness.exists()


def test_conversions_reuse_the_loaded_models(workspace, services):
    """What grew on the server: the model cache (4 items) thrashed on the 5 things one conversion uses, so every
    conversion loaded the voice, the encoder, the index and the decoder copy again."""
    from helpers import make_index, make_voice
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    make_voice(workspace, "bob")
    index = make_index(workspace, "bob", "v2")
    loads = []
    real_get = services.cache.get

    def counting_get(key, load):
        return real_get(key, lambda: (loads.append(key[0]), load())[1])

    services.cache.get = counting_get
    x = harmonic(200, 0.5, 16000)
    for seed in range(4):
        convert(x, 16000, load_voice("bob", services), InferConfig(f0_method="pm", seed=seed), index_path=index,
                services=services)
    assert sorted(loads) == sorted(set(loads)), loads  # each loaded once
    assert np.isfinite(x).all()
