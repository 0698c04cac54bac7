"""TTS tab and CLI: the tab builds, its handlers speak and save, the CLI writes speech and lists voices."""

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from voiceapp import cli
from voiceapp.ui import tts_tab


def test_tts_tab_builds_and_offers_the_offline_engine(services):
    with gr.Blocks():
        tts_tab.build(services)
    engines = tts_tab.engine_choices(services)
    assert engines[0][1] == "espeak" and "offline" in engines[0][0]
    voices, default, notice = tts_tab.voice_choices(services, "espeak")
    assert default == "en-us" and ("en-us — English (America) (en-us, male)", "en-us") in voices and notice == ""
    assert tts_tab.model_choices(services)[0][1] == ""
    voice, notice = tts_tab.engine_changed(services, "espeak")
    assert voice["value"] == "en-us" and notice["visible"] is False
    if "flite" in dict((v, k) for k, v in engines):
        voice, _ = tts_tab.engine_changed(services, "flite")
        assert ("slt — slt (en, female)", "slt") in voice["choices"]


def test_online_engine_notice_says_the_text_leaves_the_machine():
    from voiceapp.tts.engines import ENGINES, engine_label

    assert "sent to Microsoft" in engine_label("edge-tts") and "ONLINE" in engine_label("edge-tts")
    assert "ONLINE" not in engine_label("espeak")
    assert ENGINES["edge-tts"]().online_notice


SETTINGS = {"rate_percent": 0, "pause_s": 0.25, "auto_transpose": True, "target_sex": "auto",
            "transpose_semitones": 0, "f0_method": "auto", "index_rate": 0.75, "protect": 0.33, "rms_mix_rate": 0.25,
            "filter_radius": 3}  # the tab's settings by name


def _speak(services, text, text_file=None, voice="en-us", model=""):
    return tts_tab.speak_clicked(services, text, text_file, "espeak", voice, model, "auto", SETTINGS)


def test_speak_handler_writes_the_base_speech(services, tmp_path):
    status, base_audio, base_file, converted, converted_file, _ = _speak(services, "Hello there. How are you?")
    assert "2 sentence(s)" in status and converted is None and converted_file is None
    audio, sr = sf.read(base_audio)
    assert sr == 22050 and len(audio) > sr and base_file == base_audio
    assert services.workspace.tts_outputs_dir in __import__("pathlib").Path(base_audio).parents
    txt = tmp_path / "speech.txt"
    txt.write_text("From a file. It has two sentences.", encoding="utf-8")
    assert "2 sentence(s)" in _speak(services, "", str(txt))[0]


def test_speak_handler_shows_clear_errors(services):
    with pytest.raises(gr.Error, match="no text"):
        _speak(services, "   ")
    with pytest.raises(gr.Error, match="Unknown voice"):
        _speak(services, "Hello.", voice="zz-nowhere")
    assert tts_tab.stop_clicked(services) in ("Nothing is running.", "Stopping after the current sentence...")


def test_cli_writes_base_speech_and_lists_voices(tmp_path, capsys):
    out = tmp_path / "hello.wav"
    root = str(tmp_path / "ws")
    assert cli.main(["tts", "--root", root, "--text", "Hello from the command line.", "--voice", "en-us+f3",
                     "--rate", "20", "--out", str(out)]) == 0
    audio, sr = sf.read(out)
    assert sr == 22050 and np.max(np.abs(audio)) > 0.05
    text_file = tmp_path / "t.txt"
    text_file.write_text("One. Two.", encoding="utf-8")
    assert cli.main(["tts", "--root", root, "--text-file", str(text_file), "--out", str(tmp_path / "t.flac")]) == 0
    capsys.readouterr()
    assert cli.main(["tts", "--root", root, "--list-voices", "--engine", "espeak"]) == 0
    listed = capsys.readouterr().out
    assert "\nen-us\t" in listed and "fr-fr" in listed
    assert cli.main(["tts", "--root", root, "--text", "Hi.", "--voice", "nope", "--out", str(out)]) == 2
    assert "Unknown voice" in capsys.readouterr().err
    assert cli.main(["tts", "--root", root, "--text", "", "--out", str(out)]) == 2
    assert cli.main(["tts", "--root", root, "--text", "Hi."]) == 2  # no --out
