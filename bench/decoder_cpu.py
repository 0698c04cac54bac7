"""The CPU decoders side by side in one process (so the machine's load hits them alike): RVC's full v2 40k
HiFi-GAN NSF decoder (random weights) on the latent of one default piece (11 s: 10 s kept + 0.5 s per side).

    .venv/bin/python bench/decoder_cpu.py [--frames 1100] [--rounds 3] [--threads 1]

Rows: the decoder as loaded (what RVC runs: weight-normed NCW convs, whole input), the channels-last PyTorch
copy (float32, 2 s tiles), the float32 ONNX Runtime graph (2-D convs, even tiles of <= 4 s) and, on CPUs with
fast bf16, the bfloat16 copy; with --threads N > 1 also the ONNX Runtime and channels-last float32 decoders with
their tiles side by side in N threads (one thread per tile, as a conversion with N workers runs them; an 11 s
piece is 3 ONNX Runtime tiles or 6 PyTorch ones). Each round runs every decoder once, in turn; the figure is the median over rounds of
CPU seconds (process time) per second of output audio, wall seconds beside it, and the largest difference to
the decoder as loaded (same NSF noise seed). The first line names the CPU's instruction-set class.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class SideBySide:
    """`decoder` with its tiles decoded in `threads` worker threads, one thread per tile and every torch op
    single-threaded meanwhile (what pieces.convert_overlapped does)."""

    def __init__(self, decoder, threads: int) -> None:
        self.decoder, self.threads = decoder, threads

    def __call__(self, *args, **kwargs):
        from concurrent.futures import ThreadPoolExecutor

        import torch

        from voiceapp.infer.tiles import tiles_in
        from voiceapp.progress import NEVER

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(self.threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
                with tiles_in(pool, NEVER, self.threads):
                    return self.decoder(*args, **kwargs)
        finally:
            torch.set_num_threads(before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1100, help="latent frames (100 per second)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.speed import channels_last_decoder, cpu_has_fast_bf16, cpu_isa
    from voiceapp.infer.tiles import ORT_TILE_FRAMES
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print(f"# CPU: {cpu}, instruction-set class {cpu_isa()}; {args.frames / 100:.1f} s of latent, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    torch.manual_seed(0)
    cfg = SynthConfig.preset("v2", 40000, True, "full")
    dec = Synthesizer(cfg, with_posterior=False).eval().dec
    x = torch.randn(1, cfg.inter_channels, args.frames)
    f0 = (150 + 60 * torch.sin(torch.arange(args.frames) / 30.0))[None] * (torch.arange(args.frames) % 97 > 10)
    g = torch.randn(1, cfg.gin_channels, 1)
    decoders = {"as loaded (RVC)": dec, "channels-last fp32 (PyTorch)": channels_last_decoder(dec, torch.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        graph = onnx_decoder.export_fp32(dec, Path(tmp) / "dec.onnx", gin_channels=cfg.gin_channels)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        decoders["fp32 ONNX Runtime"] = onnx_decoder.OrtDecoder(dec, graph, args.threads, ORT_TILE_FRAMES, even=True)
        session_s = time.perf_counter() - started
        if cpu_has_fast_bf16():
            decoders["channels-last bf16 (PyTorch)"] = channels_last_decoder(dec, torch.bfloat16)
        if args.threads > 1:  # what a conversion with `threads` workers runs: tiles side by side, 1 thread each
            decoders[f"fp32 ONNX Runtime, tiles in {args.threads} threads"] = SideBySide(  # its own sessions
                onnx_decoder.OrtDecoder(dec, graph, 1, ORT_TILE_FRAMES, even=True), args.threads)
            decoders[f"channels-last fp32, tiles in {args.threads} threads"] = SideBySide(
                decoders["channels-last fp32 (PyTorch)"], args.threads)
        print(f"# ONNX export {export_s:.1f} s (once per model file, then cached), session {session_s:.2f} s "
              f"(per process)")
        seconds = args.frames / 100
        cpu_s: dict[str, list[float]] = {k: [] for k in decoders}
        wall_s: dict[str, list[float]] = {k: [] for k in decoders}
        outputs = {}
        for _ in range(args.rounds + 1):  # round 0 warms every decoder up (kernels, arenas): not counted
            for name, module in decoders.items():
                c, w = time.process_time(), time.perf_counter()
                with torch.inference_mode():
                    y = module(x, f0, g=g, generator=torch.Generator().manual_seed(1))
                cpu_s[name].append((time.process_time() - c) / seconds)
                wall_s[name].append((time.perf_counter() - w) / seconds)
                outputs[name] = y
    ref = outputs["as loaded (RVC)"]
    inner = slice(16 * dec.upsample, -16 * dec.upsample)
    base = statistics.median(cpu_s["as loaded (RVC)"][1:])
    print("| decoder | CPU s per s of audio (wall) | vs as loaded | max abs diff to as loaded |")
    print("|---|---|---|---|")
    for name in decoders:
        c, w = statistics.median(cpu_s[name][1:]), statistics.median(wall_s[name][1:])
        diff = float((outputs[name][..., inner] - ref[..., inner]).abs().max())
        print(f"| {name} | {c:.3f} ({w:.3f}) | {base / c:.2f}x | {diff:.1e} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
