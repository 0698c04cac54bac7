"""The Separate tab builds, and its handlers separate songs and train a separator."""

from __future__ import annotations

import gradio as gr
import pytest
import soundfile as sf

from helpers import song_stems
from voiceapp.ui import separate_tab
from voiceapp.ui.app import TABS, build_app


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


def test_tab_is_listed_after_dataset_and_builds(services):
    titles = [t for t, _ in TABS]
    assert titles.index("Separate") == titles.index("Dataset") + 1
    assert isinstance(build_app(services), gr.Blocks)


def test_separate_handler_gives_players_downloads_and_spectrograms(tmp_path, services):
    vocals, acc = song_stems(16000, 2.0)
    song = tmp_path / "song.wav"
    sf.write(song, (vocals + acc).T, 16000)
    summary, picker, results, v, i, downloads, before, after = separate_tab.separate_songs(
        services, [str(song)], "", "dsp-centre", "flac")
    assert "song.wav" in summary and picker["choices"] == [("song.wav", 0)]
    assert v["value"].endswith("vocals.flac") and i["value"].endswith("instrumental.flac") and len(downloads) == 2
    assert (v["label"], i["label"]) == ("Vocals", "Instrumental")
    assert str(services.workspace.separated_dir) in v["value"]
    assert before is not None and after is not None
    assert separate_tab.show_song(results, 0)[0] == v
    assert separate_tab.show_song([], None) == (None, None, None, None, None)


def test_two_uploads_of_one_name_are_told_apart(tmp_path, services):
    """Two different songs both uploaded as mixture.flac: two picker entries that can be told apart."""
    paths = []
    for n, seed in ((1, 0), (2, 1)):
        vocals, acc = song_stems(16000, 1.0, seed=seed)
        (tmp_path / f"up{n}").mkdir()
        sf.write(tmp_path / f"up{n}" / "mixture.flac", (vocals + acc).T, 16000)
        paths.append(str(tmp_path / f"up{n}" / "mixture.flac"))
    _, picker, results, *_ = separate_tab.separate_songs(services, paths, "", "dsp-centre", "wav")
    assert picker["choices"] == [("mixture.flac", 0), ("mixture (2).flac", 1)]
    assert results[0]["vocals"] != results[1]["vocals"]


def test_separate_handler_reports_problems_as_messages(tmp_path, services):
    with pytest.raises(gr.Error):
        separate_tab.separate_songs(services, [], "", "dsp", "wav")
    with pytest.raises(gr.Error, match="Unknown separator"):
        song = tmp_path / "s.wav"
        sf.write(song, song_stems(16000, 1.0)[0].T, 16000)
        separate_tab.separate_songs(services, [str(song)], "", "missing-model", "wav")


def test_train_handler_runs_end_to_end(services):
    stems = services.workspace.root / "stems"  # the web app reads workspace folders only
    for k in range(2):
        vocals, acc = song_stems(16000, 2.0, seed=k)
        folder = stems / f"s{k}"
        folder.mkdir(parents=True)
        sf.write(folder / "vocals.wav", vocals.T, 16000)
        sf.write(folder / "accompaniment.wav", acc.T, 16000)
    summary, dropdown = separate_tab.train_separator_ui(services, str(stems), "ui sep", 1, "tiny")
    assert "ui_sep" in summary and dropdown["value"] == "ui_sep"
    assert "ui_sep" in dropdown["choices"]
    with pytest.raises(gr.Error):
        separate_tab.train_separator_ui(services, "", "x", 1, "tiny")
