"""Training as a child process: SIGKILL at any moment -> resume at the saved step; Stop; crash messages."""

import json
import os
import signal
import time

import pytest
import torch

from helpers import make_feature_experiment, tiny_config
from voiceapp.train import checkpoints as ckpt
from voiceapp.train.events import EventLog, read_events
from voiceapp.train.loop import Trainer
from voiceapp.train.process import TrainingRunner, run_status


def _wait(predicate, timeout_s=120.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="process groups and SIGKILL are POSIX")
def test_sigkill_then_resume_at_saved_step_then_stop(workspace, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    exp = make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7, 0.55))
    runner = TrainingRunner(workspace, "cpu")
    cfg = tiny_config(epochs=500, save_voice_each_save=False, validation_clips=0, save_latest_only=False)
    pid = runner.start(cfg)
    _wait(lambda: len(read_events(exp.events_path, {"save"})) >= 2, what="two saves")
    assert json.loads(exp.train_config_path.read_text())["epochs"] == 500   # saved once the run started
    assert runner.is_running(exp.name)
    os.killpg(os.getpgid(pid), signal.SIGKILL)                          # no chance to clean up
    _wait(lambda: not runner.is_running(exp.name), 30, "the child to die")
    status = runner.status(exp.name)
    assert status.state == "failed" and "killed" in status.message

    pairs = ckpt.list_checkpoints(exp.root)
    assert len(pairs) >= 2
    for pair in pairs:                                                 # nothing corrupt
        ckpt.load_checkpoint(pair.generator)
        ckpt.load_checkpoint(pair.discriminator)
    latest = pairs[-1]
    saved = ckpt.load_checkpoint(latest.generator)
    trainer = Trainer(exp, cfg, workspace=workspace)
    trainer.prepare()
    try:
        assert trainer.step == latest.step == saved["step"] and trainer.epoch == saved["iteration"]
        for pid_, state in saved["optimizer"]["state"].items():
            mine = trainer.optim_g.state_dict()["state"][pid_]
            assert all(torch.equal(torch.as_tensor(state[k]), torch.as_tensor(mine[k])) for k in state)
    finally:
        trainer.close()

    runner.resume(exp.name, epochs=500, batch_size=2)
    _wait(lambda: read_events(exp.events_path, {"resume"}), what="resume")
    resumed = read_events(exp.events_path, {"resume"})[-1]
    assert resumed["step"] == latest.step and resumed["epoch"] == saved["iteration"]
    _wait(lambda: any(e["step"] > latest.step and e["time"] >= resumed["time"]        # not the killed run's steps
                      for e in read_events(exp.events_path, {"step"})), what="a new step")
    assert runner.stop(exp.name)
    assert not runner.is_running(exp.name)
    status = runner.status(exp.name)
    assert status.state == "stopped", status.message
    assert status.step > latest.step


def test_status_messages_from_events(workspace):
    exp = workspace.experiment("bob")
    assert run_status(exp, running=False).state == "idle"
    log = EventLog(exp.events_path)
    log.write("start", epochs=10, start_epoch=1, start_step=0, pretrained="Training from scratch.",
              config={"batch_size": 8})
    log.write("step", step=5, epoch=1, losses={"mel": 30.0}, eta_s=125.0)
    running = run_status(exp, running=True)
    assert running.state == "running" and "about 2 min left" in running.message
    log.write("save", epoch=2, step=10, files=[])
    log.write("validation", epoch=2, step=10, mel_l1=1.5, best_epoch=2, best_mel_l1=1.5)
    with open(exp.events_path, "a") as handle:
        handle.write('{"type": "step", "ste')                           # torn line of a killed writer
    exp.train_log_path.write_text("Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate\n")
    crashed = run_status(exp, running=False, exit_code=1)
    assert crashed.state == "failed" and "batch size" in crashed.message and "4" in crashed.message
    assert crashed.best_epoch == 2 and "Best validation epoch: 2" in crashed.message
    log.write("error", kind="oom", message="CUDA out of memory", advice="Resume with batch size 4.")
    failed = run_status(exp, running=False)
    assert failed.state == "failed" and "batch size 4" in failed.message
    starting = run_status(exp, running=True, started=time.time() + 1)      # new child, no events of its own yet
    assert starting.state == "running" and "Starting" in starting.message
    log.write("start", epochs=10, start_epoch=3, start_step=10, config={})
    log.write("done", epoch=10, step=50, voice_models=["/x/bob.pth", "/x/bob_best.pth"])
    done = run_status(exp, running=False)
    assert done.state == "done" and "bob_best.pth" in done.message and (done.epoch, done.step) == (10, 50)


def test_tensorboard_starts_on_localhost(workspace):
    runner = TrainingRunner(workspace, "cpu")
    exp = workspace.experiment("tb")
    exp.root.mkdir(parents=True)
    url = runner.start_tensorboard(exp.root)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert runner.start_tensorboard(exp.root) == url                  # reused, not a second server
    finally:
        runner.close()
