"""Dataset stage benchmark: audio seconds processed per wall second and peak memory.

    .venv/bin/python bench/dataset.py [--data ../shared/data/speech/ljspeech] [--sample-rate 40000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.audio import audio_info, find_audio_files  # noqa: E402
from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset  # noqa: E402
from voiceapp.services import Services  # noqa: E402
from voiceapp.workspace import Workspace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "speech" / "ljspeech")
    parser.add_argument("--sample-rate", type=int, default=40000)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skip: {args.data} not found")
        return 0
    files, _ = find_audio_files([args.data])
    audio_s = sum(audio_info(f).duration_s for f in files)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp)).ensure()
        tracemalloc.start()
        start = time.perf_counter()
        result = prepare_dataset([args.data], ws.dataset("bench"), DatasetConfig(sample_rate=args.sample_rate),
                                 services=Services(workspace=ws))
        wall = time.perf_counter() - start
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| stage | files | audio (min) | clips | wall (s) | audio s / wall s | peak traced (MiB) | max RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| dataset {args.sample_rate} Hz | {len(files)} | {audio_s / 60:.1f} | {result.report['clip_count']} | "
          f"{wall:.1f} | {audio_s / wall:.0f} | {traced_peak / 2**20:.0f} | {rss_mib:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
