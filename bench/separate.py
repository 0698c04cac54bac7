"""Separation benchmark: vocals and accompaniment SDR against true stems, and seconds per minute of audio.

    .venv/bin/python bench/separate.py [--music ../shared/data/music] [--root WORKSPACE] [--models dsp,dsp-centre,NAME]
                                       [--threads 1] [--json out.json]

Each song folder needs vocals.* + accompaniment.* (or other stems, summed). The input is the sum of the stems
(a released mixture may be mastered: for "Falcon 69" it differs from the stem sum by gain and limiting, which
no separator can undo; `--input mixture` uses it anyway). SDR = 10 log10(sum s^2 / sum (s - s_hat)^2) over all
samples and channels (the "global SDR" of the MDX challenges, no projection/filtering allowance), with numpy. "mixture" is the do-nothing
baseline (the mixture given as both estimates). Models trained on a song must not be judged on it: pass
`--exclude-trained` to skip songs listed in a U-Net's sidecar (`info.train_songs`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.separate import list_separators, load_separator, separate_file  # noqa: E402
from voiceapp.separate.model import read_sidecar  # noqa: E402
from voiceapp.separate.stems import load_stem_song  # noqa: E402
from voiceapp.workspace import Workspace  # noqa: E402


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    n = min(reference.shape[-1], estimate.shape[-1])
    ref, est = reference[..., :n].astype(np.float64), estimate[..., :n].astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20)))


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.T, rate


def _songs(music: Path) -> list[Path]:
    return sorted(p for p in music.iterdir() if p.is_dir() and list(p.glob("mixture.*")) and list(p.glob("vocals.*")))


def _trained_on(ws: Workspace, model: str) -> set[str]:
    try:
        return set(read_sidecar(ws.separator_dir(model)).get("info", {}).get("train_songs", []))
    except Exception:  # noqa: BLE001 - DSP separators have no sidecar
        return set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--music", type=Path, default=ROOT.parent / "shared" / "data" / "music")
    parser.add_argument("--root", type=Path, default=ROOT, help="workspace whose models/separators/ to include")
    parser.add_argument("--models", default="", help="comma-separated; default: every separator in the registry")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the team shares 2 cores)")
    parser.add_argument("--exclude-trained", action="store_true", help="skip songs a U-Net was trained on")
    parser.add_argument("--input", choices=("stems-sum", "mixture"), default="stems-sum")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    if not args.music.exists():
        print(f"skip: {args.music} not found")
        return 0
    import soundfile as sf
    import torch

    torch.set_num_threads(args.threads)
    ws = Workspace(args.root)
    models = [m for m in args.models.split(",") if m] or list_separators(ws)
    rows = []
    work = tempfile.TemporaryDirectory()
    for song_dir in _songs(args.music):
        mix_path = next(song_dir.glob("mixture.*"))
        mixture, rate = _read(mix_path)
        stems = load_stem_song(song_dir, rate)
        vocals = stems.vocals.astype(np.float32)
        acc = stems.accompaniment.astype(np.float32)
        if args.input == "stems-sum":
            mixture = vocals + acc
            mix_path = Path(work.name) / f"{song_dir.name}.wav"
            sf.write(str(mix_path), mixture.T, rate, subtype="FLOAT")
        rows.append({"song": song_dir.name, "model": "mixture", "vocals_sdr": sdr_db(vocals, mixture),
                     "accomp_sdr": sdr_db(acc, mixture), "s_per_min": 0.0, "seen": False})
        for model in models:
            seen = song_dir.name in _trained_on(ws, model)
            if seen and args.exclude_trained:
                continue
            separator = load_separator(model, ws, "cpu")
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = separate_file(mix_path, Path(tmp), separator)
                elapsed = time.perf_counter() - start
                est_vocals, _ = _read(result.vocals)
                est_acc, _ = _read(result.instrumental)
            rows.append({"song": song_dir.name, "model": model, "vocals_sdr": sdr_db(vocals, est_vocals),
                         "accomp_sdr": sdr_db(acc, est_acc), "s_per_min": elapsed / (result.duration_s / 60),
                         "seen": seen})
            print(f"  {song_dir.name} {model}: {rows[-1]['vocals_sdr']:.2f} dB", file=sys.stderr, flush=True)
    work.cleanup()
    print("| song | model | vocals SDR (dB) | accompaniment SDR (dB) | s per min of audio |")
    print("|---|---|---|---|---|")
    for r in rows:
        seen = " (trained on it)" if r["seen"] else ""
        print(f"| {r['song']} | {r['model']}{seen} | {r['vocals_sdr']:.2f} | {r['accomp_sdr']:.2f} | "
              f"{r['s_per_min']:.1f} |")
    print("\nMean over songs:")
    for model in ["mixture", *models]:
        mine = [r for r in rows if r["model"] == model and not r["seen"]]
        if mine:
            print(f"  {model}: vocals {np.mean([r['vocals_sdr'] for r in mine]):.2f} dB, accompaniment "
                  f"{np.mean([r['accomp_sdr'] for r in mine]):.2f} dB, "
                  f"{np.mean([r['s_per_min'] for r in mine]):.1f} s/min ({len(mine)} unseen song(s))")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
