"""`voiceapp f0 AUDIO... --method M [--out F.csv|DIR]` and `voiceapp features EXP --dataset NAME ...`"""

from __future__ import annotations

import argparse
from pathlib import Path

from voiceapp.errors import InputError
from voiceapp.features.encoders import VERSIONS
from voiceapp.features.extract import FeatureConfig
from voiceapp.features.f0 import F0_METHODS
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cfg = FeatureConfig()
    p = subparsers.add_parser("f0", parents=[common], help="write the pitch curve of audio files as CSV",
                              description="Pitch (f0) of audio files: one 'time_s,f0_hz' row per 10 ms "
                                          "(0 = unvoiced). One input -> --out F.csv (default: next to the "
                                          "input); several -> --out DIR/<stem>.csv.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="AUDIO", help="audio files (any format)")
    p.add_argument("--method", default=None, choices=sorted(F0_METHODS),
                   help="f0 method (default: rmvpe when its weights are present, else fcpe)")
    p.add_argument("--out", type=Path, default=None, help="CSV file (one input) or folder (several inputs)")
    p.set_defaults(func=run_f0)

    p = subparsers.add_parser("features", parents=[common], help="extract training features from a dataset",
                              description="Content features, f0 (Hz) and coarse pitch for every clip of a "
                                          "dataset into logs/EXP/features/. A rerun skips finished clips.")
    p.add_argument("experiment", metavar="EXP", help="experiment name (a folder under logs/)")
    p.add_argument("--dataset", required=True, help="dataset name (a folder under datasets/)")
    p.add_argument("--f0-method", default=cfg.f0_method, choices=sorted(F0_METHODS),
                   help="f0 method (default: rmvpe when present, else fcpe)")
    p.add_argument("--encoder", default=cfg.encoder,
                   help="contentvec, whisper-mid, whisper-tiny, fake[-DIM], or a HuBERT folder "
                        "(default: contentvec when present, else whisper-mid)")
    p.add_argument("--version", default=cfg.version, choices=VERSIONS, help="model version (v1: 256-d, v2: 768-d)")
    p.add_argument("--workers", type=int, default=cfg.workers,
                   help=f"f0 worker processes on CPU (default {cfg.workers}; 0 = none)")
    p.set_defaults(func=run_features)


def _csv_targets(inputs: list[Path], out: Path | None) -> list[Path]:
    if len(inputs) == 1 and (out is None or out.suffix.lower() == ".csv"):
        return [out or inputs[0].with_suffix(".f0.csv")]
    if out is None:
        return [p.with_suffix(".f0.csv") for p in inputs]
    if out.suffix.lower() == ".csv":
        raise InputError(f"{len(inputs)} inputs need a folder for --out, not the file {out.name}.")
    stems = [p.stem for p in inputs]
    if len(set(stems)) != len(stems):
        raise InputError("Several inputs share a file name; their CSV files would overwrite each other. "
                         "Run them in separate calls.")
    return [out / f"{stem}.csv" for stem in stems]


def run_f0(args: argparse.Namespace, services) -> int:
    import numpy as np

    from voiceapp.audio import load_audio
    from voiceapp.features.f0 import default_f0_method, f0_csv, load_f0_method
    from voiceapp.workspace import write_text_atomic

    missing = [p for p in args.inputs if not p.is_file()]
    if missing:
        raise InputError(f"Not found: {', '.join(str(p) for p in missing[:3])}. Check the path(s).")
    targets = _csv_targets(list(args.inputs), args.out)
    name = args.method or default_f0_method(services.workspace)
    method = load_f0_method(name, services.device, services.workspace)
    with TqdmProgress(f"f0 ({name})") as bar:
        for n, (path, target) in enumerate(zip(args.inputs, targets)):
            services.cancel.raise_if_set()
            audio, _ = load_audio(path, 16000, mono=True)
            f0 = method(audio)
            write_text_atomic(target, f0_csv(f0))
            bar((n + 1) / len(targets), path.name)
            voiced = f0[f0 > 0]
            summary = f"median {float(np.median(voiced)):.1f} Hz" if len(voiced) else "unvoiced"
            print(f"{target}  ({len(f0)} frames, {100 * len(voiced) / len(f0):.0f}% voiced, {summary})")
    return 0


def run_features(args: argparse.Namespace, services) -> int:
    from voiceapp.features.extract import extract_features

    ds = services.workspace.dataset(args.dataset)
    exp = services.workspace.experiment(args.experiment)
    cfg = FeatureConfig(f0_method=args.f0_method, encoder=args.encoder, version=args.version, workers=args.workers)
    with TqdmProgress("features") as bar:
        result = extract_features(ds, exp, cfg, bar, services.cancel, services=services)
    print(f"{len(result.clips)} clips -> {exp.features_dir} (encoder {result.encoder}, {result.dim}-d, "
          f"{result.version}, f0 {result.f0_method}); {result.extracted} new, {result.reused} reused, "
          f"{len(result.failed)} failed, {result.seconds:.1f} s"
          f"{f' (f0 in {result.f0_workers} worker processes)' if result.f0_workers else ''}.")
    for reason in list(result.failed.values())[:10]:
        print(f"  skipped: {reason}")
    return 0
