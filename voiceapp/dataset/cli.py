"""`voiceapp dataset NAME INPUT...`"""

from __future__ import annotations

import argparse
from pathlib import Path

from voiceapp.dataset.prepare import SAMPLE_RATES, DatasetConfig, prepare_dataset
from voiceapp.dataset.report import report_markdown
from voiceapp.dataset.slicer import ChunkConfig, SlicerConfig
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d, s, c = DatasetConfig(), SlicerConfig(), ChunkConfig()
    p = subparsers.add_parser("dataset", parents=[common], help="slice recordings into a training set",
                              description="Slice recordings (files or folders, any format) into training clips "
                                          "under datasets/NAME/, with a report.")
    p.add_argument("name", help="dataset name (a folder under datasets/)")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio files or folders (recursive)")
    p.add_argument("--sample-rate", type=int, default=d.sample_rate, choices=SAMPLE_RATES)
    p.add_argument("--threshold-db", type=float, default=s.threshold_db, help="silence threshold (dB)")
    p.add_argument("--min-length-ms", type=int, default=s.min_length_ms)
    p.add_argument("--min-interval-ms", type=int, default=s.min_interval_ms)
    p.add_argument("--hop-ms", type=int, default=s.hop_ms)
    p.add_argument("--max-silence-kept-ms", type=int, default=s.max_sil_kept_ms)
    p.add_argument("--chunk-s", type=float, default=c.chunk_s, help="clip length after slicing")
    p.add_argument("--overlap-s", type=float, default=c.overlap_s)
    p.add_argument("--no-chunk", action="store_true", help="keep the slicer's pieces whole")
    p.add_argument("--no-highpass", action="store_true", help="skip the 48 Hz high-pass")
    p.add_argument("--copy-raw", action="store_true", help="also copy the inputs into datasets/NAME/raw/")
    p.add_argument("--isolate-vocals", nargs="?", const="dsp", default=None, metavar="MODEL",
                   help="remove music first with this vocal separator (default when given: dsp; see `separate`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, services) -> int:
    cfg = DatasetConfig(
        sample_rate=args.sample_rate, highpass=not args.no_highpass, copy_raw=args.copy_raw,
        isolate_vocals=args.isolate_vocals,
        slicer=SlicerConfig(threshold_db=args.threshold_db, min_length_ms=args.min_length_ms,
                            min_interval_ms=args.min_interval_ms, hop_ms=args.hop_ms,
                            max_sil_kept_ms=args.max_silence_kept_ms),
        chunk=ChunkConfig(chunk_s=0.0 if args.no_chunk else args.chunk_s, overlap_s=args.overlap_s))
    with TqdmProgress("dataset") as bar:
        result = prepare_dataset(args.inputs, services.workspace.dataset(args.name), cfg, bar,
                                 services.cancel, services=services)
    print(report_markdown(result.report))
    print(f"\n{len(result.processed)} file(s) processed, {len(result.skipped_known)} already in the dataset, "
          f"{len(result.rejected)} rejected. Clips: {result.dataset.clips_dir}")
    if result.own_files:
        print(f"{len(result.own_files)} input file(s) are this dataset's own clips and were left out.")
    if not result.clips:
        return 2
    return 0
