"""Conversion quality of the voice engines side by side, fully offline, on one target and the same sources.

    .venv/bin/python bench/quality.py [--engines instant,quick[,rvc]] [--quick-minutes 20] [--rvc-minutes 20]
                                      [--files-per-source 2] [--out bench/out/quality]

Target: LJ Speech from ../shared/data (32 files, 5.6 min; 3 more files held out as the reference the similarity
is measured against). Sources: other real speakers nobody trained on (VCTK p227/p228, CMU ARCTIC, LibriSpeech),
each transposed by the octave-rounded ratio of median pitches (as a user would set it). Per engine and source:
- speaker similarity (resemblyzer cosine) output -> target reference, next to input -> target (the do-nothing
  baseline) and output -> source;
- WER of Whisper tiny.en's transcript of the output against its transcript of the input;
- naturalness: DNSMOS P.835 OVRL (natural speech ~3.1-3.4);
- f0 gross / fine error of the output against the transposed input (fcpe on both);
- conversion real-time factor (wall seconds per second, 2 threads) and the engine's training minutes.
Rows `input` (the source itself) and `world-copy` (WORLD analysis/resynthesis of the source, transposed) are the
baselines: what doing nothing scores, and the ceiling of the WORLD vocoder the instant/quick engines use.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "speech"
SOURCES = [("vctk", "vctk/p227"), ("vctk", "vctk/p228"), ("arctic", "cmu_arctic"), ("libri", "librispeech")]
SPEAKER_SEX = {"p227": "M", "p228": "F", "awb": "M", "axb": "F", "198": "F", "3436": "M", "5703": "M"}


@dataclass
class Row:
    source: str
    sim_in: float
    sim_out: float
    sim_src: float
    wer: float
    mos: float
    gpe: float
    fpe: float
    rtf: float


@dataclass
class Engine:
    name: str
    voice: object = None
    train_minutes: float = 0.0
    note: str = ""
    rows: list[Row] = field(default_factory=list)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="instant,quick", help="comma list of instant, quick, rvc")
    parser.add_argument("--quick-minutes", type=float, default=20.0)
    parser.add_argument("--rvc-minutes", type=float, default=20.0,
                        help="rvc: RVC's full model from scratch on the CPU (no pretrained G/D offline)")
    parser.add_argument("--files-per-source", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quality")
    parser.add_argument("--keep", action="store_true", help="reuse the workspace of a previous run (features)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a machine others are using)")
    return parser.parse_args()


def _prepare(ws, services, files) -> float:
    from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
    from voiceapp.features.extract import FeatureConfig, extract_features

    t0 = time.perf_counter()
    if not ws.experiment("lj").features_manifest_path.exists():
        prepare_dataset(files, ws.dataset("lj"), DatasetConfig(sample_rate=40000), services=services)
        extract_features(ws.dataset("lj"), ws.experiment("lj"), FeatureConfig(f0_method="fcpe",
                                                                                encoder="whisper-mid"),
                         services=services)
    return time.perf_counter() - t0


def _make(engine: Engine, ws, services, args) -> None:
    from voiceapp.infer.models import load_voice

    exp = ws.experiment("lj")
    t0 = time.perf_counter()
    if engine.name == "instant":
        from voiceapp.train.instant import build_instant

        path = build_instant(exp, ws)
    elif engine.name == "quick":
        from voiceapp.train.config import TrainConfig
        from voiceapp.train.quick import train_quick

        result = train_quick(exp, TrainConfig(experiment="lj", engine="quick", minutes=args.quick_minutes), ws)
        path, engine.note = result.voice_model, f"{result.step} steps"
    else:
        from voiceapp.demo.run import train_for_minutes
        from voiceapp.index.build import build_index

        result, epochs, _ = train_for_minutes(ws, "lj", args.rvc_minutes, preset="full", device="cpu")
        engine.note = f"{result.step} steps, full model from scratch"
        build_index(exp, voices_dir=ws.voice_dir("lj"))
        path = ws.voice_model_path("lj")
    engine.train_minutes = (time.perf_counter() - t0) / 60
    engine.voice = load_voice(path, services)


def _sources(per_source: int) -> list[Path]:
    from voiceapp.audio import find_audio_files

    out = []
    for _, folder in SOURCES:
        files, _ = find_audio_files([DATA / folder])
        out += files[:per_source]
    return out


def _world_copy(audio: np.ndarray, f0_hz: np.ndarray, transpose: int) -> np.ndarray:
    from voiceapp.audio.world import WorldFrames, analyze, synthesize

    frames = analyze(audio, 16000, f0_hz)
    return synthesize(f0_hz[:len(frames)] * 2 ** (transpose / 12), WorldFrames(frames.sp, frames.ap, 16000))


def _evaluate(engines: list[Engine], ws, services, sources: list[Path], reference: np.ndarray) -> list[Engine]:
    from voiceapp.audio import load_audio, resample
    from voiceapp.features.f0 import load_f0_method
    from voiceapp.voices.store import find_index
    from voiceapp.infer.pipeline import InferConfig, convert
    from voiceapp.metrics import SpeakerEmbedder, Transcriber, f0_errors, naturalness, word_error_rate

    f0 = load_f0_method("fcpe", "cpu")
    embedder, asr = SpeakerEmbedder(), Transcriber()
    target_f0 = np.median((lambda t: t[t > 0])(f0(reference)))
    baselines = [Engine("input"), Engine("world-copy")]
    for path in sources:
        audio, _ = load_audio(path, 16000)
        speaker = path.stem.split("_")[0].split("-")[0]
        label = f"{speaker} ({SPEAKER_SEX.get(speaker, '?')}) {path.stem}"
        src_f0 = f0(audio)
        transpose = max(-12, min(12, int(round(12 * math.log2(target_f0 / max(np.median(src_f0[src_f0 > 0]), 1.0))))))
        text_in = asr.transcribe(audio, 16000)
        sim_in = embedder.similarity(audio, 16000, reference, 16000)

        def row(out16: np.ndarray, rtf: float) -> Row:
            wer = word_error_rate(text_in, asr.transcribe(out16, 16000)) if text_in.strip() else float("nan")
            gpe, fpe = f0_errors(src_f0 * 2 ** (transpose / 12), f0(out16))
            return Row(f"{label} {transpose:+d}", sim_in, embedder.similarity(out16, 16000, reference, 16000),
                       embedder.similarity(out16, 16000, audio, 16000), wer, naturalness(out16, 16000), gpe, fpe, rtf)

        baselines[0].rows.append(row(audio, 0.0))
        baselines[0].rows[-1].gpe = baselines[0].rows[-1].fpe = float("nan")   # its own pitch: not an error
        t0 = time.perf_counter()
        copy = _world_copy(audio, src_f0, transpose)
        baselines[1].rows.append(row(copy, (time.perf_counter() - t0) / (len(audio) / 16000)))
        for engine in engines:
            index = find_index(ws.voice_model_path("lj"), ws) if engine.name == "rvc" else None
            out = convert(audio, 16000, engine.voice, InferConfig(f0_method="fcpe", transpose_semitones=transpose),
                          index_path=index, services=services)
            engine.rows.append(row(resample(out.audio, out.sample_rate, 16000), out.rtf))
    return baselines + engines


def _report(engines: list[Engine], prep_s: float) -> None:
    print(f"Target: LJ Speech (5.6 min, 40 kHz dataset); data preparation (dataset + fcpe/whisper-mid features) "
          f"{prep_s:.0f} s.\n")
    print("| engine | training | sim(input, target) | sim(output, target) | sim(output, source) | WER | DNSMOS OVRL | "
          "f0 gross | f0 fine (cents) | RTF |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for e in engines:
        mean = lambda k: float(np.nanmean([getattr(r, k) for r in e.rows]))  # noqa: E731
        train = f"{e.train_minutes:.1f} min" + (f" ({e.note})" if e.note else "") if e.voice is not None else "-"
        print(f"| {e.name} | {train} | {mean('sim_in'):.3f} | {mean('sim_out'):.3f} | {mean('sim_src'):.3f} | "
              f"{mean('wer'):.2f} | {mean('mos'):.2f} | {mean('gpe'):.0%} | {mean('fpe'):.0f} | {mean('rtf'):.3f} |")
    print("\nPer source (sim output->target / WER / DNSMOS):\n")
    print("| source | " + " | ".join(e.name for e in engines) + " |")
    print("|---|" + "---|" * len(engines))
    for i, r in enumerate(engines[0].rows):
        cells = [f"{e.rows[i].sim_out:.2f} / {e.rows[i].wer:.2f} / {e.rows[i].mos:.2f}" for e in engines]
        print(f"| {r.source} | " + " | ".join(cells) + " |")


def main() -> int:
    args = _args()
    if not (DATA / "ljspeech").exists():
        print(f"skip: {DATA / 'ljspeech'} not found")
        return 0
    import torch

    from voiceapp.audio import find_audio_files, load_audio
    from voiceapp.services import Services
    from voiceapp.workspace import Workspace

    torch.set_num_threads(args.threads)
    if args.out.exists() and not args.keep:
        shutil.rmtree(args.out)
    ws = Workspace(args.out).ensure()
    services = Services(workspace=ws, device="cpu")
    lj, _ = find_audio_files([DATA / "ljspeech"])
    held_out, train_files = lj[:3], lj[3:]
    prep_s = _prepare(ws, services, train_files)
    engines = [Engine(name.strip()) for name in args.engines.split(",") if name.strip()]
    for engine in engines:
        _make(engine, ws, services, args)
    reference = np.concatenate([load_audio(p, 16000)[0] for p in held_out])
    _report(_evaluate(engines, ws, services, _sources(args.files_per_source), reference), prep_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
