"""`voiceapp train` from the command line, and the Train tab's handlers."""

import json

import gradio as gr
import pytest

from voiceapp.errors import ConfigError

from helpers import make_feature_experiment
from voiceapp import cli
from voiceapp.train.events import EventLog
from voiceapp.train.process import TrainingRunner
from voiceapp.ui import train_tab


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_cli_trains_writes_config_and_resumes_from_it(workspace, capsys):
    exp = make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7))
    root = str(workspace.root)
    args = ["train", "alice", "--root", root, "--device", "cpu", "--engine", "rvc", "--preset", "tiny", "--epochs", "1",
            "--pretrained", "none", "--batch-size", "2", "--validation-clips", "0", "--no-voice-each-save"]
    assert cli.main(args) == 0
    saved = json.loads(exp.train_config_path.read_text())
    assert saved["preset"] == "tiny" and saved["epochs"] == 1 and saved["save_voice_each_save"] is False
    assert (workspace.voices_dir / "alice" / "alice.pth").exists()
    assert "trained alice to epoch 1" in capsys.readouterr().out
    assert cli.main(["train", "alice", "--root", root, "--device", "cpu", "--epochs", "2"]) == 0   # keeps tiny
    assert json.loads(exp.train_config_path.read_text())["epochs"] == 2
    assert cli.main(["train", "--root", root, "--device", "cpu", "--config", str(exp.train_config_path)]) == 0
    step = int(json.loads(exp.events_path.read_text().splitlines()[-1])["step"])
    assert cli.main(["train", "alice", "--root", root, "--export-step", str(step)]) == 0
    exported = workspace.voices_dir / "alice" / f"alice_e2_s{step}.pth"
    from voiceapp.voices.rvc import load_voice_model

    assert load_voice_model(exported).config.size == "tiny"
    assert cli.main(["train", "alice", "--root", root, "--export-step", "99999"]) == 2
    assert cli.main(["train", "nobody", "--root", root, "--device", "cpu", "--preset", "tiny"]) == 2
    assert "features" in capsys.readouterr().err.lower()


def test_app_builds_with_train_tab(services):
    from voiceapp.ui.app import TABS, build_app

    titles = [t for t, _ in TABS]
    assert titles.index("Train") > titles.index("Dataset")
    assert isinstance(build_app(services), gr.Blocks)


def test_train_handlers(services):
    ws = services.workspace
    runner = TrainingRunner(ws, "cpu")
    settings = {"sample_rate": "40000", "version": "v2", "preset": "full", "epochs": 10, "save_every_epochs": 5,
                "batch_size": 4, "save_latest_only": True, "save_voice_each_save": True, "pretrained": "auto"}
    cfg = train_tab.make_config("alice", **settings)
    assert cfg.preset == "full" and cfg.save_every_epochs == 5 and cfg.sample_rate == 40000
    with pytest.raises(ConfigError, match="quick engine"):              # the light preset is gone
        train_tab.make_config("alice", **{**settings, "preset": "light"})
    quick = train_tab.make_config("alice", **settings, engine="quick", minutes=7)
    assert (quick.engine, quick.minutes) == ("quick", 7.0)
    with pytest.raises(gr.Error):
        train_tab.make_config("", **settings)
    with pytest.raises(gr.Error, match="features"):
        train_tab.start_training(runner, "alice", settings)                 # nothing extracted yet
    assert "Not trained" in train_tab.status_markdown(runner, "alice")
    assert "not training" in train_tab.stop_training(runner, "alice")

    make_feature_experiment(ws, lengths_s=(0.5,), sample_rate=32000, version="v1")
    rate, version, note = train_tab.experiment_settings(services, "alice")
    assert rate["value"] == "32000" and version["value"] == "v1" and "1 clips" in note
    with pytest.raises(gr.Error, match="32000 Hz"):
        train_tab.start_training(runner, "alice", settings)                 # 40000 asked, clips are 32000
    assert not runner.is_running("alice")

    exp = ws.experiment("alice")
    log = EventLog(exp.events_path)
    log.write("start", epochs=10, start_epoch=1, start_step=0, pretrained="Training from scratch.", config={})
    log.write("step", step=1, epoch=1, losses={"mel": 40.0, "g": 60.0, "d": 3.0, "fm": 1.0, "kl": 2.0}, eta_s=50)
    log.write("validation", epoch=1, step=1, mel_l1=2.0, best_epoch=1, best_mel_l1=2.0)
    md, figure, seen = train_tab.refresh(runner, services, "alice", None)
    assert "Validation mel L1" in md and figure is not None and seen is not None
    md, figure, again = train_tab.refresh(runner, services, "alice", seen)
    assert again == seen                                                       # unchanged file: plot skipped
