"""`python -m voiceapp index EXP` and `python -m voiceapp infer ...` as a script would call them."""

import numpy as np

from helpers import harmonic, write_wav
from helpers import make_index, make_voice
from voiceapp import cli


def _root(workspace):
    return ["--root", str(workspace.root)]


def test_index_command_builds_and_copies(workspace, capsys):
    make_index(workspace, "alice", "v2")  # writes features (and a first index)
    for old in workspace.experiment("alice").root.glob("*.index"):
        old.unlink()
    assert cli.main(["index", "alice", *_root(workspace)]) == 0
    out = capsys.readouterr().out
    assert "added_IVF" in out and "rows" in out
    assert list(workspace.voice_dir("alice").glob("added_IVF*_Flat_nprobe_1_alice_v2.index"))
    assert cli.main(["index", "nobody", *_root(workspace)]) == 2


def test_infer_command_file_and_folder(tmp_path, workspace, capsys):
    make_voice(workspace, "bob", sample_rate=32000)
    make_index(workspace, "bob", "v2")
    src = write_wav(tmp_path / "in" / "a.wav", harmonic(200, 0.6, 22050), 22050)
    out = tmp_path / "a_bob.wav"
    code = cli.main(["infer", "--model", "bob", "--input", str(src), "--out", str(out), "--f0-method", "pm",
                     "--transpose", "12", "--index-rate", "0.5", "--precision", "fp32", *_root(workspace)])
    text = capsys.readouterr().out
    assert code == 0 and out.is_file(), text
    assert "added_IVF" in text and "real-time factor" in text
    import soundfile as sf

    audio, rate = sf.read(out)
    assert rate == 32000 and abs(len(audio) - 0.6 * 32000) <= 320 and np.abs(audio).max() > 0
    write_wav(tmp_path / "in" / "b.wav", harmonic(300, 0.3, 16000), 16000)
    (tmp_path / "in" / "bad.wav").write_bytes(b"not audio")
    code = cli.main(["infer", "--model", str(workspace.voice_model_path("bob")), "--index", "none", "--input",
                     str(tmp_path / "in"), "--out", str(tmp_path / "outdir"), "--format", "flac",
                     "--f0-method", "pm", *_root(workspace)])
    text = capsys.readouterr().out
    assert code == 2 and "FAIL" in text and "bad.wav" in text  # one bad file: reported, others done
    assert (tmp_path / "outdir" / "a.flac").is_file() and (tmp_path / "outdir" / "b.flac").is_file()


def test_infer_command_errors(tmp_path, workspace, capsys):
    src = write_wav(tmp_path / "a.wav", harmonic(200, 0.3, 16000), 16000)
    assert cli.main(["infer", "--model", "ghost", "--input", str(src), "--out", str(tmp_path / "o.wav"),
                     *_root(workspace)]) == 2
    assert "ghost" in capsys.readouterr().err
    make_voice(workspace, "carol")
    assert cli.main(["infer", "--model", "carol", "--input", str(src), "--out", str(tmp_path / "o.wav"),
                     "--f0-method", "nope", *_root(workspace)]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli.main(["infer", "--model", "carol", "--input", str(src), "--out", str(tmp_path / "o.wav"),
                     "--index-rate", "3", *_root(workspace)]) == 2
