"""`voiceapp demo [--out DIR]`"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voiceapp.demo.run import DemoConfig, run_demo
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d = DemoConfig()
    p = subparsers.add_parser("demo", parents=[common], help="run the whole pipeline offline, with a report",
                              description="Make training material with the bundled eSpeak NG voices, prepare a "
                                          "dataset, extract features (fcpe + whisper-tiny), train a small model on "
                                          "the CPU, build the index, convert another voice, speak a sentence in the "
                                          "new voice, and write a report with pictures. About 10-15 min on 2 cores.")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/demo-<time>)")
    p.add_argument("--train-minutes", type=float, default=d.train_minutes, help="time budget for training")
    p.add_argument("--sentences", type=int, default=d.training_sentences, help="training sentences to speak")
    p.add_argument("--target-voice", default=d.target_voice)
    p.add_argument("--source-voice", default=d.source_voice)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, services) -> int:
    out = args.out or services.workspace.outputs_dir / time.strftime("demo-%Y%m%d-%H%M%S")
    cfg = DemoConfig(train_minutes=args.train_minutes, training_sentences=args.sentences,
                     target_voice=args.target_voice, source_voice=args.source_voice)
    with TqdmProgress("demo") as bar:
        result = run_demo(out, services, cfg, bar, services.cancel)
    print(result.report_path.read_text(encoding="utf-8"))
    print(f"\nReport: {result.report_path}\nAudio and pictures: {result.out_dir}")
    return 0
