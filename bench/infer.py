"""Conversion benchmark: real-time factor, peak memory and time per step (f0, content features, retrieval,
synthesis) with RVC's full v2 40k model (random weights) and a random-weight HuBERT-base content encoder
(same shapes and cost as ContentVec), on real speech from ../shared/data/speech.

    .venv/bin/python bench/infer.py [--seconds 30] [--methods pm,harvest,...] [--threads 1]
                                    [--configs rvc,voiceapp,voiceapp-fp32] [--quality] [--json out.json]

Each (config, f0 method) runs in a fresh child process (so its peak RSS is its own); configs of one method
run back to back, so their ratio is measured under the same machine load. Configs:
  rvc            RVC's CPU settings: pieces (x_pad, x_query, x_center, x_max) = (1, 6, 38, 41) s, the model as
                 loaded (float32, weight-normed 1-D convs), the whole padding decoded, and the f0 in one call on
                 one thread, as RVC's pipeline computes it (pyworld/parselmouth/torch f0 over the whole input)
  rvc-f0x2       the same with our f0 split over two threads (the baseline of rows measured before 2026-12-04 22:40)
  voiceapp       our defaults (InferConfig(): pieces (0.5, 2, 10, 12) s, precision auto: decoder in bf16 on CPUs
                 with AMX/AVX-512 BF16, float32 in ONNX Runtime on other AVX2/AVX-512 CPUs, else float32 PyTorch)
  voiceapp-fp32  our defaults with the float32 PyTorch decoder (channels-last)
  voiceapp-ort   our defaults with the float32 ONNX Runtime decoder
  voiceapp-bf16  our defaults in bfloat16
  voiceapp-int8  our defaults with the int8 ONNX Runtime decoder
  seg<C>         our defaults with pieces cut every C seconds (query C/5, max 1.2 C): for the segment-length scan
  <config>-ctx<S>  that config decoding only the kept part of each piece plus S seconds per side (RVC decodes the
                 whole padded piece: 0.5 s per side here), e.g. voiceapp-ort-ctx0.2
  <config>-serial  that config with InferConfig(workers=1): each piece's steps one after the other, the threads
                 only inside torch's and ONNX Runtime's ops (what every config did before pieces overlapped)
With --threads N > 1 our configs overlap the pieces' steps in N worker threads (the next piece's content features
while a piece is synthesized, the decoder's tiles one per thread); RVC's settings run torch with N threads.
RTF = seconds per second of audio (lower is faster), model/encoder loading excluded (reported apart: "load s"
includes building or opening the decoder's cached ONNX graph; "graph" says whether this process built it). On a shared
machine the CPU seconds of the child (process time) are the stable number; wall seconds are given beside them.
"cores busy" = CPU RTF / wall RTF (2.00: both cores busy all along); "others' cores" = the cores other programs
kept busy during the run, on average (from /proc/stat; the 1-min load average includes the run's own threads); with
overlapped pieces a step's wall seconds are the seconds it ran (in a worker thread for the features), so the
steps' walls add up to more than the total. The first line names the CPU's instruction-set class (AVX2 / AVX-512 / AMX), which decides the fast paths.
--quality also converts with RVC's settings and seed 1, and prints how far each config's output is from RVC's
(seed 0) in log-mel L1 and speaker similarity (resemblyzer), next to what another noise seed changes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SPEECH = ROOT.parent / "shared" / "data" / "speech"
STEPS = ("f0", "features", "retrieval", "synthesis")


def config_for(name: str):
    from voiceapp.infer.pipeline import InferConfig

    base = InferConfig(index_rate=0.75, seed=0)
    if name == "rvc":  # RVC's pipeline: its pieces, the whole padding decoded, and the f0 in one call (one thread)
        return replace(base, segment_pad_s=1.0, segment_query_s=6.0, segment_center_s=38.0, segment_max_s=41.0,
                       decoder_context_s=None, precision="fp32", f0_workers=1, workers=1)
    if name == "rvc-f0x2":  # the same with our f0 in two threads (the baseline of the earlier rows)
        return replace(base, segment_pad_s=1.0, segment_query_s=6.0, segment_center_s=38.0, segment_max_s=41.0,
                       decoder_context_s=None, precision="fp32", f0_workers=2, workers=1)
    if name == "voiceapp":
        return base
    if name == "voiceapp-fp32":
        return replace(base, precision="fp32")
    if name == "voiceapp-bf16":
        return replace(base, precision="bf16")
    if name == "voiceapp-ort":
        return replace(base, precision="ort")
    if name == "voiceapp-int8":
        return replace(base, precision="int8")
    if "-ctx" in name:  # decode only the kept part plus this many seconds of context per side
        base_name, seconds = name.rsplit("-ctx", 1)
        return replace(config_for(base_name), decoder_context_s=float(seconds))
    if name.endswith("-serial"):  # one piece step after the other (torch's and ONNX Runtime's own threads only)
        return replace(config_for(name[:-len("-serial")]), workers=1)
    if name.startswith("seg"):
        center = float(name[3:])
        return replace(base, segment_center_s=center, segment_query_s=center / 5, segment_max_s=1.2 * center)
    raise SystemExit(f"unknown config {name!r}")


# ----------------------------------------------------------------------------------------------- setup (parent)

def speech_16k(seconds: float) -> "np.ndarray":
    """Real speech: LJ Speech clips (then other speakers) concatenated to `seconds` at 16 kHz."""
    import numpy as np

    from voiceapp.audio import find_audio_files, load_audio

    files, _ = find_audio_files([SPEECH / "ljspeech", SPEECH / "vctk", SPEECH / "librispeech", SPEECH / "cmu_arctic"])
    parts, total, need = [], 0, int(seconds * 16000)
    while total < need and files:
        for path in files:
            audio, _ = load_audio(path, 16000)
            parts.append(audio)
            total += len(audio)
            if total >= need:
                break
    return np.concatenate(parts)[:need].astype(np.float32)


def prepare(root: Path, seconds: float) -> dict:
    """Workspace with the full v2 40k voice (random weights), a random HuBERT-base as 'contentvec', an index."""
    import numpy as np
    import torch

    from voiceapp.audio import save_audio
    from voiceapp.index.build import IndexConfig, make_ivf_index, n_lists_for
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.voices.rvc import export_voice_model
    from voiceapp.workspace import Workspace

    ws = Workspace(root).ensure()
    torch.manual_seed(0)
    cfg = SynthConfig.preset("v2", 40000, True, "full")
    model = ws.voice_model_path("bench")
    if not model.is_file():  # kept between runs (same weights): its cached decoder graphs stay valid
        model = export_voice_model(Synthesizer(cfg).state_dict(), cfg, model, epoch=1, step=1,
                                   embedder="contentvec", name="bench")
    if not (ws.contentvec_dir / "config.json").exists():
        from transformers import HubertConfig, HubertModel

        HubertModel(HubertConfig()).save_pretrained(str(ws.contentvec_dir))  # HuBERT-base shapes, random weights
    rows = np.random.default_rng(0).standard_normal((30_000, 768)).astype(np.float32)  # ~10 min of training audio
    import faiss

    index_path = ws.voice_dir("bench") / "added_bench.index"
    faiss.write_index(make_ivf_index(rows, n_lists_for(len(rows)), IndexConfig()), str(index_path))
    audio_path = root / f"speech_{int(seconds)}s.wav"
    if not audio_path.exists():
        save_audio(audio_path, speech_16k(seconds), 16000)
    return {"root": str(root), "model": str(model), "index": str(index_path), "audio": str(audio_path)}


# ----------------------------------------------------------------------------------------------- one run (child)

def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    import faiss

    faiss.omp_set_num_threads(spec["threads"])
    from voiceapp.audio import load_audio
    from voiceapp.infer.pipeline import convert, load_voice
    from voiceapp.services import Services
    from voiceapp.workspace import Workspace

    if spec["config"].startswith("rvc"):  # RVC runs the loaded model as it is: weight-normed NCW float32 convs
        import voiceapp.infer.speed as speed

        speed.for_precision = lambda voice, precision, *rest: voice
    services = Services(workspace=Workspace(Path(spec["root"])), device="cpu")
    audio, rate = load_audio(spec["audio"], 16000)
    started = time.perf_counter()
    voice = load_voice(spec["model"], services)
    load_model_s = time.perf_counter() - started
    cfg = replace(config_for(spec["config"]), f0_method=spec["method"], seed=int(spec.get("seed", 0)))
    cache = services.workspace.models_dir / "cache" / "decoders"
    graphs_before = set(cache.glob("*.onnx")) if cache.exists() else set()
    if spec.get("first_call"):  # what a new process pays at its first conversion, beyond the second one
        calls = []
        for _ in range(2):
            t = convert(audio, rate, voice, cfg, index_path=spec["index"], services=services).timings
            calls.append((t.get("cpu_load", 0.0), t["cpu_total"] - t.get("cpu_load", 0.0),
                          t["total"] - t.get("load", 0.0)))
        from voiceapp.infer.speed import resolve_precision

        built = (set(cache.glob("*.onnx")) if cache.exists() else set()) - graphs_before
        return {"config": spec["config"], "precision": resolve_precision(cfg.precision, "cpu"),
                "audio_s": round(len(audio) / rate, 2), "load_model_s": round(load_model_s, 2),
                "first_load_cpu_s": round(calls[0][0], 2), "first_cpu_s": round(calls[0][1], 2),
                "first_wall_s": round(calls[0][2], 2), "second_cpu_s": round(calls[1][1], 2),
                "second_wall_s": round(calls[1][2], 2),
                "graph": "built" if built else ("cached" if graphs_before else "-")}
    result = convert(audio, rate, voice, cfg, index_path=spec["index"], services=services)
    graphs_after = set(cache.glob("*.onnx")) if cache.exists() else set()
    t, dur = result.timings, result.duration_s
    out = {"config": spec["config"], "method": spec["method"], "threads": spec["threads"], "seed": cfg.seed,
           "audio_s": round(dur, 2), "pieces": result.segments,
           "rtf": round((t["total"] - t.get("load", 0.0)) / dur, 3),
           "cpu_rtf": round((t["cpu_total"] - t.get("cpu_load", 0.0)) / dur, 3),
           "load_s": round(t.get("load", 0.0) + load_model_s, 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    out.update({f"{k}_per_s": round(t.get(k, 0.0) / dur, 3) for k in STEPS})
    out.update({f"cpu_{k}_per_s": round(t.get(f"cpu_{k}", 0.0) / dur, 3) for k in STEPS})
    out["other_per_s"] = round(t.get("post", 0.0) / dur, 3)
    out["workers"] = int(t.get("workers", 1))
    if "pieces" in t:  # overlapped: the pieces' wall time (features and synthesis overlapped inside it)
        out["pieces_per_s"] = round(t["pieces"] / dur, 3)
    from voiceapp.infer.speed import resolve_precision

    out["precision"] = resolve_precision(cfg.precision, "cpu") if not spec["config"].startswith("rvc") else "rvc"
    out["graph"] = "built" if graphs_after - graphs_before else ("cached" if graphs_after else "-")
    if spec.get("save"):
        import numpy as np

        np.save(spec["save"], result.audio)
        out["rate"] = result.sample_rate
    return out


def busy_cpu_s() -> float:
    """CPU seconds all processes of the machine have run since boot (/proc/stat: user, nice, system, irq,
    softirq), 0 if unknown."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        return (sum(int(v) for v in fields[:7]) - int(fields[3]) - int(fields[4])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def run_child(spec: dict) -> dict:
    """One run in a child process; "others_cores": the cores other programs kept busy meanwhile, on average (the
    machine's CPU seconds minus the child's, per wall second): near 0 on a quiet machine."""
    busy, own, started = busy_cpu_s(), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          cwd=str(ROOT))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_s = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
    others = max(0.0, (busy_cpu_s() - busy - own_s) / (time.perf_counter() - started))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"config": spec["config"], "method": spec["method"], "error": proc.stderr.strip()[-400:]}
    return {**json.loads(lines[-1]), "others_cores": round(others, 2)}


