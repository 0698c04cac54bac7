"""The training loop on the tiny preset: checkpoints, events, voice models, exact resume, guards, pretrained choice."""

import shutil

import numpy as np
import pytest
import torch

from helpers import make_feature_experiment, tiny_config
from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.train import checkpoints as ckpt
from voiceapp.train.events import read_events
from voiceapp.train.loop import Trainer, classify_error, train
from voiceapp.train.pretrained import choose_pretrained


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_tiny_training_writes_checkpoints_events_and_voice_models(workspace):
    exp = make_feature_experiment(workspace, extra_short_s=(0.05,))
    result = train(exp, tiny_config(epochs=2), workspace=workspace)
    assert result.epoch == 2 and result.step > 0
    pairs = ckpt.list_checkpoints(exp.root)
    assert [p.step for p in pairs] == [result.step]                     # keep only the latest
    g = torch.load(pairs[0].generator, map_location="cpu", weights_only=True)
    assert g["iteration"] == 2 and g["step"] == result.step and "enc_q.pre.weight" in g["model"]
    assert {"optimizer", "learning_rate", "scheduler", "scaler", "rng"} <= set(g)
    types = [e["type"] for e in read_events(exp.events_path)]
    for kind in ("start", "step", "epoch", "validation", "save", "export", "done"):
        assert kind in types, kind
    start = read_events(exp.events_path, {"start"})[0]
    assert start["too_short_count"] == 1 and start["validation"] and "scratch" in start["pretrained"]
    step = read_events(exp.events_path, {"step"})[-1]
    assert {"d", "g", "mel", "kl", "fm"} <= set(step["losses"]) and step["lr"] > 0 and "eta_s" in step
    assert all(np.isfinite(v) for v in step["losses"].values())
    voices = workspace.voices_dir / exp.name
    names = sorted(p.name for p in voices.glob("*.pth"))
    assert "alice.pth" in names and "alice_best.pth" in names
    assert any(n.startswith("alice_e2_s") for n in names)
    assert list(exp.root.glob("events.out.tfevents.*"))                  # TensorBoard

    from voiceapp.voices.rvc import load_voice_model

    voice = load_voice_model(voices / "alice.pth")
    assert voice.sample_rate == 40000 and voice.metadata.get("epoch", 2) == 2
    frames = 50
    phone = torch.randn(1, frames, 16)
    audio = voice.net.infer(phone, torch.tensor([frames]), torch.full((1, frames), 100, dtype=torch.long),
                            torch.full((1, frames), 200.0), torch.tensor([0]))
    assert audio.shape[-1] == frames * 400


@pytest.mark.slow
def test_resume_continues_exactly_like_an_uninterrupted_run(workspace, tmp_path):
    exp = make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7, 0.55, 0.65))
    other_root = tmp_path / "copy"
    shutil.copytree(workspace.root, other_root)
    from voiceapp.workspace import Workspace

    ws_b = Workspace(other_root)
    exp_b = ws_b.experiment("alice")
    straight = train(exp, tiny_config(epochs=2, save_voice_each_save=False), workspace=workspace)
    first = train(exp_b, tiny_config(epochs=1, save_voice_each_save=False), workspace=ws_b)
    assert first.epoch == 1
    resumed = train(exp_b, tiny_config(epochs=2, save_voice_each_save=False), workspace=ws_b)
    assert resumed.step == straight.step and resumed.epoch == 2
    resume_event = read_events(exp_b.events_path, {"resume"})[0]
    assert resume_event["step"] == first.step and resume_event["epoch"] == 1
    a = ckpt.load_checkpoint(ckpt.latest_checkpoint(exp.root).generator)
    b = ckpt.load_checkpoint(ckpt.latest_checkpoint(exp_b.root).generator)
    for key in a["model"]:
        assert torch.allclose(a["model"][key], b["model"][key], atol=1e-6), key
    for pid, state in a["optimizer"]["state"].items():
        assert torch.allclose(state["exp_avg"], b["optimizer"]["state"][pid]["exp_avg"], atol=1e-6)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 2


def test_resume_restores_optimizer_scheduler_and_step(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7))
    done = train(exp, tiny_config(epochs=1, save_voice_each_save=False, validation_clips=0), workspace=workspace)
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(exp.root).generator)
    trainer = Trainer(exp, tiny_config(epochs=3, validation_clips=0), workspace=workspace)
    trainer.prepare()
    try:
        assert (trainer.epoch, trainer.step) == (1, done.step)
        restored = trainer.optim_g.state_dict()
        for pid, state in saved["optimizer"]["state"].items():
            for name in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(torch.as_tensor(state[name]), torch.as_tensor(restored["state"][pid][name]))
        assert trainer.optim_g.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.999875)
    finally:
        trainer.close()


def test_missing_features_is_a_clear_error_event(workspace):
    exp = workspace.experiment("nobody")
    with pytest.raises(MissingArtifactError):
        train(exp, tiny_config("nobody"), workspace=workspace)
    error = read_events(exp.events_path, {"error"})[-1]
    assert error["kind"] == "user" and "features" in error["message"].lower()


def test_unfinished_feature_extraction_is_refused(workspace):
    import json

    exp = make_feature_experiment(workspace, lengths_s=(0.5,))
    manifest = json.loads(exp.features_manifest_path.read_text())
    exp.features_manifest_path.write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(InputError, match="did not finish"):
        train(exp, tiny_config(), workspace=workspace)


def test_out_of_memory_gets_batch_size_advice():
    kind, advice = classify_error(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), batch_size=8)
    assert kind == "oom" and "batch size 4" in advice
    assert classify_error(ValueError("boom"), 8)[0] == "crash"


def test_pretrained_choice_says_which_and_catches_width_mismatch(workspace):
    def choose(**kw):
        args = dict(mode="auto", preset="full", version="v2", sample_rate=40000, use_f0=True, content_dim=768,
                    encoder="contentvec")
        args.update(kw)
        return choose_pretrained(workspace, **args)

    assert not choose().used and "f0G40k.pth" in choose().message                 # absent -> scratch, says why
    folder = workspace.pretrained_path("G", "v2", 40000).parent
    folder.mkdir(parents=True)
    torch.save({"model": {"enc_p.emb_phone.weight": torch.zeros(192, 768, dtype=torch.float16)}},
               folder / "f0G40k.pth")
    torch.save({"model": {}}, folder / "f0D40k.pth")
    assert choose().used and "f0G40k.pth" in choose().message
    mismatch = choose(content_dim=384, encoder="whisper-tiny")
    assert not mismatch.used and "768" in mismatch.message and "384" in mismatch.message
    assert not choose(preset="light").used and "light" in choose(preset="light").message
    assert not choose(mode="none").used
    assert not choose(sample_rate=48000).used                                      # f0G48k.pth absent


def test_model_without_pitch_trains_and_exports(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7, 0.55, 0.65))
    for sub in ("f0", "f0_coarse"):                                      # a no-f0 model needs no pitch files
        shutil.rmtree(exp.features_dir / sub)
    result = train(exp, tiny_config(epochs=1, use_f0=False, save_voice_each_save=False), workspace=workspace)
    assert result.best_epoch == 1
    from voiceapp.voices.rvc import load_voice_model

    voice = load_voice_model(workspace.voice_model_path("alice"))
    assert not voice.use_f0
