"""The Train tab's "Extract features" section and its F0 curve viewer: builds, handlers work."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from helpers import harmonic, write_wav
from helpers import make_dataset

from voiceapp.features.extract import load_feature_manifest
from voiceapp.ui import extract_section


def test_section_builds_inside_blocks(services):
    with gr.Blocks() as demo:
        extract_section.build(services)
    labels = {getattr(block, "label", None) for block in demo.blocks.values()}
    assert {"Dataset", "Experiment name", "Pitch method", "Content encoder", "Model version"} <= labels
    assert "f0 over the spectrogram" in labels


def test_extract_handler(services):
    make_dataset(services.workspace, n=2)
    text = extract_section.extract(services, "ds", "alice", "dio", "fake-16", "v2")
    assert "2 clips" in text and "fake-16" in text and "Pitch of the voice: median" in text
    assert load_feature_manifest(services.workspace.experiment("alice"))["dim"] == 16
    with pytest.raises(gr.Error, match="dataset"):
        extract_section.extract(services, None, "alice", "dio", "fake-16", "v2")
    with pytest.raises(gr.Error, match="rmvpe"):
        extract_section.extract(services, "ds", "alice", "rmvpe", "fake-16", "v2")
    assert extract_section.stop(services) in ("Nothing is running.", "Stopping after the current clip...")


def test_f0_curve_handler(services, tmp_path):
    wav = write_wav(tmp_path / "voice.wav", harmonic(220, 1.0, 16000), 16000)
    figure, csv_path, summary = extract_section.f0_curve(services, str(wav), "dio")
    rows = open(csv_path).read().splitlines()
    assert len(rows) == 16000 // 160 + 1
    values = np.array([float(r.split(",")[1]) for r in rows])
    assert abs(np.median(values[values > 0]) - 220) < 3
    assert "median 220 Hz" in summary and figure is not None
    with pytest.raises(gr.Error, match="Upload"):
        extract_section.f0_curve(services, None, "dio")
