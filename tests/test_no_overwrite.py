"""Nothing lost: an output that would replace an input is refused before any work (issue 14, points 1 and 6).

`infer` (one file, a folder), the library's convert_file/convert_folder, the web endpoint for many files,
and `tts --out DIR/`.
"""

import os

import gradio as gr
import pytest
import soundfile as sf

from helpers import harmonic, make_voice, write_wav
from voiceapp import cli
from voiceapp.errors import InputError
from voiceapp.infer.pipeline import InferConfig, convert_file, convert_folder

SETTINGS = {"transpose_semitones": 0, "f0_method": "pm", "index_rate": 0.0, "filter_radius": 3,
            "rms_mix_rate": 0.25, "protect": 0.33, "resample_sr": 0, "speaker_id": 0, "seed": 0,
            "f0_curve": None}  # the Inference tab's settings by name, as test_infer_ui


def _root(workspace):
    return ["--root", str(workspace.root)]


def _recording(path):
    return write_wav(path, harmonic(200, 0.3, 16000), 16000)


def test_infer_refuses_an_output_that_is_its_input(tmp_path, workspace, capsys):
    src = _recording(tmp_path / "same.wav")
    before = src.read_bytes()
    # the model does not exist: the overwrite is refused before anything is loaded
    assert cli.main(["infer", "--model", "ghost", "--input", str(src), "--out", str(src), *_root(workspace)]) == 2
    err = capsys.readouterr().err
    assert "is the input file" in err and str(src) in err and "--out" in err and "ghost" not in err
    os.link(src, tmp_path / "hard.wav")
    (tmp_path / "soft.wav").symlink_to(src)
    for other in ("hard.wav", "soft.wav", "same"):  # the same inode, a link, the name without its suffix
        assert cli.main(["infer", "--model", "ghost", "--input", str(src), "--out", str(tmp_path / other),
                         *_root(workspace)]) == 2
        assert "is the input file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_infer_refuses_a_folder_converted_into_itself(tmp_path, workspace, capsys):
    folder = tmp_path / "takes"
    for name in ("a.wav", "sub/b.wav"):
        _recording(folder / name)
    before = {p: p.read_bytes() for p in folder.rglob("*.wav")}
    assert cli.main(["infer", "--model", "ghost", "--input", str(folder), "--out", str(folder),
                     *_root(workspace)]) == 2
    err = capsys.readouterr().err
    assert "would replace input files" in err and str(folder) in err and "(and 1 more)" in err
    assert {p: p.read_bytes() for p in folder.rglob("*.wav")} == before


def test_library_refuses_before_touching_the_voice(tmp_path, services):
    src = _recording(tmp_path / "in" / "a.wav")
    voice = object()  # never used: the check comes first
    with pytest.raises(InputError, match="is the input file"):
        convert_file(src, voice, InferConfig(), out_path=src, services=services)
    with pytest.raises(InputError, match="would replace input files"):
        convert_folder([tmp_path / "in"], tmp_path / "in", voice, InferConfig(), services=services)
    with pytest.raises(InputError, match="would replace input files"):  # a file and its own folder
        convert_folder([src], tmp_path / "in", voice, InferConfig(), services=services)


def test_same_names_in_one_batch_are_numbered_not_lost(tmp_path, workspace, services):
    make_voice(workspace, "bob", sample_rate=32000)
    from voiceapp.infer.pipeline import load_voice

    _recording(tmp_path / "in" / "a.wav")
    write_wav(tmp_path / "in" / "a.flac", harmonic(300, 0.3, 16000), 16000)
    statuses = convert_folder([tmp_path / "in"], tmp_path / "out", load_voice("bob", services),
                              InferConfig(f0_method="pm"), services=services)
    assert [s.ok for s in statuses] == [True, True]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "a_2.wav"]


def test_web_many_files_refuses_the_input_folder_as_output(workspace, services):
    from voiceapp.ui import infer_tab

    path = make_voice(workspace, "bob", sample_rate=32000)
    folder = workspace.outputs_dir / "takes"
    src = _recording(folder / "a.wav")
    before = src.read_bytes()
    with pytest.raises(gr.Error, match="would replace input files"):
        infer_tab.convert_many(services, str(path), "", None, str(folder), str(folder), "wav", SETTINGS)
    assert src.read_bytes() == before


