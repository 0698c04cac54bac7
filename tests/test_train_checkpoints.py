"""Checkpoints: RVC keys, weights_only loading, exact optimizer/RNG restore, pairs, pruning, name adaptation."""

import random

import numpy as np
import pytest
import torch

from voiceapp.errors import ConfigError
from voiceapp.train import checkpoints as ckpt


def _model_and_optim():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1))
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    sched = torch.optim.lr_scheduler.ExponentialLR(optim, gamma=0.999875)
    for _ in range(3):
        optim.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        optim.step()
        sched.step()
    return model, optim, sched


def test_checkpoint_has_rvc_keys_and_restores_exactly(tmp_path):
    model, optim, sched = _model_and_optim()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    path = ckpt.save_checkpoint(tmp_path / "G_30.pth", model, optim, epoch=3, step=30, learning_rate=1e-4,
                                scheduler=sched, scaler=scaler, extra={"validation_stems": ["a"], "best_epoch": None})
    data = torch.load(path, map_location="cpu", weights_only=True)      # no pickled code anywhere
    assert {"model", "iteration", "optimizer", "learning_rate"} <= set(data)
    assert data["iteration"] == 3 and data["step"] == 30 and data["learning_rate"] == 1e-4
    fresh, fresh_optim, fresh_sched = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)), None, None
    fresh_optim = torch.optim.AdamW(fresh.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    fresh_sched = torch.optim.lr_scheduler.ExponentialLR(fresh_optim, gamma=0.999875)
    ckpt.load_model_state(fresh, data["model"], "G_30.pth")
    fresh_optim.load_state_dict(data["optimizer"])
    fresh_sched.load_state_dict(data["scheduler"])
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    for (ka, va), (kb, vb) in zip(optim.state_dict()["state"].items(), fresh_optim.state_dict()["state"].items()):
        assert all(torch.equal(torch.as_tensor(va[k]), torch.as_tensor(vb[k])) for k in va)
    assert fresh_optim.param_groups[0]["lr"] == optim.param_groups[0]["lr"] < 1e-4
    assert fresh_sched.last_epoch == sched.last_epoch == 3


def test_rng_state_roundtrip():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    state = ckpt.capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.restore_rng_state(state)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_pairs_latest_prune_and_temporaries(tmp_path):
    model, optim, _ = _model_and_optim()
    for step in (10, 20):
        for part in "DG":
            ckpt.save_checkpoint(tmp_path / f"{part}_{step}.pth", model, optim, epoch=step // 10, step=step,
                                 learning_rate=1e-4)
    ckpt.save_checkpoint(tmp_path / "D_30.pth", model, optim, epoch=3, step=30, learning_rate=1e-4)  # G never written
    (tmp_path / ".G_40.abc.tmp.pth").write_bytes(b"torn")
    assert [p.step for p in ckpt.list_checkpoints(tmp_path)] == [10, 20]
    assert ckpt.latest_checkpoint(tmp_path).step == 20
    removed = ckpt.prune_checkpoints(tmp_path, keep_step=20)
    assert sorted(p.name for p in removed) == ["D_10.pth", "G_10.pth"]
    assert [p.step for p in ckpt.list_checkpoints(tmp_path)] == [20]


def test_corrupt_checkpoint_and_mismatch_are_clear(tmp_path):
    bad = tmp_path / "G_5.pth"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="G_5.pth"):
        ckpt.load_checkpoint(bad)
    model = torch.nn.Linear(4, 2)
    with pytest.raises(ConfigError, match="does not fit"):
        ckpt.load_model_state(model, {"weight": torch.zeros(3, 4), "bias": torch.zeros(3)}, "f0G40k.pth")


def test_weight_norm_names_adapt_both_ways():
    old = torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 3))
    new = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(2, 3, 3))
    adapted = ckpt.adapt_state_dict(old.state_dict(), new)
    assert set(adapted) == set(new.state_dict())
    back = ckpt.adapt_state_dict(new.state_dict(), old)
    assert set(back) == set(old.state_dict())
