"""`voiceapp live --model NAME --input FILE --block-ms N --out FILE`: a file converted as if it were streamed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voiceapp.live.session import LiveSettings


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d = LiveSettings(model="passthrough")
    p = subparsers.add_parser("live", parents=[common], help="convert a file block by block, as live conversion does",
                              description="Stream a file through the live session (the Live tab's converter); "
                                          "prints the compute and load per block, the quality level, dropped blocks "
                                          "and the latency. The file is fed as fast as it converts and the level "
                                          "stays fixed (adaptation off) unless --realtime paces it at real time.")
    p.add_argument("--model", required=True, help="model name under models/voices/, a voice file path, or passthrough")
    p.add_argument("--input", required=True, type=Path, help="audio file")
    p.add_argument("--out", required=True, type=Path, help="output wav (at the input's rate, shorter by the latency)")
    p.add_argument("--block-ms", type=int, default=d.block_ms, help="block length (multiple of 10 ms, 20..500)")
    p.add_argument("--lookahead-ms", type=int, default=d.lookahead_ms)
    p.add_argument("--f0-method", default=d.f0_method, help=f"pitch method (default {d.f0_method})")
    p.add_argument("--transpose", type=float, default=d.transpose, help="semitones")
    p.add_argument("--blend", type=float, default=d.blend, help="index rate (rvc) / neighbour blend (instant, quick)")
    p.add_argument("--gate-db", type=float, default=d.gate_db, help="noise gate threshold, dBFS RMS (-inf: off)")
    p.add_argument("--level", default=None, help="quality level to start at (default: as set; with --realtime: the "
                                                 "best that keeps up), e.g. 'pm pitch, 300 ms context'")
    p.add_argument("--realtime", action="store_true", help="feed the file at real time in 10 ms pieces, with the "
                                                           "adaptive quality of the Live tab")
    p.add_argument("--quiet", action="store_true", help="no line per block")
    p.set_defaults(func=run_live)


def run_live(args: argparse.Namespace, services) -> int:
    from voiceapp.audio import load_audio, save_audio
    from voiceapp.infer.pipeline import check_file_output
    from voiceapp.live.session import one_compute_thread, open_session

    check_file_output(args.input, args.out, "wav")
    x, rate = load_audio(args.input, None, mono=True)
    settings = LiveSettings(model=args.model, transpose=args.transpose, blend=args.blend, f0_method=args.f0_method,
                            block_ms=args.block_ms, lookahead_ms=args.lookahead_ms, gate_db=args.gate_db,
                            device_rate=int(rate))
    level = args.level if args.level or args.realtime else "as set"
    if args.model.strip().lower() == "passthrough" and level == "as set":
        level = "passthrough"
    with one_compute_thread():    # as the Live tab's session thread: these per-block timings are the tab's
        session = open_session(settings, services, level=level, adaptive=args.realtime, record=True)
        if session.warning:
            print(f"warning: {session.warning}")
        y = _feed_realtime(session, x, rate) if args.realtime else _feed(session, x, rate)
    save_audio(args.out, y, rate)
    records = session.records
    if not args.quiet:
        for r in records:
            print(f"block {r['block']:4d}: {r['compute_ms']:6.1f} ms compute, load {r['load']:.2f}, {r['level']}")
    _summary(session, records, len(x), len(y), args)
    return 0


def _feed(session, x, rate: int):
    import numpy as np

    step = int(round(session.block * rate / 16000))
    out = [session.push(x[i:i + step]) for i in range(0, len(x), step)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _feed_realtime(session, x, rate: int):
    """Push what a microphone would have delivered by now, in 10 ms pieces; a slow block makes the next push
    bring more (the session then drops quality)."""
    import numpy as np

    piece, sent, out = rate // 100, 0, []
    t0 = time.perf_counter()
    while sent < len(x):
        due = min(len(x), max(sent + 1, int((time.perf_counter() - t0) * rate) // piece * piece))
        out.append(session.push(x[sent:due]))
        sent = due
        wait = t0 + (sent + piece) / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _summary(session, records, n_in: int, n_out: int, args) -> None:
    import numpy as np

    converted = [r for r in records if r["level"] not in ("gate closed", "passthrough (dropped)")]
    loads = np.array([r["load"] for r in converted[2:] or converted] or [0.0])
    used: dict[str, int] = {}
    for r in records:
        used[r["level"]] = used.get(r["level"], 0) + 1
    p95 = float(np.percentile(loads, 95))
    stats = session.stats()
    print(f"{len(records)} blocks of {args.block_ms} ms; load mean {loads.mean():.2f}, p95 {p95:.2f} "
          f"({'keeps up' if p95 < 1 else 'TOO SLOW for live use on this machine'}); levels used: "
          + ", ".join(f"{k} x{v}" for k, v in used.items()) + f"; dropped {stats['dropped']}")
    print(f"latency {session.latency_ms:.1f} ms algorithmic (block {args.block_ms} + look-ahead {args.lookahead_ms} + "
          f"resamplers; the output is {n_in - n_out} samples = {session.latency_samples} shorter than the input) "
          f"+ compute; " + ("adaptive (real-time pacing)" if args.realtime else
                            "adaptation off: the file was fed as fast as it converts (--realtime paces it)")
          + f". Saved: {args.out}")
