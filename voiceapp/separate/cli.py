"""`voiceapp separate INPUT... --out DIR [--model NAME]` and `voiceapp separator-train NAME --stems DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from voiceapp.progress import TqdmProgress
from voiceapp.separate.separator import DEFAULT_SEPARATOR, OUTPUT_FORMATS, SeparateConfig
from voiceapp.separate.train import SeparatorTrainConfig


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = SeparateConfig()
    p = subparsers.add_parser("separate", parents=[common], help="split songs into vocals and instrumental",
                              description="Split songs (files or folders, any format) into DIR/<song>/vocals.wav "
                                          "and DIR/<song>/instrumental.wav at the song's own rate and channels.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="songs or folders (recursive)")
    p.add_argument("--out", type=Path, required=True, help="output folder; one sub-folder per song")
    p.add_argument("--model", default=DEFAULT_SEPARATOR,
                   help=f"separator: dsp, dsp-centre (no weights), a trained U-Net under models/separators/, or a "
                        f"UVR model by name (kim-vocal-2, uvr-mdxnet-kara-2, bs-roformer-1297, ...: "
                        f"`python -m voiceapp assets list`; download with `assets download NAME`) "
                        f"(default: {DEFAULT_SEPARATOR})")
    p.add_argument("--format", default=s.output_format, choices=OUTPUT_FORMATS, help="output file format")
    p.add_argument("--chunk-s", type=float, default=s.chunk_s, help="seconds processed per step (memory bound)")
    p.add_argument("--vocals-only", action="store_true", help="do not write the instrumental")
    p.set_defaults(func=run_separate)

    t = SeparatorTrainConfig()
    q = subparsers.add_parser("separator-train", parents=[common], help="train a U-Net vocal separator on stems",
                              description="Train a U-Net separator on a folder of songs with vocals + accompaniment "
                                          "(or mixture, or MUSDB18-HQ stems). Resumes when run again with the "
                                          "same NAME. Result: models/separators/NAME/.")
    q.add_argument("name", help="separator name (a folder under models/separators/)")
    q.add_argument("--stems", type=Path, required=True, help="folder with one sub-folder per song")
    q.add_argument("--epochs", type=int, default=t.epochs)
    q.add_argument("--steps-per-epoch", type=int, default=t.steps_per_epoch)
    q.add_argument("--batch-size", type=int, default=t.batch_size)
    q.add_argument("--learning-rate", type=float, default=t.learning_rate)
    q.add_argument("--size", default=t.size, choices=("full", "small", "tiny"), help="U-Net size")
    q.add_argument("--val-songs", default="", help="comma-separated song folder names held out for validation")
    q.add_argument("--restart", action="store_true", help="ignore a previous run's state and start over")
    q.add_argument("--seed", type=int, default=t.seed)
    q.set_defaults(func=run_train)


def run_separate(args: argparse.Namespace, services) -> int:
    from voiceapp.separate.separator import load_separator, separate_files

    cfg = SeparateConfig(chunk_s=args.chunk_s, output_format=args.format, write_instrumental=not args.vocals_only)
    separator = load_separator(args.model, services.workspace, services.device, services.cache)
    with TqdmProgress("separate") as bar:
        batch = separate_files(args.inputs, args.out, separator, cfg, bar, services.cancel)
    for result in batch.results:
        speed = result.elapsed_s / max(result.duration_s / 60.0, 1e-9)
        print(f"{result.source.name}: {result.vocals.parent}  ({result.duration_s:.1f} s, {speed:.1f} s per minute)")
    for path, reason in batch.failed:
        print(f"skipped {path}: {reason}")
    return 0 if batch.results and not batch.failed else 2


def run_train(args: argparse.Namespace, services) -> int:
    from voiceapp.separate.train import train_separator

    val = tuple(v.strip() for v in args.val_songs.split(",") if v.strip())
    cfg = SeparatorTrainConfig(size=args.size, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                               batch_size=args.batch_size, learning_rate=args.learning_rate, val_songs=val,
                               resume=not args.restart, seed=args.seed)
    with TqdmProgress("separator-train") as bar:
        result = train_separator(args.name, args.stems, services.workspace, cfg, services.device, bar,
                                 services.cancel)
    print(f"separator {args.name}: {result.epochs_done} epoch(s), best validation loss {result.best_val_loss:.3e}; "
          f"saved in {result.folder}")
    return 0
