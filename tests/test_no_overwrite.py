"""Nothing lost: an output that would replace an input is refused before any work (issue 14, points 1 and 6).

`infer` (one file, a folder), the library's convert_file/convert_folder, the web endpoint for many files,
and `tts --out DIR/`.
"""

import os

import gradio as gr
import pytest
import soundfile as sf

from conftest import harmonic, write_wav
from test_infer_convert import make_voice
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
