"""The Inference tab and the Train tab's Index section: the app builds, and the handlers work directly."""

import gradio as gr
import pytest

from helpers import harmonic, write_wav
from helpers import make_index, make_voice
from voiceapp.ui import index_section, infer_tab
from voiceapp.ui.app import TABS, build_app

SETTINGS = {"transpose_semitones": 2, "f0_method": "pm", "index_rate": 0.5, "filter_radius": 3,
            "rms_mix_rate": 0.25, "protect": 0.33, "resample_sr": 0, "speaker_id": 0, "seed": 0,
            "f0_curve": None}  # the tab's settings by name (neighbour blend left at its default)


def test_tab_is_registered_and_app_builds_with_a_model(workspace, services):
    assert ("Inference", "voiceapp.ui.infer_tab") in TABS
    make_voice(workspace, "alice")
    make_index(workspace, "alice", "v2")
    assert isinstance(build_app(services), gr.Blocks)
    with gr.Blocks():
        index_section.build(services)


def test_model_selection_matches_index_and_convert_one(tmp_path, workspace, services):
    path = make_voice(workspace, "alice")
    index = make_index(workspace, "alice", "v2")
    choices = infer_tab.model_choices(services)
    assert choices == [("alice", str(path))]
    index_update, description, speaker = infer_tab.select_model(services, str(path))
    assert index_update["value"] == str(workspace.voice_dir("alice") / index.name)
    assert "alice" in description and "v2" in description
    src = write_wav(tmp_path / "take.wav", harmonic(210, 0.5, 44100), 44100)
    out, text = infer_tab.convert_one(services, str(path), index_update["value"], str(src), "mp3", SETTINGS)
    assert out.endswith("take.mp3") and "real-time factor" in text and "synthesis" in text
    again, _ = infer_tab.convert_one(services, str(path), None, str(src), "mp3", SETTINGS)
    assert again.endswith("take_2.mp3")  # an earlier result is never overwritten
    with pytest.raises(gr.Error):
        infer_tab.convert_one(services, None, None, str(src), "wav", SETTINGS)
    with pytest.raises(gr.Error):
        infer_tab.convert_one(services, str(path), None, None, "wav", SETTINGS)
    bad = {**SETTINGS, "index_rate": 7.0}  # index rate out of range -> ConfigError shown as a message
    with pytest.raises(gr.Error, match="index_rate"):
        infer_tab.convert_one(services, str(path), None, str(src), "wav", bad)


def test_convert_many_reports_each_file(workspace, services):
    path = make_voice(workspace, "bob", sample_rate=32000)
    inputs, out = workspace.root / "in", workspace.outputs_dir / "out"  # the web app uses workspace folders only
    write_wav(inputs / "a.wav", harmonic(200, 0.4, 16000), 16000)
    (inputs / "junk.wav").write_bytes(b"junk")
    rows, summary = infer_tab.convert_many(services, str(path), "", None, str(inputs),
                                           str(out), "wav", SETTINGS)
    status = {r[0]: r[1] for r in rows}
    assert status["a.wav"].startswith("ok") and status["junk.wav"].startswith("failed")
    assert "1 of 2" in summary and (out / "a.wav").is_file()


def test_index_section_builds_and_reports(workspace, services):
    make_index(workspace, "carol", "v2")
    assert "carol" in index_section.experiments_with_features(services)
    text = index_section.build_index_for(services, "carol")
    assert text.startswith("Built added_IVF") and "rows" in text and "lists" in text
    assert "Current index" in index_section.index_status(services, "carol")
    with pytest.raises(gr.Error):
        index_section.build_index_for(services, None)
