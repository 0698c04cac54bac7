"""The target frames the `instant` and `quick` engines learn from: per clip, Whisper content (block 3) at
50 frames/s and coded WORLD frames (spectral envelope, aperiodicity) at 100 frames/s.

Reads the experiment's features (manifest, clip list, f0 in Hz from the chosen f0 method) and the dataset clips
(at the model rate for WORLD, 16 kHz for the content encoder). Writes `logs/<exp>/features/voice/<clip>.npz`
(content float16, sp, ap float32, f0 float32); a clip already written is kept, so a rerun continues.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.manifests import FeatureManifest
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress
from voiceapp.voices.world import CONTENT_ENCODER as ENGINE_ENCODER
from voiceapp.workspace import ExperimentDir, atomic_path

log = logging.getLogger(__name__)

MIN_MINUTES = 0.25        # less target speech than this cannot make a voice


def engine_encoder_name(manifest: FeatureManifest) -> str:
    """The content encoder of the instant/quick engines: whisper-mid, or the features' fake encoder (tests)."""
    name = str(manifest.encoder or "")
    return name if name == ENGINE_ENCODER or name.startswith("fake") else ENGINE_ENCODER


@dataclass(frozen=True)
class TargetFrames:
    """All usable frames of a target voice, clip by clip aligned: content (n, dim) at 50/s; sp, ap, f0 at 100/s
    with 2 frames per content frame (frame i of content owns acoustic frames 2i and 2i + 1)."""

    encoder: str               # the content encoder's registry name

    content: np.ndarray        # (n, dim) float32
    sp: np.ndarray             # (n, 2, sp_dims) float32
    ap: np.ndarray             # (n, 2, bands) float32
    f0: np.ndarray             # (n, 2) float32, Hz, 0 = unvoiced
    clip_ids: np.ndarray       # (n,) int32, which clip each frame comes from
    clips: tuple[str, ...]
    sample_rate: int

    @property
    def minutes(self) -> float:
        return len(self.content) / 50.0 / 60.0

    @property
    def median_f0_hz(self) -> float:
        voiced = self.f0[self.f0 > 0]
        return float(np.median(voiced)) if voiced.size else 0.0


def voice_features_dir(exp: ExperimentDir) -> Path:
    return exp.features_dir / "voice"


def _clip_paths(manifest: FeatureManifest, stem: str) -> tuple[Path, Path]:
    clips = Path(manifest.clips_dir)
    dataset = Path(manifest.dataset_dir) if manifest.dataset_dir is not None else clips.parent
    return clips / f"{stem}.wav", dataset / "clips_16k" / f"{stem}.wav"


def _analyze_clip(exp: ExperimentDir, manifest: FeatureManifest, stem: str, encoder: Any, out: Path) -> None:
    from voiceapp.audio import load_audio, resample
    from voiceapp.audio.world import analyze
    from voiceapp.train.data import load_feature

    wav, wav16 = _clip_paths(manifest, stem)
    audio, rate = load_audio(wav)
    f0 = load_feature(exp.f0_dir / f"{stem}.npy").astype(np.float32)
    frames = analyze(audio, rate, f0)
    extracted = exp.content_dir / f"{stem}.npy"
    if manifest.encoder == encoder.name and extracted.is_file():   # features made with whisper-mid
        content = load_feature(extracted).astype(np.float32)
    else:
        content = encoder.encode(load_audio(wav16, 16000)[0] if wav16.is_file() else resample(audio, rate, 16000))
    n = min(len(content), len(frames) // 2, len(f0) // 2)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, content=content[:n].astype(np.float16), sp=frames.sp[:2 * n], ap=frames.ap[:2 * n],
                     f0=f0[:2 * n], sample_rate=np.int64(rate))


