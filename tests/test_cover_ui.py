"""The Inference tab's Cover section: it builds inside the app, and its handler makes a cover directly."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from helpers import harmonic, make_feature_experiment, write_wav
from voiceapp.train.instant import build_instant
from voiceapp.ui import cover_section, infer_tab
from voiceapp.ui.app import build_app

SETTINGS = {"transpose_semitones": 7, "f0_method": "pm", "index_rate": 0.5, "filter_radius": 3,
            "rms_mix_rate": 0.25, "protect": 0.33, "resample_sr": 0, "speaker_id": 0, "seed": 0,
            "f0_curve": None, "neighbour_blend": 1.0}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture
def voice_path(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(4.0, 4.2, 3.8, 4.1, 3.9), sample_rate=16000)
    return str(build_instant(exp, workspace))


def _song(folder: Path) -> str:
    rate = 22050
    t = np.arange(3 * rate) / rate
    chord = 0.08 * (np.sin(2 * np.pi * 130.81 * t) + np.sin(2 * np.pi * 196.0 * t))
    vocal = harmonic(300, 3.0, rate, amplitude=0.3)
    return str(write_wav(folder / "my song.wav", np.stack([vocal + chord, vocal + 0.3 * chord]).astype(np.float32),
                         rate))


def _run(services, model, song, **changes):
    args = dict(index=None, separator="dsp", backing="", vocals_db=-2.0, instrumental_db=0.0, backing_db=0.0,
                shift=True, match=True, fmt="mp3", settings=SETTINGS)
    args.update(changes)
    return cover_section.make_cover_ui(services, model, args["index"], song, args["separator"], args["backing"],
                                       args["vocals_db"], args["instrumental_db"], args["backing_db"], args["shift"],
                                       args["match"], args["fmt"], args["settings"],
                                       infer_tab.make_config)


def test_app_builds_with_the_cover_section(services, voice_path):
    assert isinstance(build_app(services), gr.Blocks)
    choices = cover_section.backing_choices(services)
    assert choices == [("off: no karaoke separator installed (get one in the Separate tab)", "")]  # nothing faked
    assert "dsp" in cover_section.separator_choices(services)


def test_cover_handler_writes_the_cover_and_stems_in_outputs(tmp_path, services, voice_path):
    song = _song(tmp_path)
    cover, summary, stems = _run(services, voice_path, song)
    folder = services.workspace.covers_dir("alice")
    assert cover == str(folder / "my_song.mp3") and Path(cover).is_file()
    assert "shifted +7 semitones" in summary and "LUFS" in summary
    assert sorted(Path(s).name for s in stems) == ["converted_vocals.wav", "instrumental.wav", "vocals.wav"]
    assert all(Path(s).parent == folder / "my_song_stems" for s in stems)
    again, _, _ = _run(services, voice_path, song, fmt="wav")
    assert again == str(folder / "my_song_2.wav")                   # an earlier cover is never replaced


def test_cover_handler_reports_problems_as_messages(tmp_path, services, voice_path):
    song = _song(tmp_path)
    with pytest.raises(gr.Error, match="Pick a voice model"):
        _run(services, None, song)
    with pytest.raises(gr.Error, match="Upload the song"):
        _run(services, voice_path, None)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 100)
    with pytest.raises(gr.Error, match="Cover failed at stage 'read'.*junk.wav"):
        _run(services, voice_path, str(junk))
    with pytest.raises(gr.Error, match="not an installed karaoke separator"):
        _run(services, voice_path, song, backing="UVR_MDXNET_KARA_2")
    with pytest.raises(gr.Error, match="vocals_gain_db"):
        _run(services, voice_path, song, vocals_db=99)
    assert not services.workspace.covers_dir("alice").exists() or not any(
        services.workspace.covers_dir("alice").iterdir())
