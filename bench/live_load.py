"""Compute load of the live session per engine, quality level and block size (a file fed block by block, one
thread, 48 kHz device rate, gate off, adaptation off so that each level is measured as it is).

    .venv/bin/python bench/live_load.py WORKSPACE VOICE[,VOICE...] [--blocks 50,100,200] [--seconds 4]

Load = compute seconds per block / block seconds (below ~0.8 keeps up with room for the browser and the OS),
wall clock, so it grows when other processes share the cores; the CPU-time load (process CPU seconds per block /
block seconds, all threads) is what the conversion itself costs;
latency is the session's algorithmic latency (block + 20 ms look-ahead + the two resampler streams), before
compute, transport and audio-device buffers. `passthrough` (no model) is the do-nothing baseline. Also printed:
CPU seconds per audio second of the whole run (process time) and the load average, as the machine is shared.
Source: the first VCTK p227 file of ../shared/data.
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _source(seconds: float):
    from voiceapp.audio import load_audio

    path = sorted((ROOT.parent / "shared/data/speech/vctk/p227").glob("*.flac"))[0]
    x, rate = load_audio(path, 48000, mono=True)
    return x[:int(seconds * rate)], rate


def _run(session, x, rate):
    import numpy as np

    step = int(round(session.block * rate / 16000))
    cpu0 = time.process_time()
    for i in range(0, len(x), step):
        session.push(x[i:i + step])
    cpu = time.process_time() - cpu0
    loads = np.array([r["load"] for r in session.records[2:]])
    cpu_load = np.array([r["cpu_ms"] for r in session.records[2:]]) / session.settings.block_ms
    return float(loads.mean()), float(np.percentile(loads, 95)), float(np.median(cpu_load)), cpu / (len(x) / rate)


def main() -> int:
    import torch

    torch.set_num_threads(1)
    from voiceapp.live.session import LiveSession, LiveSettings, open_session
    from voiceapp.services import Services
    from voiceapp.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("voices", help="comma list of voice names (passthrough is always measured first)")
    parser.add_argument("--blocks", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    services = Services(workspace=Workspace(args.workspace), device="cpu")
    x, rate = _source(args.seconds)
    print(f"# {len(x) / rate:.1f} s of VCTK p227 at {rate} Hz, 1 torch thread, load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    for name in ["passthrough"] + [v for v in args.voices.split(",") if v]:
        for block_ms in (int(b) for b in args.blocks.split(",")):
            settings = LiveSettings(model=name, block_ms=block_ms, gate_db=None, device_rate=rate)
            probe = open_session(settings, services, record=True, adaptive=False)
            engine = probe.levels[0].engine.name
            for i, level in enumerate(lv.name for lv in probe.levels):
                session = LiveSession(settings, probe.levels, start_level=i, adaptive=False, record=True)
                mean, p95, cpu_load, cpu = _run(session, x, rate)
                print(f"{name:11s} ({engine:11s}) {level:26s} block {block_ms:3d} ms: load mean {mean:.2f} p95 "
                      f"{p95:.2f}; CPU-time load median {cpu_load:.2f} (whole run {cpu:.2f} s/s); latency "
                      f"{session.latency_ms:.0f} ms; load avg "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
            if probe.warning:
                print(f"  warning at open: {probe.warning}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
