"""The app builds, binds to localhost by default, and the Dataset handlers work on a tmp workspace."""

import gradio as gr
import pytest

from helpers import phrase_with_gaps, write_wav
from voiceapp.ui import dataset_tab
from voiceapp.ui.app import TABS, build_app


def test_app_builds_with_every_tab(services):
    app = build_app(services)
    assert isinstance(app, gr.Blocks)
    titles = [t for t, _ in TABS]
    assert titles[0] == "Dataset" and len(set(titles)) == len(titles)


def test_app_defaults_to_localhost():
    import app as entry

    args = entry.parse_args([])
    assert args.host == "127.0.0.1" and args.port == 7860 and not args.share


def _settings():
    return ["40000", True, False, "dsp", -42, 1500, 400, 15, 500, 3.7, 0.3, False]


def test_dataset_handler_makes_clips_and_shows_them(tmp_path, services):
    src = write_wav(tmp_path / "take one.wav", phrase_with_gaps(44_100, n=3), 44_100)
    report, hist, sources, clips, names, table = dataset_tab.prepare(services, [str(src)], "", "alice",
                                                                     *_settings())
    assert "clips" in report and hist is not None
    assert clips["choices"] and names["value"] == "alice"
    # each clip is traceable to its source and time span, in the table and in the clip picker
    assert len(table) == len(clips["choices"]) and {row[1] for row in table} == {"take one.wav"}
    assert all(0 <= row[2] < row[3] <= 7.6 for row in table)   # the input is 7.6 s long
    label, value = clips["choices"][0]
    assert value == table[0][0] and "take one.wav" in label and f"{table[0][3]:.2f} s" in label
    raw = list((services.workspace.dataset("alice").raw_dir).iterdir())
    assert len(raw) == 1 and raw[0].suffix == ".wav"
    fig = dataset_tab.show_cuts(services, "alice", sources["value"])
    assert fig is not None
    assert dataset_tab.clip_path(services, "alice", clips["value"]).endswith(".wav")
    again = dataset_tab.show_dataset(services, "alice")
    assert "alice" in again[0]


def test_dataset_handler_reports_bad_upload_as_message(tmp_path, services):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(gr.Error) as err:
        dataset_tab.prepare(services, [str(junk)], "", "bad", *_settings())
    assert "junk.wav" in str(err.value) or "No usable" in str(err.value) or "no audio" in str(err.value).lower()
    with pytest.raises(gr.Error):
        dataset_tab.prepare(services, [], "", "empty", *_settings())
