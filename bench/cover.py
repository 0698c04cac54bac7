"""Song cover benchmark: seconds per stage, real-time factor, loudness match and peak memory against song length.

    .venv/bin/python bench/cover.py [--music ../shared/data/music/musdb_the_easton_ellises_falcon_69]
                                    [--root /tmp/voiceapp-bench-cover] [--repeats 1,3] [--transpose 3] [--threads 1]

The voice is a real instant voice: 8 LJ Speech clips (shipped) -> dataset -> fcpe + whisper-mid features ->
instant (built once, kept in --root). The song is the sum of a song folder's vocals and accompaniment stems, tiled
`repeats` times; each length runs in its own process so that its max RSS is its own. Bounded memory shows as a
max RSS that does not grow with the length.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_SONG = ROOT.parent / "shared" / "data" / "music" / "musdb_the_easton_ellises_falcon_69"


def build_voice(root: Path) -> Path:
    from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
    from voiceapp.demo.material import lj_files
    from voiceapp.features.extract import FeatureConfig, extract_features
    from voiceapp.services import Services
    from voiceapp.train.instant import build_instant, engine_model_path
    from voiceapp.workspace import Workspace

    ws = Workspace(root).ensure()
    path = engine_model_path(ws, "lj")
    if path.exists():
        return path
    services = Services(workspace=ws, device="cpu")
    prepare_dataset(lj_files()[:8], ws.dataset("lj"), DatasetConfig(sample_rate=40000), services=services)
    extract_features(ws.dataset("lj"), ws.experiment("lj"), FeatureConfig(f0_method="fcpe", encoder="whisper-mid"),
                     services=services)
    return build_instant(ws.experiment("lj"), ws)


def make_song(folder: Path, repeats: int, out: Path) -> Path:
    import soundfile as sf

    from voiceapp.audio.io import load_audio

    vocals, rate = load_audio(next(folder.glob("vocals.*")), None, mono=False)
    accompaniment, _ = load_audio(next(folder.glob("accompaniment.*")), rate, mono=False)
    n = min(vocals.shape[-1], accompaniment.shape[-1])
    song = np.tile((vocals[..., :n] + accompaniment[..., :n]).astype(np.float32), repeats)
    sf.write(str(out), song.T, rate, subtype="FLOAT")
    return out


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from voiceapp.cover import CoverConfig, make_cover
    from voiceapp.infer.models import load_voice_file
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.services import Services
    from voiceapp.workspace import Workspace

    services = Services(workspace=Workspace(args.root), device="cpu")
    voice = load_voice_file(Path(args.voice))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = make_cover(args.song, voice, InferConfig(f0_method="fcpe", transpose_semitones=args.transpose),
                        CoverConfig(), out_path=Path(args.out), services=services)
    wall = time.perf_counter() - started
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # before this script reads anything whole
    print(json.dumps({"duration_s": result.duration_s, "wall_s": wall, "timings": result.timings,
                      "song_lufs": _loudness(Path(args.song)), "cover_lufs": _loudness(result.output_path),
                      "same_length": _frames(Path(args.song)) == _frames(result.output_path),
                      "max_rss_mib": max_rss, "rss_before_mib": baseline}))


def _frames(path: Path) -> tuple[int, int]:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames, info.channels


def _loudness(path: Path) -> float:
    """BS.1770 loudness of a file, streamed (an independent pass over the written file)."""
    import soundfile as sf

    from voiceapp.audio.loudness import LoudnessMeter

    with sf.SoundFile(str(path)) as handle:
        meter = LoudnessMeter(handle.samplerate, handle.channels)
        for block in handle.blocks(blocksize=handle.samplerate * 10, dtype="float32", always_2d=True):
            meter.add(block.T)
    return meter.integrated()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--music", type=Path, default=DEFAULT_SONG, help="a song folder with vocals + accompaniment")
    parser.add_argument("--root", type=Path, default=Path("/tmp/voiceapp-bench-cover"))
    parser.add_argument("--repeats", default="1,3")
    parser.add_argument("--transpose", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--song", help=argparse.SUPPRESS)
    parser.add_argument("--voice", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    voice = build_voice(args.root)
    print(f"voice: {voice} ({time.perf_counter() - t0:.0f} s)")
    print("| song length (s) | read | separate | convert | shift | remix | total (s) | RTF | song / cover LUFS "
          "| max RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for repeats in (int(r) for r in args.repeats.split(",")):
        song = make_song(args.music, repeats, args.root / f"song_x{repeats}.wav")
        run = subprocess.run([sys.executable, __file__, "--child", "--song", str(song), "--voice", str(voice),
                              "--out", str(args.root / "covers" / f"cover_x{repeats}.wav"), "--root", str(args.root),
                              "--transpose", str(args.transpose), "--threads", str(args.threads)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr[-2000:])
            raise SystemExit(1)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        t = r["timings"]
        print(f"| {r['duration_s']:.1f} | {t['read']:.1f} | {t['separate']:.1f} | {t['convert']:.1f} | "
              f"{t.get('shift', 0):.1f} | {t['remix']:.1f} | {r['wall_s']:.1f} | {r['wall_s'] / r['duration_s']:.2f} | "
              f"{r['song_lufs']:.1f} / {r['cover_lufs']:.1f} | {r['max_rss_mib']:.0f} |")
        assert r["same_length"], "the cover is not as long as the song"


if __name__ == "__main__":
    main()
