"""Conversion quality of the fully offline recipe (whisper-tiny + fcpe, light preset trained from scratch).

    .venv/bin/python bench/quality.py [--train-minutes 20] [--preset light] [--out bench/out/quality]

Trains on LJ Speech from ../shared/data (3 clips held out as the target reference), builds the index, converts
other speakers (VCTK p227/p228, CMU ARCTIC axb, LibriSpeech 198), and reports per source:
- speaker similarity (resemblyzer cosine) of the output to the target vs to the source, and of the input to the target;
- f0 tracking error of the output against the input's f0 after the transpose (fcpe on both): the share of frames
  more than 20 % off (gross errors: octave jumps, e.g. an undertrained model's subharmonics) and the median
  |cents| of the rest;
- word error rate (Whisper tiny.en) of the output against the input's own transcript, and of the input against
  the LJ-style reference where one exists (else the input's transcript is the reference: WER(input) = 0).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "speech"
SOURCES = [("vctk", "vctk/p227"), ("vctk", "vctk/p228"), ("arctic", "cmu_arctic"), ("libri", "librispeech")]
SPEAKER_SEX = {"p227": "M", "p228": "F", "awb": "M", "axb": "F", "198": "F", "3436": "M", "5703": "M"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-minutes", type=float, default=20.0)
    parser.add_argument("--preset", default="light", choices=["light", "full"])
    parser.add_argument("--files-per-source", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quality")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if not (DATA / "ljspeech").exists():
        print(f"skip: {DATA / 'ljspeech'} not found")
        return 0
    from voiceapp.audio import find_audio_files, load_audio
    from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
    from voiceapp.demo.run import train_for_minutes
    from voiceapp.devices import describe_device, pick_device
    from voiceapp.features.extract import FeatureConfig, extract_features
    from voiceapp.features.f0 import load_f0_method
    from voiceapp.index.build import build_index
    from voiceapp.infer.models import load_voice
    from voiceapp.infer.pipeline import InferConfig, convert
    from voiceapp.metrics import SpeakerEmbedder, Transcriber, f0_errors, word_error_rate
    from voiceapp.services import Services
    from voiceapp.workspace import Workspace
    from voiceapp.audio import resample

    device = pick_device(args.device)
    if args.out.exists():
        shutil.rmtree(args.out)
    ws = Workspace(args.out).ensure()
    services = Services(workspace=ws, device=device)
    lj, _ = find_audio_files([DATA / "ljspeech"])
    held_out, train_files = lj[:3], lj[3:]
    t0 = time.perf_counter()
    prepare_dataset(train_files, ws.dataset("lj"), DatasetConfig(sample_rate=40000))
    extract_features(ws.dataset("lj"), ws.experiment("lj"), FeatureConfig(f0_method="fcpe", encoder="whisper-tiny"),
                     services=services)
    prep_s = time.perf_counter() - t0
    result, epochs, train_s = train_for_minutes(ws, "lj", args.train_minutes, preset=args.preset, device=device)
    index = build_index(ws.experiment("lj"), voices_dir=ws.voice_dir("lj"))
    voice = load_voice(ws.voice_model_path("lj"), services)
    f0 = load_f0_method("fcpe", device)
    embedder, asr = SpeakerEmbedder(), Transcriber()
    reference = np.concatenate([load_audio(p, 16000)[0] for p in held_out])
    to16 = lambda a, r: resample(a, r, 16000)  # noqa: E731
    target_f0 = np.median((lambda t: t[t > 0])(f0(reference)))
    rows = []
    for label, folder in SOURCES:
        files, _ = find_audio_files([DATA / folder])
        for path in files[: args.files_per_source]:
            audio, rate = load_audio(path, 16000)
            speaker = path.stem.split("_")[0].split("-")[0]
            src_f0 = f0(audio)
            transpose = int(round(12 * math.log2(target_f0 / max(np.median(src_f0[src_f0 > 0]), 1.0))))
            transpose = max(-12, min(12, transpose))
            out = convert(audio, rate, voice, InferConfig(f0_method="fcpe", transpose_semitones=transpose),
                          index_path=index, services=services)
            out16 = to16(out.audio, out.sample_rate)
            text_in = asr.transcribe(audio, 16000)
            rows.append({
                "source": f"{label} {speaker} ({SPEAKER_SEX.get(speaker, '?')}) {path.stem}",
                "transpose": transpose, "rtf": out.rtf,
                "sim_in_target": embedder.similarity(audio, 16000, reference, 16000),
                "sim_out_target": embedder.similarity(out16, 16000, reference, 16000),
                "sim_out_source": embedder.similarity(out16, 16000, audio, 16000),
                "f0": f0_errors(src_f0 * 2 ** (transpose / 12), f0(out16)),
                "wer_out": word_error_rate(text_in, asr.transcribe(out16, 16000)) if text_in.strip() else float("nan"),
            })
    print(f"Offline recipe: whisper-tiny + fcpe, `{args.preset}` preset from scratch on LJ Speech "
          f"({len(train_files)} files), {epochs} epochs / {result.step} steps in {train_s / 60:.1f} min "
          f"(data prep {prep_s:.0f} s) on {describe_device(device)}; best validation mel L1 "
          f"{result.best_mel_l1:.3f} (epoch {result.best_epoch}).\n")
    print("| source | transpose | sim(input, target) | sim(output, target) | sim(output, source) | f0 gross error | "
          "f0 fine error (cents) | WER output vs input transcript | RTF |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['source']} | {r['transpose']:+d} | {r['sim_in_target']:.3f} | {r['sim_out_target']:.3f} | "
              f"{r['sim_out_source']:.3f} | {r['f0'][0]:.0%} | {r['f0'][1]:.0f} | {r['wer_out']:.2f} | {r['rtf']:.2f} |")
    for r in rows:
        r["gpe"], r["fpe"] = r["f0"]
    mean = lambda k: float(np.nanmean([r[k] for r in rows]))  # noqa: E731
    print(f"| **mean** | | {mean('sim_in_target'):.3f} | {mean('sim_out_target'):.3f} | {mean('sim_out_source'):.3f} | "
          f"{mean('gpe'):.0%} | {mean('fpe'):.0f} | {mean('wer_out'):.2f} | {mean('rtf'):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
