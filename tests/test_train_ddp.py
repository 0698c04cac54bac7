"""DDP: two processes with gloo on the CPU (tiny preset) hold identical weights after a step on different data."""

import os

import pytest
import torch

from helpers import make_feature_experiment, tiny_config

pytestmark = pytest.mark.slow  # two spawned processes


def _worker(rank: int, root: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from voiceapp.train.checkpoints import unwrap
    from voiceapp.train.distributed import cleanup_distributed, dist_from_env, init_distributed
    from voiceapp.train.loop import Trainer
    from voiceapp.workspace import Workspace

    info = dist_from_env()
    assert info.enabled and info.rank == rank
    init_distributed(info, "cpu")
    ws = Workspace(root)
    trainer = Trainer(ws.experiment("alice"), tiny_config(validation_clips=0, batch_size=1), workspace=ws,
                      dist_info=info)
    try:
        trainer.prepare()
        before = {k: v.clone() for k, v in unwrap(trainer.net_g).state_dict().items()}
        batch = next(iter(trainer.loader))
        trainer.train_step(batch)
        torch.save({"before": before, "g": unwrap(trainer.net_g).state_dict(),
                    "d": unwrap(trainer.net_d).state_dict(), "index": batch["index"].tolist()},
                   os.path.join(out, f"rank{rank}.pt"))
    finally:
        trainer.close()
        cleanup_distributed()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_two_gloo_ranks_agree_after_a_step(workspace, tmp_path):
    import torch.multiprocessing as mp

    from voiceapp.train.process import free_port

    make_feature_experiment(workspace, lengths_s=(0.5, 0.6, 0.7, 0.55))
    mp.spawn(_worker, args=(str(workspace.root), free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["index"] != r1["index"]                                   # each rank trained on its own clip
    changed = [k for k in r0["g"] if not torch.equal(r0["g"][k], r0["before"][k])]
    assert changed                                                      # the step did something
    for part in ("g", "d"):
        for key in r0[part]:
            assert torch.equal(r0[part][key], r1[part][key]), f"{part}:{key} differs between ranks"
