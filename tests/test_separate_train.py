"""Training a tiny U-Net separator on generated stems: loss falls, files, resume, and it separates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import sdr_db, song_stems
from voiceapp.errors import InputError
from voiceapp.separate import list_separators, load_separator, separate_audio
from voiceapp.separate.train import SeparatorTrainConfig, train_separator
from voiceapp.workspace import Workspace


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


def _write_stems(root: Path, n_songs: int = 4) -> Path:
    for i in range(n_songs):
        vocals, acc = song_stems(22050, 4.0, seed=i, voice_f0_hz=180 + 30 * i)
        folder = root / f"song{i}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / "vocals.wav", vocals.T, 22050)
        if i == 0:  # one song in the mixture + vocals layout
            sf.write(folder / "mixture.wav", (vocals + acc).T, 22050)
        else:
            sf.write(folder / "accompaniment.wav", acc.T, 22050)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("septrain")
    stems = _write_stems(root / "stems")
    ws = Workspace(root / "ws").ensure()
    cfg = SeparatorTrainConfig(size="tiny", epochs=3, steps_per_epoch=30, batch_size=8, learning_rate=3e-3)
    result = train_separator("tiny", stems, ws, cfg)
    return ws, stems, cfg, result


def test_loss_falls_and_files_are_written(trained):
    ws, _, _, result = trained
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 3
    assert losses[-1] < 0.6 * losses[0]
    folder = ws.separator_dir("tiny")
    sidecar = json.loads((folder / "separator.json").read_text())
    assert sidecar["format"] == "voiceapp-separator" and sidecar["config"]["unet"]["depth"] == 3
    assert sidecar["config"]["stft"]["n_fft"] == 2048 and sidecar["info"]["val_songs"]
    assert (folder / "model.safetensors").exists() and (folder / "training" / "last.pt").exists()
    assert list((folder / "training" / "tensorboard").glob("events.out.tfevents.*"))
    assert "tiny" in list_separators(ws)


def test_briefly_trained_unet_recovers_an_unseen_voice(trained):
    ws = trained[0]
    separator = load_separator("tiny", ws)
    vocals, acc = song_stems(22050, 4.0, seed=9, voice_f0_hz=240)
    for mix, ref in [(vocals + acc, vocals), ((vocals + acc)[0], vocals[0])]:
        est, inst = separate_audio(mix, 22050, separator)
        assert est.shape == mix.shape
        assert sdr_db(ref, est) > 12.0
        assert sdr_db(ref, est) > sdr_db(ref, mix) + 4.0


def test_resume_continues_from_the_saved_state(trained):
    ws, stems, cfg, first = trained
    from dataclasses import replace

    more = train_separator("tiny", stems, ws, replace(cfg, epochs=4))
    assert more.epochs_done == 4 and more.steps_done == 4 * cfg.steps_per_epoch
    assert [h["epoch"] for h in more.history] == [1, 2, 3, 4]


def test_cli_trains_and_separates(tmp_path):
    from voiceapp import cli

    stems = _write_stems(tmp_path / "stems", n_songs=2)
    root = tmp_path / "ws"
    assert cli.main(["separator-train", "mini", "--stems", str(stems), "--size", "tiny", "--epochs", "1",
                     "--steps-per-epoch", "2", "--batch-size", "2", "--root", str(root)]) == 0
    assert (root / "models" / "separators" / "mini" / "model.safetensors").exists()
    song = tmp_path / "in" / "My Song.wav"
    song.parent.mkdir()
    sf.write(song, (np.sum(song_stems(16000, 2.0), axis=0)).T, 16000)
    assert cli.main(["separate", str(song), "--out", str(tmp_path / "out"), "--model", "mini",
                     "--root", str(root)]) == 0
    vocals, rate = sf.read(tmp_path / "out" / "My_Song" / "vocals.wav")
    assert rate == 16000 and vocals.shape == (32000, 2)


def test_stems_folder_without_pairs_is_refused(tmp_path):
    folder = tmp_path / "stems" / "only_vocals"
    folder.mkdir(parents=True)
    sf.write(folder / "vocals.wav", np.zeros(22050, np.float32), 22050)
    with pytest.raises(InputError, match="accompaniment"):
        train_separator("x", tmp_path / "stems", Workspace(tmp_path / "ws"), SeparatorTrainConfig(size="tiny"))
    with pytest.raises(InputError, match="not found"):
        train_separator("x", tmp_path / "nowhere", Workspace(tmp_path / "ws"), SeparatorTrainConfig(size="tiny"))