def table(results: list[dict]) -> str:
    """Per step: CPU seconds per second of audio (wall seconds in brackets)."""
    head = ("| method | config | CPU RTF (wall) | cores busy | f0 | features | retrieval | synthesis | pieces | "
            "peak MB | load s | decoder | graph | others' cores |")
    lines = [head, "|" + "---|" * 14]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['method']} | {r['config']} | error: {r['error'][-120:]} |")
            continue
        cells = " | ".join(f"{r['cpu_' + k + '_per_s']:.2f} ({r[k + '_per_s']:.2f})" for k in STEPS)
        busy = r["cpu_rtf"] / r["rtf"] if r["rtf"] else 0.0
        lines.append(f"| {r['method']} | {r['config']} | {r['cpu_rtf']:.2f} ({r['rtf']:.2f}) | {busy:.2f} | {cells} | "
                     f"{r['pieces']} | {r['peak_rss_mb']:.0f} | {r['load_s']:.1f} | {r.get('precision', '?')} | "
                     f"{r.get('graph', '?')} | {r.get('others_cores', 0.0):.2f} |")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def quality_table(saved: dict) -> str:
    """How far each config's output is from RVC's settings (seed 0): log-mel L1 and speaker similarity, beside
    RVC's settings with seed 1 (what another noise seed changes: the noise of the model itself)."""
    import librosa
    import numpy as np

    from voiceapp.metrics import SpeakerEmbedder

    def logmel(audio, rate):
        return np.log(librosa.feature.melspectrogram(y=audio, sr=rate, n_fft=2048, hop_length=rate // 100,
                                                     n_mels=80) + 1e-6)

    embedder = SpeakerEmbedder()
    lines = ["| method | output | log-mel L1 to RVC seed 0 | speaker similarity to RVC seed 0 |", "|---|---|---|---|"]
    for (method, config, seed), (path, rate) in saved.items():
        ref = saved.get((method, "rvc", 0))
        if ref is None or (config, seed) == ("rvc", 0):
            continue
        a, b = np.load(ref[0]), np.load(path)
        n = min(len(a), len(b))
        dist = float(np.mean(np.abs(logmel(a[:n], rate) - logmel(b[:n], rate))))
        sim = embedder.similarity(a[:n], rate, b[:n], rate)
        label = "RVC settings, seed 1 (noise)" if seed else config
        lines.append(f"| {method} | {label} | {dist:.3f} | {sim:.4f} |")
    return "\n".join(lines)


