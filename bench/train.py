"""Training benchmark: steps per second and peak memory of the real training step (data, mel, D and G updates).

    .venv/bin/python bench/train.py [--presets full,light] [--batch-size 4] [--steps 3] [--threads 2] [--device cpu]

Synthetic 3.7 s clips at 40 kHz with 768-wide content features (v2), so it needs no dataset and no weights.
On CUDA it uses the same autocast as training (bf16, or fp16 with a GradScaler).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from voiceapp.train.config import TrainConfig  # noqa: E402
from voiceapp.train.loop import Trainer  # noqa: E402
from voiceapp.workspace import Workspace  # noqa: E402

# Reported by RVC users (reference/rvc-facts.md §6); rough, different data sizes and batch sizes.
RVC_REPORTED = [
    ("A40, 7-8 min dataset", "~20 s per epoch (200 epochs < 1 h)", "RVC #1540"),
    ("RTX 3070, batch 6, ~4 min dataset", "35 s per epoch", "RVC #1540"),
    ("RTX 3050 laptop, < 10 min dataset", "3 min per epoch", "RVC #1250"),
    ("2 CPU cores, batch 4 (RVC's own classes)", "~13 s per full v2 40k step", "issue #4"),
]


def make_experiment(ws: Workspace, clips: int, seconds: float, sample_rate: int = 40000, dim: int = 768) -> None:
    import soundfile as sf

    ds, exp = ws.dataset("bench"), ws.experiment("bench")
    rng = np.random.default_rng(0)
    for sub in ("content", "f0", "f0_coarse"):
        (exp.features_dir / sub).mkdir(parents=True, exist_ok=True)
    ds.clips_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for i in range(clips):
        stem = f"c{i:03d}"
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        f0 = 150.0 + 10 * i
        sf.write(str(ds.clips_dir / f"{stem}.wav"), (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32),
                 sample_rate)
        n16 = int(seconds * 16000)
        frames = n16 // 160 + 1
        np.save(exp.content_dir / f"{stem}.npy", rng.standard_normal(((n16 - 400) // 320 + 1, dim)).astype(np.float32))
        np.save(exp.f0_dir / f"{stem}.npy", np.full(frames, f0, np.float32))
        np.save(exp.f0_coarse_dir / f"{stem}.npy", np.full(frames, 60, np.int64))
        entries[stem] = {"frames": frames}
    manifest = {"dataset": "bench", "dataset_dir": str(ds.root), "clips_dir": str(ds.clips_dir),
                "sample_rate": sample_rate, "encoder": "fake-768", "dim": dim, "version": "v2", "f0_method": "none",
                "clips": entries, "failed": {}, "versions": {}}
    exp.features_manifest_path.write_text(json.dumps(manifest))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_preset(ws: Workspace, preset: str, batch_size: int, steps: int, device: str) -> dict:
    cfg = TrainConfig(experiment="bench", preset=preset, batch_size=batch_size, validation_clips=0, epochs=1,
                      pretrained="none")
    trainer = Trainer(ws.experiment("bench"), cfg, workspace=ws, device=device)
    trainer.prepare()
    params_g = sum(p.numel() for p in trainer.net_g.parameters()) / 1e6
    params_d = sum(p.numel() for p in trainer.net_d.parameters()) / 1e6
    batches = iter(trainer.loader)
    trainer.train_step(next(batches))                       # warm-up (allocations, oneDNN kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(trainer.loader)
            batch = next(batches)
        start, cpu_start = time.perf_counter(), time.process_time()
        losses = trainer.train_step(batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    trainer.close()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"preset": preset, "s_per_step": float(np.median(times)), "cpu_s": float(np.median(cpu_times)),
            "params_g": params_g, "params_d": params_d,
            "rss": peak_rss_mib(), "gpu": gpu_peak, "mel": losses["mel"], "segment": trainer.segment_frames}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="full,light")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per preset (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one preset, result as JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.json:
        with tempfile.TemporaryDirectory() as tmp:
            ws = Workspace(Path(tmp)).ensure()
            make_experiment(ws, clips=max(2 * args.batch_size, 8), seconds=3.7)
            print(json.dumps(bench_preset(ws, args.presets, args.batch_size, args.steps, args.device)))
        return 0
    rows = []
    for preset in args.presets.split(","):   # one process each, so peak memory is per preset
        out = subprocess.run([sys.executable, __file__, "--json", "--presets", preset.strip(), "--batch-size",
                              str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads),
                              "--device", args.device], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    where = f"{args.device}" + (f", {args.threads} threads" if args.device == "cpu" else "")
    print(f"### Training step, v2 40k, batch {args.batch_size}, 3.7 s clips ({where}; median of {args.steps} "
          f"steps after a warm-up)\n")
    print("| preset | G params (M) | D params (M) | s / step (wall) | CPU s / step | steps / s (wall) "
          "| peak RSS (MiB, process) | peak GPU (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        gpu = f"{r['gpu']:.0f}" if r["gpu"] is not None else "-"
        print(f"| {r['preset']} | {r['params_g']:.1f} | {r['params_d']:.1f} | {r['s_per_step']:.2f} | "
              f"{r['cpu_s']:.2f} | "
              f"{1 / r['s_per_step']:.3f} | {r['rss']:.0f} | {gpu} |")
    if len(rows) == 2:
        print(f"\n{rows[0]['preset']} / {rows[1]['preset']} step time ratio: "
              f"{rows[0]['s_per_step'] / rows[1]['s_per_step']:.1f}x wall, "
              f"{rows[0]['cpu_s'] / rows[1]['cpu_s']:.1f}x CPU (CPU time is steadier on a busy machine)")
    print("\nRVC's published / reported numbers (not measured here):\n")
    print("| setup | training speed | source |\n|---|---|---|")
    for setup, speed, source in RVC_REPORTED:
        print(f"| {setup} | {speed} | {source} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
