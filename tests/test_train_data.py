"""Feature folder -> aligned items, short-clip filter, validation split, bucket sampler, losses, config."""

import numpy as np
import pytest
import torch

from helpers import make_feature_experiment, tiny_config
from voiceapp.errors import ConfigError
from voiceapp.train.config import TrainConfig
from voiceapp.train.data import (BucketBatchSampler, FeatureDataset, bucket_boundaries, choose_validation, collate,
                                 load_manifest, scan_clips, slice_segments, split_short)
from voiceapp.train.losses import discriminator_loss, feature_loss, generator_loss, kl_loss
from voiceapp.train.mel import MelConfig


def test_items_are_aligned_and_short_clips_filtered(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(0.6, 1.0, 12.0), extra_short_s=(0.05,))
    manifest = load_manifest(exp)
    mel = MelConfig.for_rate(40000)
    records, missing = scan_clips(exp, manifest, mel.hop_length, 40000, max_frames=900, use_f0=True)
    assert not missing and len(records) == 4
    by_stem = {r.stem: r for r in records}
    assert by_stem["clip_01"].frames == 2 * ((16000 - 400) // 320 + 1)      # content x2 is the shortest here
    assert by_stem["clip_02"].frames == 900                                  # 12 s capped at 9 s
    usable, short = split_short(records, min_frames=32)
    assert [r.stem for r in short] == ["clip_03"] and len(usable) == 3
    ds = FeatureDataset(usable, mel)
    for i, rec in enumerate(usable):
        item = ds[i]
        n = rec.frames
        assert item["phone"].shape == (n, 16) and item["spec"].shape == (mel.spec_channels, n)
        assert item["pitch"].shape == (n,) and item["pitch"].dtype == torch.long and item["pitchf"].shape == (n,)
        assert item["wave"].shape == (n * mel.hop_length,)
    raw = np.load(exp.features_dir / "content" / "clip_00.npy")
    assert torch.equal(ds[0]["phone"][0], ds[0]["phone"][1]) and np.allclose(ds[0]["phone"][2].numpy(), raw[1])


def test_collate_pads_and_sorts(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(0.6, 1.0))
    mel = MelConfig.for_rate(40000)
    records, _ = scan_clips(exp, load_manifest(exp), mel.hop_length, 40000, 900, True)
    ds = FeatureDataset(records, mel)
    batch = collate([ds[0], ds[1]], speaker_id=3)
    lengths = batch["spec_lengths"].tolist()
    assert lengths == sorted(lengths, reverse=True) and lengths[0] == max(r.frames for r in records)
    assert batch["phone"].shape[:2] == batch["pitch"].shape == (2, lengths[0])
    assert batch["wave"].shape == (2, 1, lengths[0] * mel.hop_length)
    assert batch["sid"].tolist() == [3, 3]
    assert float(batch["spec"][1, :, lengths[1]:].abs().sum()) == 0.0
    x = torch.arange(20.0).reshape(1, 1, 20).repeat(2, 1, 1)
    assert slice_segments(x, torch.tensor([2, 5]), 3)[:, 0].tolist() == [[2, 3, 4], [5, 6, 7]]


def test_sample_rate_mismatch_is_clear(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(0.6,), sample_rate=32000)
    with pytest.raises(ConfigError, match="32000 Hz"):
        scan_clips(exp, load_manifest(exp), 400, 40000, 900, True)


def test_bucket_sampler_buckets_pads_and_is_reproducible():
    lengths = [40, 50, 150, 160, 170, 420, 880, 95]
    bounds = bucket_boundaries(32, 900)
    assert bounds[0] == 31 and bounds[-1] == 900 and 100 in bounds
    sampler = BucketBatchSampler(lengths, batch_size=2, boundaries=bounds, seed=7)
    sampler.set_epoch(3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    for batch in batches:
        assert len(batch) == 2
        buckets = {next(b for b in range(len(bounds) - 1) if bounds[b] < lengths[i] <= bounds[b + 1]) for i in batch}
        assert len(buckets) == 1
    assert set(i for b in batches for i in b) == set(range(len(lengths)))
    again = BucketBatchSampler(lengths, batch_size=2, boundaries=bounds, seed=7)
    again.set_epoch(3)
    assert list(again) == batches
    again.set_epoch(4)
    assert list(again) != batches or len(batches) == 1
    ranks = [BucketBatchSampler(lengths, 2, bounds, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    seen = [set(i for b in s for i in b) for s in ranks]
    assert len(ranks[0]) == len(ranks[1]) and seen[0] | seen[1] == set(range(len(lengths)))


def test_validation_split_is_deterministic_and_bounded(workspace):
    exp = make_feature_experiment(workspace, lengths_s=(0.6,) * 9)
    records, _ = scan_clips(exp, load_manifest(exp), 400, 40000, 900, True)
    picked = choose_validation(records, 2, seed=1)
    assert len(picked) == 2 and picked == choose_validation(records, 2, seed=1)
    assert choose_validation(records[:3], 2, seed=1) == []       # too few clips: hold out nothing
    assert len(choose_validation(records[:5], 5, seed=1)) == 1   # at most a quarter


def test_losses_known_values():
    ones, zeros = [torch.ones(2, 3)], [torch.zeros(2, 3)]
    assert float(discriminator_loss(ones, zeros)[0]) == 0.0          # perfect D
    assert float(discriminator_loss(zeros, ones)[0]) == 2.0
    assert float(generator_loss(ones)[0]) == 0.0 and float(generator_loss(zeros)[0]) == 1.0
    fm = feature_loss([[torch.ones(4), torch.zeros(2)]], [[torch.zeros(4), torch.ones(2)]])
    assert float(fm) == 2.0
    z = torch.zeros(1, 2, 5)
    mask = torch.ones(1, 1, 5)
    assert float(kl_loss(z, z, z, z, mask)) == -1.0   # -0.5 per element, 2 channels, divided by mask frames
    assert float(kl_loss(z + 1, z, z, z, mask)) == pytest.approx(0.0)


def test_config_roundtrip_and_validation(tmp_path):
    cfg = tiny_config("bob smith", epochs=3)
    assert cfg.experiment == "bob_smith"
    path = tmp_path / "train.json"
    import json

    path.write_text(json.dumps(cfg.to_json()))
    assert TrainConfig.load(path) == cfg
    assert cfg.replace(batch_size=1).batch_size == 1
    with pytest.raises(ConfigError):
        TrainConfig(experiment="x", preset="huge")
    with pytest.raises(ConfigError):
        TrainConfig(experiment="x", sample_rate=44100)
    with pytest.raises(ConfigError, match="Unknown training settings"):
        TrainConfig.from_json({"experiment": "x", "bogus": 1})
