"""The demo: its shipped LJ Speech target, the source speaker (and the eSpeak fallback), the report, one tiny run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from helpers import harmonic, write_wav
from voiceapp.demo import material
from voiceapp.demo.report import tables
from voiceapp.demo.run import DemoConfig, run_demo
from voiceapp.errors import Cancelled, ConfigError, InputError
from voiceapp.progress import CancelToken


def test_shipped_lj_clips_exist_decode_and_total_a_few_minutes():
    files = material.lj_files()
    assert len(files) == 32
    infos = [sf.info(str(p)) for p in files]
    assert {(i.samplerate, i.channels, i.subtype, i.format) for i in infos} == {(22050, 1, "PCM_16", "FLAC")}
    minutes = sum(i.duration for i in infos) / 60
    assert 3.0 <= minutes <= 4.5
    assert sum(p.stat().st_size for p in files) < 8 * 2 ** 20
    audio, rate = sf.read(str(files[5]), dtype="float32")
    assert rate == 22050 and 0.05 < np.abs(audio).max() <= 1.0
    readme = (material.LJ_DIR / "README.md").read_text(encoding="utf-8")
    assert "public domain" in readme.lower() and "LJ Speech" in readme
    ids = [line.split("|")[0] for line in (material.LJ_DIR / "metadata.csv").read_text().splitlines()]
    assert ids == [p.stem for p in files]


def test_reference_clips_are_held_out_of_training():
    train, reference = material.split_target(3, None)
    assert [p.stem for p in reference] == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert len(train) == 29 and not set(train) & set(reference)
    assert len(material.split_target(2, 4)[0]) == 4


def test_missing_debian_source_falls_back_to_espeak_with_a_note(tmp_path):
    audio, rate, label, kind, notes = material.load_source(None, "en-us+m3", 60.0, tmp_path / "not-installed")
    assert kind == "espeak" and "eSpeak NG" in label
    assert len(audio) > rate and np.abs(audio).max() > 0.05
    assert len(notes) == 1 and material.ALLISON_PACKAGE in notes[0] and "--source" in notes[0]


@pytest.mark.skipif(not material.ALLISON_DIR.is_dir(), reason=f"{material.ALLISON_PACKAGE} is not installed")
def test_allison_prompts_decode_into_one_source():
    audio, rate, label, kind, notes = material.load_source(None, "en-us+m3", 60.0)
    assert (kind, rate, notes) == ("allison", 16000, [])
    assert 15 < len(audio) / rate < 40 and np.abs(audio).max() > 0.1
    assert "Allison Smith" in label and "CC BY-SA" in label


def test_own_recording_is_the_source_and_is_cut_to_the_limit(tmp_path):
    path = write_wav(tmp_path / "me.wav", harmonic(150.0, 3.0, 22050, amplitude=0.4), 22050)
    audio, rate, label, kind, notes = material.load_source(str(path), "en-us+m3", 2.0)
    assert (kind, rate, len(audio)) == ("file", 22050, 2 * 22050)
    assert "me.wav" in label and "cut" in notes[0]
    silent = write_wav(tmp_path / "quiet.wav", np.zeros(22050, np.float32), 22050)
    with pytest.raises(InputError, match="silent"):
        material.load_source(str(silent), "en-us+m3", 60.0)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="quick_minutes"):
        DemoConfig(quick_minutes=0)
    with pytest.raises(ConfigError, match="reference_clips"):
        DemoConfig(reference_clips=0)
    with pytest.raises(ConfigError, match="quick_max_steps"):
        DemoConfig(quick_max_steps=0)


def test_cli_flags_reach_the_config(tmp_path):
    from voiceapp.demo.cli import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["demo", "--quick-minutes", "2.5", "--source", str(tmp_path / "me.m4a"), "--no-measure"])
    cfg = config_from_args(args)
    assert (cfg.quick_minutes, cfg.source, cfg.measure) == (2.5, str(tmp_path / "me.m4a"), False)
    assert config_from_args(parser.parse_args(["demo"])) == DemoConfig()


def test_table_puts_before_and_after_side_by_side():
    figures = {"similarity": {"source": 0.61, "instant": 0.8, "quick": 0.85, "tts_base": 0.5, "tts_quick": 0.7},
               "wer": {"instant": 0.12, "quick": 0.05, "tts_base": 0.0, "tts_quick": 0.2},
               "dnsmos": {"source": 3.3, "instant": 2.8, "quick": 3.0, "target_reference": 3.2},
               "rtf": {"instant": 0.1, "quick": 0.2}}
    facts = {"quick": SimpleNamespace(trained_s=300.0, step=400), "stage_seconds": {"instant voice": 12.0}}
    lines = tables(figures, facts)
    assert lines[0].split("|")[2:6] == [" source (before) ", " instant (after) ", " quick (after) ",
                                         " target (held-out LJ) "]
    row = next(line for line in lines if line.startswith("| speaker similarity"))
    assert row.split("|")[2:6] == [" 0.610 ", " 0.800 ", " 0.850 ", " — "]
    assert any("5.0 min, 400 steps" in line for line in lines)
    assert any(line.startswith("| WER vs the typed text") and "0.20" in line for line in lines)


def test_cancel_before_start_stops_at_once(tmp_path, services):
    token = CancelToken()
    token.set()
    with pytest.raises(Cancelled):
        run_demo(tmp_path / "demo", services, DemoConfig(source_max_s=5.0), cancel=token)


@pytest.mark.slow
def test_tiny_demo_end_to_end(tmp_path, services):
    """A few LJ clips, 2 quick steps of the tiny network, the fake encoder: every stage runs and reports."""
    source = write_wav(tmp_path / "me.wav", harmonic(170.0, 2.0, 16000, amplitude=0.4), 16000)
    cfg = DemoConfig(target_clips=3, reference_clips=2, quick_max_steps=2, quick_preset="tiny", encoder="fake-16",
                     f0_method="pm", source=str(source))
    seen: list[float] = []
    result = run_demo(tmp_path / "demo", services, cfg, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    report = result.report_path.read_text(encoding="utf-8")
    assert "| source (before) | instant (after) | quick (after) |" in report
    for key in ("source", "target_reference", "instant", "quick", "tts_base", "tts_quick"):
        audio, rate = sf.read(str(result.audio[key]))
        assert len(audio) > rate // 2 and np.isfinite(audio).all(), key
    assert {"source", "instant", "quick", "target_reference", "quick_loss"} <= set(result.images)
    saved = json.loads((result.out_dir / "report.json").read_text())
    assert saved["source_kind"] == "file" and saved["quick"]["steps"] == 2
    assert set(saved["figures"]["rtf"]) == {"instant", "quick"}
    assert all(Path(result.out_dir, p).is_file() for p in saved["voices"].values())
    voices = services.workspace.voices_dir
    assert "similarity" in result.summary
    assert not (voices.exists() and any(voices.iterdir()))            # the user's models are not touched


def test_panel_builds_with_its_players(services):
    import gradio as gr

    from voiceapp.ui import demo_section

    with gr.Blocks() as app:
        demo_section.build(services)
    labels = {getattr(b, "label", None) for b in app.blocks.values()}
    assert {label for _, label in demo_section.PLAYERS} <= labels
    assert not any(isinstance(b, gr.Accordion) for b in app.blocks.values())   # a visible panel, not a thin bar
    assert any(getattr(b, "value", None) == "Run the demo" for b in app.blocks.values())


def test_panel_handler_returns_the_summary_and_one_file_per_player(services, monkeypatch, tmp_path):
    from voiceapp.demo import run as demo_run
    from voiceapp.demo.report import DemoResult
    from voiceapp.ui import demo_section

    seen = {}

    def fake_run_demo(out, services_, cfg, progress, cancel):
        seen["cfg"] = cfg
        audio = {key: tmp_path / f"{key}.wav" for key, _ in demo_section.PLAYERS}
        return DemoResult(Path(out), Path(out) / "report.md", {}, audio, {"source": tmp_path / "s.png"}, "| table |")

    monkeypatch.setattr(demo_run, "run_demo", fake_run_demo)
    body, pictures, *players = demo_section.run(services, 2.0, None)
    assert seen["cfg"] == DemoConfig(quick_minutes=2.0) and body.startswith("| table |")
    assert pictures == [(str(tmp_path / "s.png"), "source")]
    assert players == [str(tmp_path / f"{key}.wav") for key, _ in demo_section.PLAYERS]
