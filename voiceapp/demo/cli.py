"""`voiceapp demo [--out DIR] [--quick-minutes M] [--source FILE]`"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voiceapp.demo.run import DemoConfig, run_demo
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d = DemoConfig()
    p = subparsers.add_parser("demo", parents=[common], help="clone a real voice offline, with a report",
                              description="Clone LJ Speech's voice (3.3 min shipped with Voiceapp, public domain): "
                                          "dataset -> features (fcpe + whisper-mid) -> instant voice -> quick voice "
                                          "trained on the CPU; convert another real speaker (Allison Smith from "
                                          "Debian's asterisk-core-sounds-en-g722, else eSpeak NG, or --source) "
                                          "with both, speak a typed sentence in the quick voice, and write a "
                                          "report with similarity, WER and naturalness before/after. About "
                                          f"{d.quick_minutes + 4:.0f} min on 2 cores.")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/demo-<time>)")
    p.add_argument("--quick-minutes", type=float, default=d.quick_minutes,
                   help="CPU training budget of the quick voice (minutes)")
    p.add_argument("--source", default=None, metavar="FILE",
                   help="audio to convert instead of the built-in source speaker, e.g. your own recording "
                        f"(the first {d.source_max_s:.0f} s are used)")
    p.add_argument("--no-measure", action="store_true",
                   help="skip similarity / WER / naturalness (faster; the report has the audio only)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    return DemoConfig(quick_minutes=args.quick_minutes, source=str(args.source) if args.source else None,
                      measure=not args.no_measure)


def run(args: argparse.Namespace, services) -> int:
    out = args.out or services.workspace.outputs_dir / time.strftime("demo-%Y%m%d-%H%M%S")
    with TqdmProgress("demo") as bar:
        result = run_demo(out, services, config_from_args(args), bar, services.cancel)
    print(result.report_path.read_text(encoding="utf-8"))
    print(f"\nReport: {result.report_path}\nAudio and pictures: {result.out_dir}")
    return 0