def first_call(args: argparse.Namespace, paths: dict) -> int:
    """Per config, a new process converting the same speech twice: the first conversion's extra cost."""
    method = args.methods.split(",")[0]
    print(f"| config | decoder | {args.seconds:.0f} s speech ({method}) | load model s | first call: loading CPU s "
          f"(encoder, index, decoder graph) | first call: conversion CPU s (wall) | second call: conversion CPU s "
          f"(wall) | first-call extra conversion CPU s | decoder graph |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config in [c for c in args.configs.split(",") if c]:
        r = run_child({**paths, "config": config, "method": method, "threads": args.threads, "first_call": True})
        if "error" in r:
            print(f"| {config} | error: {r['error'][-160:]} |")
            continue
        print(f"| {config} | {r['precision'] if config != 'rvc' else 'rvc'} | {r['audio_s']:.0f} s | "
              f"{r['load_model_s']:.1f} | {r['first_load_cpu_s']:.2f} | {r['first_cpu_s']:.2f} ({r['first_wall_s']:.2f}) "
              f"| {r['second_cpu_s']:.2f} ({r['second_wall_s']:.2f}) | {r['first_cpu_s'] - r['second_cpu_s']:.2f} | "
              f"{r['graph']} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30.0, help="speech length to convert")
    parser.add_argument("--methods", default="pm,harvest,dio,crepe-tiny,crepe,fcpe",
                        help="f0 methods (offline ones by default; rmvpe needs models/base/rmvpe.pt)")
    parser.add_argument("--configs", default="rvc,voiceapp,voiceapp-fp32")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2 only on a quiet machine)")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "voiceapp_bench_infer",
                        help="scratch workspace (kept between runs: model, encoder, index, audio)")
    parser.add_argument("--quality", action="store_true",
                        help="also measure how far the outputs are from RVC's (log-mel, speaker similarity)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--first-call", action="store_true",
                        help="instead: in a new process per config, convert --seconds of speech twice and print "
                             "what the first conversion costs beyond the second (kernel building, graph loading)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not SPEECH.exists():
        print(f"skip: {SPEECH} not found")
        return 0
    paths = prepare(args.root, args.seconds)
    load = os.getloadavg()[0]
    from voiceapp.infer.speed import cpu_isa, resolve_precision

    print(f"# CPU: {cpu_model()}, instruction-set class {cpu_isa()} (our CPU decoder here: "
          f"{resolve_precision('auto', 'cpu')})")
    print(f"# {args.seconds:.0f} s of speech, full v2 40k (random weights), random HuBERT-base, index 30k rows, "
          f"{args.threads} thread(s), load average {load:.1f} on {os.cpu_count()} cores")
    if args.first_call:
        return first_call(args, paths)
    results, saved = [], {}
    for method in [m for m in args.methods.split(",") if m]:
        runs = [(c, 0) for c in args.configs.split(",") if c]
        if args.quality:
            runs.append(("rvc", 1))
        for config, seed in runs:
            spec = {**paths, "config": config, "method": method, "threads": args.threads, "seed": seed}
            if args.quality:
                spec["save"] = str(args.root / f"out_{method}_{config}_{seed}.npy")
            result = run_child(spec)
            if seed == 0:
                results.append(result)
            if "error" not in result and args.quality:
                saved[(method, config, seed)] = (spec["save"], result["rate"])
            print(json.dumps(result), flush=True)
    print()
    print(table(results))
    by = {(r["method"], r["config"]): r for r in results if "error" not in r}
    for method in {r["method"] for r in results}:
        base = by.get((method, "rvc"))
        for config in [c for c in args.configs.split(",") if c != "rvc"]:
            ours = by.get((method, config))
            if base and ours:
                print(f"{method}: {config} on {args.threads} thread(s) needs {base['rtf'] / ours['rtf']:.2f}x less "
                      f"wall time than RVC's settings (wall RTF {base['rtf']:.2f} -> {ours['rtf']:.2f}) and "
                      f"{base['cpu_rtf'] / ours['cpu_rtf']:.2f}x less CPU time (CPU RTF {base['cpu_rtf']:.2f} -> "
                      f"{ours['cpu_rtf']:.2f})")
    if args.quality:
        print()
        print(quality_table(saved))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "threads": args.threads, "results": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
