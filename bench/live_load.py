"""Compute load of the streaming converter per engine and block size (file fed block by block, one thread).

    .venv/bin/python bench/live_load.py WORKSPACE VOICE_NAME

Load = compute seconds per block / block seconds (below 1 keeps up); latency printed is the algorithmic part
(block + 20 ms look-ahead), before compute, transport and audio-device buffers. `passthrough` is the do-nothing
baseline. Source: the first VCTK p227 file of ../shared/data (4 s).
"""
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch; torch.set_num_threads(1)
import numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from voiceapp.workspace import Workspace
from voiceapp.services import Services
from voiceapp.audio import load_audio
from voiceapp.infer.models import load_voice
from voiceapp.infer.pipeline import InferConfig
from voiceapp.live.engines import window_engine, WindowEngine
from voiceapp.live.stream import LiveConfig, StreamConverter
ws = Workspace(Path(sys.argv[1])); s = Services(workspace=ws, device="cpu")
x, _ = load_audio(sorted((Path(__file__).resolve().parents[2] / "shared/data/speech/vctk/p227").glob("*.flac"))[0], 16000, mono=True)
x = x[:16000*4]
voice = load_voice(sys.argv[2], s)
for name, eng in [("passthrough", WindowEngine()), ("instant fcpe", window_engine(voice, InferConfig(f0_method="fcpe"), services=s)), ("instant pm", window_engine(voice, InferConfig(f0_method="pm"), services=s))]:
    for block in (50, 100, 200):
        conv = StreamConverter(eng, LiveConfig(block_ms=block)); b = block*16
        times = []
        for i in range(0, len(x) - b + 1, b):
            t = time.perf_counter(); conv.push(x[i:i+b]); times.append(time.perf_counter() - t)
        t = np.array(times[2:]) / (block / 1000)
        print(f"{name:13s} block {block:3d} ms: load mean {t.mean():.2f} p95 {np.percentile(t,95):.2f}; algorithmic latency {block+20} ms", flush=True)
