"""`voiceapp live --model NAME --input FILE --block-ms N --out FILE`: a file converted as if it were streamed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voiceapp.live.stream import LiveConfig


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d = LiveConfig()
    p = subparsers.add_parser("live", parents=[common], help="convert a file block by block, as live conversion does",
                              description="Stream a file through the live converter; prints the load per block.")
    p.add_argument("--model", required=True, help="model name under models/voices/ or a voice file path")
    p.add_argument("--input", required=True, type=Path, help="audio file")
    p.add_argument("--out", required=True, type=Path, help="output wav")
    p.add_argument("--block-ms", type=int, default=d.block_ms, help="block length (multiple of 10 ms)")
    p.add_argument("--lookahead-ms", type=int, default=d.lookahead_ms)
    p.add_argument("--context-ms", type=int, default=d.context_ms)
    p.add_argument("--f0-method", default=None, help="pitch method (default as infer)")
    p.add_argument("--transpose", type=float, default=0.0)
    p.set_defaults(func=run_live)


def run_live(args: argparse.Namespace, services) -> int:
    import numpy as np

    from voiceapp.audio import load_audio, save_audio
    from voiceapp.infer.pipeline import InferConfig, check_file_output, load_voice
    from voiceapp.live.engines import window_engine
    from voiceapp.live.stream import StreamConverter

    check_file_output(args.input, args.out, "wav")
    cfg = LiveConfig(block_ms=args.block_ms, lookahead_ms=args.lookahead_ms, context_ms=args.context_ms)
    voice = load_voice(args.model, services)
    engine = window_engine(voice, InferConfig(f0_method=args.f0_method, transpose_semitones=args.transpose),
                           services=services)
    conv = StreamConverter(engine, cfg)
    x, _ = load_audio(args.input, 16000, mono=True)
    block, out, loads = conv.block, [], []
    for i in range(0, len(x) - block + 1, block):
        t0 = time.perf_counter()
        out.append(conv.push(x[i:i + block]))
        loads.append((time.perf_counter() - t0) / (block / 16000))
        print(f"block {len(loads):4d}: {loads[-1] * cfg.block_ms:6.1f} ms compute, load {loads[-1]:.2f}")
    y = np.concatenate(out) if out else np.zeros(0, np.float32)
    save_audio(args.out, y, engine.sample_rate)
    steady = np.array(loads[2:] or loads or [0.0])
    print(f"{len(loads)} blocks of {cfg.block_ms} ms; load mean {steady.mean():.2f}, p95 {np.percentile(steady, 95):.2f}"
          f" ({'keeps up' if np.percentile(steady, 95) < 1 else 'TOO SLOW for live use on this machine'}); latency "
          f"{cfg.block_ms + cfg.lookahead_ms} ms algorithmic (block + look-ahead; output is "
          f"{conv.delay_samples / 16:.0f} ms shorter than the input) + compute. Saved: {args.out}")
    return 0