def test_tts_out_folder_writes_inside_it_and_replaces_nothing(tmp_path, workspace, capsys):
    folder = tmp_path / "speech"
    folder.mkdir()
    beside = tmp_path / "speech.wav"
    beside.write_bytes(b"keep me")
    for out in (str(folder), str(folder) + "/", str(tmp_path / "new") + "/"):
        assert cli.main(["tts", "--text", "Hi.", "--out", out, *_root(workspace)]) == 0, capsys.readouterr().err
    assert beside.read_bytes() == b"keep me"
    made = sorted(folder.glob("tts_*.wav"))
    assert len(made) == 2 and all(sf.info(p).frames > 0 for p in made)  # two runs, two files, none replaced
    assert len(list((tmp_path / "new").glob("tts_*.wav"))) == 1
    text = tmp_path / "words.txt"
    text.write_text("Hello.")
    assert cli.main(["tts", "--text-file", str(text), "--out", str(text), *_root(workspace)]) == 2
    assert text.read_text() == "Hello."
    out = tmp_path / "both.wav"
    assert cli.main(["tts", "--text", "Hi.", "--model", "any", "--out", str(out), "--base-out", str(out),
                     *_root(workspace)]) == 2
    assert "--base-out" in capsys.readouterr().err


# --- models import --overwrite: only the files it brings are swapped -------------------------------------


def _trained_folder(workspace, tmp_path):
    """A model folder as training leaves it: final, best and per-epoch models, an index with its sidecar."""
    from helpers import FAISS_HEAD, write_pth

    from voiceapp.voices.importer import import_model

    import_model(workspace, write_pth(tmp_path / "old" / "alice.pth", seed=1))
    folder = workspace.voice_dir("alice")
    for name in ("alice_best.pth", "alice_e10_s100.pth"):
        write_pth(folder / name, seed=3)
    (folder / "added_IVF8_Flat_nprobe_1_alice_v2.index").write_bytes(FAISS_HEAD + b"old")
    (folder / "added_IVF8_Flat_nprobe_1_alice_v2.index.json").write_text("{}")
    (folder / "notes.txt").write_text("mine")
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def test_overwrite_replaces_only_the_model_file(tmp_path, workspace, capsys):
    from helpers import write_pth

    folder, before = _trained_folder(workspace, tmp_path)
    newer = write_pth(tmp_path / "new" / "alice.pth", seed=2)
    assert cli.main(["models", "import", str(newer), "--overwrite", *_root(workspace)]) == 0
    out = capsys.readouterr().out
    assert "replaced alice" in out and "kept the existing index" in out and "alice_best.pth" in out
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after.pop("alice.pth") == newer.read_bytes()
    before.pop("alice.pth")
    assert after == before  # best, per-epoch, index, sidecar, notes: untouched; no temporary left


def test_overwrite_with_an_index_supersedes_the_old_index_only(tmp_path, workspace):
    from helpers import FAISS_HEAD, write_pth

    from voiceapp.voices.importer import import_model

    folder, before = _trained_folder(workspace, tmp_path)
    index = tmp_path / "new" / "added_IVF8_Flat_nprobe_1_alice_v2.index"
    index.parent.mkdir()
    index.write_bytes(FAISS_HEAD + b"new")
    result = import_model(workspace, [write_pth(tmp_path / "new" / "alice.pth", seed=2), index], overwrite=True)
    assert result.replaced and result.index == folder / "alice.index" and result.index.read_bytes().endswith(b"new")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["alice.index", "alice.pth", "alice_best.pth", "alice_e10_s100.pth", "notes.txt"]
    assert all((folder / n).read_bytes() == before[n] for n in ("alice_best.pth", "alice_e10_s100.pth", "notes.txt"))


def test_a_failed_swap_puts_the_old_files_back(tmp_path, workspace, monkeypatch):
    from helpers import FAISS_HEAD, write_pth

    from voiceapp.voices.importer import import_model

    folder, _ = _trained_folder(workspace, tmp_path)
    (folder / "alice.index").write_bytes(FAISS_HEAD + b"current")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    index = tmp_path / "new" / "alice.index"
    index.parent.mkdir()
    index.write_bytes(FAISS_HEAD + b"new")
    real_replace = os.replace

    def failing_replace(src, dst):  # the model is swapped, then the index rename fails
        if ".import-" in str(src) and str(dst).endswith("alice.index"):
            raise OSError(5, "Input/output error", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        import_model(workspace, [write_pth(tmp_path / "new" / "alice.pth", seed=2), index], overwrite=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # old pair back, no temporaries


def test_an_index_of_another_width_is_refused_at_import(tmp_path, workspace):
    from helpers import write_pth

    from voiceapp.voices.importer import import_model

    narrow = tmp_path / "added_IVF8_Flat_nprobe_1_v1.index"
    narrow.write_bytes(b"IwFl" + (256).to_bytes(4, "little") + bytes(56))
    with pytest.raises(InputError, match="256-d vectors but bo.pth expects 768-d"):
        import_model(workspace, [write_pth(tmp_path / "bo.pth"), narrow])
    assert not workspace.voice_dir("bo").exists()
    import_model(workspace, write_pth(tmp_path / "bo.pth"))
    with pytest.raises(InputError, match="256-d vectors"):
        import_model(workspace, narrow, name="bo")
    assert sorted(p.name for p in workspace.voice_dir("bo").iterdir()) == ["bo.pth"]
