"""f0 methods on real speech with a known pitch: accuracy (GPE, cents, VDE) and speed (compute s per audio s).

Ground truth: each speech file is analysed with WORLD (Harvest + CheapTrick + D4C) and resynthesised with a
known f0 contour (the analysed one, voiced only where WORLD's aperiodicity below 2 kHz is low), as is, shifted
+7 and -7 semitones, and with white noise at 20 dB SNR. Then, per method and condition:

    GPE   % of frames voiced in both truth and estimate whose f0 is off by more than 20 %
    cents median |error| in cents on the voiced frames that are not gross errors
    VDE   % of all frames whose voiced/unvoiced decision differs from the truth
    s/s   seconds of compute per second of audio (single thread)

    .venv/bin/python bench/f0.py [--files 6] [--max-seconds 5] [--methods fcpe,crepe-tiny,...] [--crepe-files 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.features.f0 import F0_MAX_HZ, F0_METHODS, F0_MIN_HZ, load_f0_method  # noqa: E402
from voiceapp.workspace import Workspace  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "speech"
SR = 16000
SOURCES = ["ljspeech/LJ001-0002.flac", "ljspeech/LJ001-0008.flac", "vctk/p227/p227_003.flac",
           "vctk/p228", "librispeech/3436-172162-0000.flac", "cmu_arctic/awb_a0007.flac",
           "cmu_arctic/axb_a0004.flac", "librispeech/198-209-0000.flac", "vctk/p227/p227_005.flac",
           "ljspeech/LJ001-0013.flac"]
CONDITIONS = ("clean", "+7 st", "-7 st", "noise 20 dB")


def pick_files(n: int) -> list[Path]:
    files = []
    for entry in SOURCES:
        path = DATA / entry
        if path.is_dir():
            path = next(iter(sorted(path.glob("*.flac"))), None)
        if path is not None and path.exists():
            files.append(path)
    return files[:n]


def make_cases(path: Path, max_seconds: float, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """condition -> (audio 16 kHz, true f0 per 10 ms frame)."""
    import pyworld

    from voiceapp.audio import load_audio

    audio, _ = load_audio(path, SR, mono=True)
    x = audio[: int(max_seconds * SR)].astype(np.float64)
    f0, t = pyworld.harvest(x, SR, f0_floor=F0_MIN_HZ, f0_ceil=800, frame_period=10)
    sp = pyworld.cheaptrick(x, f0, t, SR)
    ap = pyworld.d4c(x, f0, t, SR)
    voiced = (f0 > 0) & (ap[:, : ap.shape[1] // 4].mean(axis=1) < 0.5)
    cases = {}
    for name, semitones in (("clean", 0), ("+7 st", 7), ("-7 st", -7)):
        truth = np.where(voiced, np.clip(f0 * 2 ** (semitones / 12), F0_MIN_HZ, F0_MAX_HZ), 0.0)
        y = pyworld.synthesize(truth, sp, ap, SR, frame_period=10).astype(np.float32)
        cases[name] = (y / max(1e-6, np.abs(y).max()) * 0.8, truth)
    clean, truth = cases["clean"]
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (20 / 10))
    cases["noise 20 dB"] = (clean + noise, truth)
    return cases


def score(est: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    n = min(len(est), len(truth))
    est, truth = est[:n], truth[:n]
    both = (est > 0) & (truth > 0)
    ratio = est[both] / truth[both]
    gross = np.abs(ratio - 1) > 0.2
    cents = 1200 * np.abs(np.log2(ratio[~gross])) if (~gross).any() else np.array([np.nan])
    return {"frames": int(both.sum()), "gross": int(gross.sum()), "cents": cents.tolist(),
            "vd_errors": int(np.sum((est > 0) != (truth > 0))), "n": int(n)}


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)
    files = pick_files(args.files)
    if not files:
        print(f"skip: no speech in {DATA}")
        return 0
    rng = np.random.default_rng(0)
    cases = [make_cases(p, args.max_seconds, rng) for p in files]
    total_s = sum(len(c["clean"][0]) for c in cases) / SR
    print(f"{len(files)} files, {total_s:.1f} s of speech per condition ({', '.join(p.stem for p in files)})\n")
    workspace = Workspace(Path(args.root)) if args.root else None
    rows = []
    for name in args.methods.split(","):
        try:
            method = load_f0_method(name, "cpu", workspace)
        except Exception as err:  # noqa: BLE001 - report and go on with the other methods
            rows.append((name, None, f"not available ({type(err).__name__}: weights absent?)"))
            continue
        method(np.zeros(SR, np.float32))  # warm-up
        use = cases[: args.crepe_files] if name == "crepe" else cases
        stats = {c: {"frames": 0, "gross": 0, "cents": [], "vd_errors": 0, "n": 0} for c in CONDITIONS}
        compute_s = audio_s = 0.0
        for case in use:
            for condition in CONDITIONS:
                audio, truth = case[condition]
                start = time.perf_counter()
                est = method(audio)
                compute_s += time.perf_counter() - start
                audio_s += len(audio) / SR
                for key, value in score(est, truth).items():
                    stats[condition][key] += value
        rows.append((name, stats, compute_s / audio_s))
        print(f"  {name}: done ({audio_s:.0f} s of audio)", flush=True)
    print_table(rows)
    return 0


def print_table(rows: list) -> None:
    head = ("| method | " + " | ".join(f"GPE % {c}" for c in CONDITIONS) + " | cents clean | cents noise | "
            "VDE % clean | VDE % noise | s/s |")
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, stats, extra in rows:
        if stats is None:
            print(f"| {name} | {extra} |")
            continue
        gpe = [100 * s["gross"] / max(1, s["frames"]) for s in (stats[c] for c in CONDITIONS)]
        cents = [np.median(stats[c]["cents"]) if stats[c]["cents"] else np.nan for c in ("clean", "noise 20 dB")]
        vde = [100 * stats[c]["vd_errors"] / max(1, stats[c]["n"]) for c in ("clean", "noise 20 dB")]
        print(f"| {name} | " + " | ".join(f"{g:.2f}" for g in gpe) + f" | {cents[0]:.1f} | {cents[1]:.1f} | "
              f"{vde[0]:.1f} | {vde[1]:.1f} | {extra:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--max-seconds", type=float, default=5.0, help="seconds used from each file")
    parser.add_argument("--methods", default=",".join(["rmvpe", "fcpe", "crepe-tiny", "crepe", "harvest", "pm",
                                                       "dio"]))
    parser.add_argument("--crepe-files", type=int, default=2, help="crepe (full) is slow on CPU: fewer files")
    parser.add_argument("--root", default=str(ROOT), help="workspace with models/base/rmvpe.pt (for rmvpe)")
    args = parser.parse_args()
    unknown = set(args.methods.split(",")) - set(F0_METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {sorted(F0_METHODS)}")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
