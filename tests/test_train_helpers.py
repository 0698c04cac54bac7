"""Helpers for the training tests: a synthetic experiment with feature files in the documented layout.

No features package, no encoder: content frames are deterministic random vectors, f0 is the tone's pitch.
"""

from __future__ import annotations

import json

import numpy as np

from conftest import harmonic, write_wav


def coarse_from_hz(f0_hz: np.ndarray) -> np.ndarray:
    mel = 1127.0 * np.log1p(f0_hz / 700.0)
    lo, hi = 1127.0 * np.log1p(50 / 700.0), 1127.0 * np.log1p(1100 / 700.0)
    mel = np.where(mel > 0, (mel - lo) * 254 / (hi - lo) + 1, mel)
    return np.rint(np.clip(mel, 1, 255)).astype(np.int64)


def make_feature_experiment(workspace, name: str = "alice", lengths_s=(0.6, 0.8, 1.0, 0.7, 0.9, 1.1),
                            sample_rate: int = 40000, dim: int = 16, version: str = "v2", encoder: str = "fake-16",
                            extra_short_s: tuple[float, ...] = ()) -> object:
    """Clips under datasets/<name>/clips and features under logs/<name>/features; returns the ExperimentDir."""
    ds = workspace.dataset(name)
    exp = workspace.experiment(name)
    feats = exp.features_dir
    rng = np.random.default_rng(0)
    clips = {}
    for i, seconds in enumerate(tuple(lengths_s) + tuple(extra_short_s)):
        stem = f"clip_{i:02d}"
        f0 = 140.0 + 20 * i
        audio = harmonic(f0, seconds, sample_rate, amplitude=0.4)
        write_wav(ds.clips_dir / f"{stem}.wav", audio, sample_rate)
        n16 = int(round(seconds * 16000))
        f0_frames = n16 // 160 + 1
        content_frames = max(1, (n16 - 400) // 320 + 1)
        f0_hz = np.full(f0_frames, f0, dtype=np.float32)
        f0_hz[:3] = 0.0
        for sub, arr in (("content", rng.standard_normal((content_frames, dim)).astype(np.float32)),
                         ("f0", f0_hz), ("f0_coarse", coarse_from_hz(f0_hz))):
            (feats / sub).mkdir(parents=True, exist_ok=True)
            np.save(feats / sub / f"{stem}.npy", arr)
        clips[stem] = {"frames": f0_frames}
    manifest = {"dataset": name, "dataset_dir": str(ds.root), "clips_dir": str(ds.clips_dir),
                "sample_rate": sample_rate, "encoder": encoder, "dim": dim, "version": version, "f0_method": "pm",
                "clips": clips, "failed": {}, "versions": {}}
    (feats / "manifest.json").write_text(json.dumps(manifest))
    return exp


def tiny_config(name: str = "alice", **changes):
    from voiceapp.train.config import TrainConfig

    base = dict(experiment=name, preset="tiny", epochs=2, save_every_epochs=1, batch_size=2, validation_clips=1,
                log_every_steps=1, pretrained="none")
    base.update(changes)
    return TrainConfig(**base)
