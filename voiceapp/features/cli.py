"""`voiceapp f0 AUDIO... --method M [--out F.csv|DIR]` and `voiceapp features EXP --dataset NAME ...`"""

from __future__ import annotations

import argparse
import sys
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
    p.add_argument("inputs", nargs="+", type=Path, metavar="AUDIO", help="audio files (any format) or folders")
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


def _f0_inputs(inputs: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given and the audio files inside folders (recursive); (missing path, reason) for the rest."""
    from voiceapp.audio import find_audio_files

    files, missing = find_audio_files(inputs)
    empty = [(p, "a folder without audio files") for p in inputs if p.is_dir()
             and not any(p in f.parents for f in files)]
    if not files:
        found = [f"{p}: {why}" for p, why in missing + empty]
        raise InputError(f"No audio to analyse ({'; '.join(found[:3])}). Check the path(s).")
    return files, [(p, f"{why}. Check the path.") for p, why in missing + empty]


def run_f0(args: argparse.Namespace, services) -> int:
    """Exit 0 when every input gave a curve; 2 when some could not be read (those are listed, the rest done)."""
    import numpy as np

    from voiceapp.audio import load_audio
    from voiceapp.errors import Cancelled, StorageError, VoiceAppError
    from voiceapp.features.f0 import default_f0_method, f0_csv, load_f0_method
    from voiceapp.workspace import write_text_atomic

    files, failed = _f0_inputs(list(args.inputs))
    targets = _csv_targets(files, args.out)
    name = args.method or default_f0_method(services.workspace)
    method = load_f0_method(name, services.device, services.workspace)
    with TqdmProgress(f"f0 ({name})") as bar:
        for n, (path, target) in enumerate(zip(files, targets)):
            services.cancel.raise_if_set()
            try:
                audio, _ = load_audio(path, 16000, mono=True)
                f0 = method(audio)
                write_text_atomic(target, f0_csv(f0))
            except (Cancelled, StorageError):
                raise
            except VoiceAppError as err:
                failed.append((path, str(err)))
                continue
            finally:
                bar((n + 1) / len(targets), path.name)
            voiced = f0[f0 > 0]
            summary = f"median {float(np.median(voiced)):.1f} Hz" if len(voiced) else "unvoiced"
            print(f"{target}  ({len(f0)} frames, {100 * len(voiced) / len(f0):.0f}% voiced, {summary})")
    for path, why in failed:
        print(f"FAIL {path}: {why.removeprefix(f'{path.name}: ')}", file=sys.stderr)
    if failed:
        written = len(files) - sum(p in files for p, _ in failed)
        print(f"{written} curve(s) written, {len(failed)} input(s) failed.", file=sys.stderr)
    return 2 if failed else 0


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