def analyze_target(exp: ExperimentDir, workspace: Any, progress: Progress = no_progress,
                   cancel: CancelToken = NEVER, workers: int = 2) -> tuple[list[Path], str]:
    """Write the voice frames of every clip of `exp`'s features (skipping those already written); returns their
    files and the content encoder's name."""
    from voiceapp.features.encoders import load_encoder
    from voiceapp.train.data import DamagedFeatureError, load_manifest, unfinished_features

    manifest = load_manifest(exp)
    unfinished_features(exp.name, manifest)
    name = engine_encoder_name(manifest)
    marker = voice_features_dir(exp) / "encoder.txt"
    if marker.is_file() and marker.read_text().strip() != name:   # frames of another encoder: start over
        for old in voice_features_dir(exp).glob("*.npz"):
            old.unlink()
    stems = sorted(manifest.clips)
    if not stems:
        raise InputError(f"The features of {exp.name} list no clips. Extract features from a dataset first.")
    folder = voice_features_dir(exp)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(name)
    todo = [s for s in stems if not (folder / f"{s}.npz").is_file() and (exp.f0_dir / f"{s}.npy").is_file()]
    done = len(stems) - len(todo)
    encoder = load_encoder(name, workspace=workspace) if todo else None

    damaged: list[str] = []

    def one(stem: str) -> None:
        cancel.raise_if_set()
        try:
            _analyze_clip(exp, manifest, stem, encoder, folder / f"{stem}.npz")
        except DamagedFeatureError as err:  # skip the clip, name the file
            damaged.append(str(err))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, _ in enumerate(pool.map(one, todo)):
            progress((done + i + 1) / len(stems), f"voice frames: clip {done + i + 1}/{len(stems)}")
    if damaged:
        log.warning("%d clip(s) skipped: %s", len(damaged), "; ".join(damaged[:3]) + (" ..." if len(damaged) > 3
                                                                                       else ""))
    return [folder / f"{s}.npz" for s in stems if (folder / f"{s}.npz").is_file()], name


def load_target(paths: list[Path], encoder: str, experiment: str = "") -> TargetFrames:
    """The frames of `paths` (from `analyze_target`) joined; InputError when there is too little speech."""
    parts: dict[str, list] = {"content": [], "sp": [], "ap": [], "f0": [], "ids": []}
    rates, stems = set(), []
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                n = len(data["content"])
                if n == 0:
                    continue
                parts["content"].append(data["content"].astype(np.float32))
                parts["sp"].append(data["sp"][:2 * n].reshape(n, 2, -1))
                parts["ap"].append(data["ap"][:2 * n].reshape(n, 2, -1))
                parts["f0"].append(data["f0"][:2 * n].reshape(n, 2))
                rates.add(int(data["sample_rate"]))
        except (OSError, ValueError, KeyError, EOFError) as err:
            log.warning("skipping unreadable voice frames %s: %s", path, err)
            continue
        parts["ids"].append(np.full(n, len(stems), dtype=np.int32))
        stems.append(path.stem)
    if len(rates) > 1:
        raise InputError(f"The clips of {experiment or 'this experiment'} have several sample rates {sorted(rates)}; "
                         f"prepare the dataset again at one rate.")
    if not stems:
        raise MissingArtifactError(f"No voice frames for {experiment or 'this experiment'}: its clips gave no "
                                   f"usable audio. Check the dataset (Dataset tab report).")
    target = TargetFrames(encoder, np.concatenate(parts["content"]), np.concatenate(parts["sp"]).astype(np.float32),
                          np.concatenate(parts["ap"]).astype(np.float32), np.concatenate(parts["f0"]),
                          np.concatenate(parts["ids"]), tuple(stems), rates.pop())
    if target.minutes < MIN_MINUTES or target.median_f0_hz <= 0:
        raise InputError(f"{experiment or 'The dataset'} has {target.minutes * 60:.0f} s of usable speech"
                         f"{'' if target.median_f0_hz > 0 else ' and no voiced frames'}; a voice needs at least "
                         f"{MIN_MINUTES * 60:.0f} s (a few minutes is better). Add recordings in the Dataset tab.")
    return target


# Speaker augmentation for the quick engine: the target's clips resynthesised (WORLD, 16 kHz) with the spectral
# envelope warped along frequency (formants up or down) and the pitch shifted, then encoded again. Content frames
# of these "other speakers" saying the target's words teach the network to ignore who is speaking in its input.
AUGMENTATIONS: tuple[tuple[float, float], ...] = ((1.15, 3.0), (0.87, -3.0))   # (formant factor, semitones)


def _warp_envelope(sp: np.ndarray, factor: float) -> np.ndarray:
    """Spectral envelope with its frequency axis scaled by `factor` (formants move up for factor > 1)."""
    bins = np.arange(sp.shape[1], dtype=np.float64)
    source = np.clip(bins / factor, 0, sp.shape[1] - 1)
    return np.stack([np.interp(source, bins, frame) for frame in sp])


def _augment_clip(audio16: np.ndarray, f0: np.ndarray, encoder: Any, frames: int) -> np.ndarray:
    import pyworld as pw

    from voiceapp.infer.steps import fit_frames

    x = np.ascontiguousarray(audio16, dtype=np.float64)
    n = min(len(f0), len(x) // 160 + 1)
    f0 = np.asarray(f0[:n], dtype=np.float64).copy()
    f0[~np.isfinite(f0) | (f0 < 0)] = 0.0
    times = np.arange(n) * 0.01
    sp, ap = pw.cheaptrick(x, f0, times, 16000), pw.d4c(x, f0, times, 16000)
    out = []
    for factor, semitones in AUGMENTATIONS:
        y = pw.synthesize(f0 * 2 ** (semitones / 12), np.ascontiguousarray(_warp_envelope(sp, factor)), ap, 16000, 10)
        out.append(fit_frames(np.asarray(encoder.encode(y.astype(np.float32)), np.float32), frames))
    return np.stack(out)                                                            # (variants, frames, dim)


def augmented_content(exp: ExperimentDir, workspace: Any, target: TargetFrames, progress: Progress = no_progress,
                      cancel: CancelToken = NEVER, workers: int = 2) -> np.ndarray:
    """(variants, n, dim) content of the speaker-augmented target, row-aligned with `target.content`; cached per
    clip as logs/<exp>/features/voice/<clip>.aug.npz."""
    from voiceapp.audio import load_audio, resample
    from voiceapp.features.encoders import load_encoder
    from voiceapp.train.data import load_manifest

    manifest = load_manifest(exp)
    folder = voice_features_dir(exp)
    encoder = load_encoder(target.encoder, workspace=workspace)
    counts = np.bincount(target.clip_ids, minlength=len(target.clips))

    def one(i: int) -> np.ndarray:
        cancel.raise_if_set()
        stem, frames = target.clips[i], int(counts[i])
        cached = folder / f"{stem}.aug.npz"
        if cached.is_file():
            try:
                with np.load(cached, allow_pickle=False) as data:
                    if data["content"].shape[:2] == (len(AUGMENTATIONS), frames):
                        return data["content"].astype(np.float32)
            except (OSError, ValueError, KeyError, EOFError):
                pass
        wav, wav16 = _clip_paths(manifest, stem)
        audio16 = load_audio(wav16, 16000)[0] if wav16.is_file() else resample(*load_audio(wav), 16000)
        content = _augment_clip(audio16, np.load(exp.f0_dir / f"{stem}.npy"), encoder, frames)
        content = content.astype(np.float16)       # as cached: a resumed run sees the same values
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, content=content)
        return content.astype(np.float32)

    parts = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, content in enumerate(pool.map(one, range(len(target.clips)))):
            parts.append(content)
            progress((i + 1) / len(target.clips), f"speaker augmentation: clip {i + 1}/{len(target.clips)}")
    return np.concatenate(parts, axis=1)
