"""Training data from `logs/<exp>/features/`: aligned (content, pitch, spectrogram, wave) items in length buckets.

Per clip `<stem>` (rvc-facts §2.8, §4):
    content  features/content/<stem>.npy (frames_50Hz, dim) -> repeated x2 to 100 Hz, as RVC
    pitch    features/f0_coarse/<stem>.npy int64 1..255 at 100 Hz;  pitchf  features/f0/<stem>.npy Hz at 100 Hz
    wave     <clips_dir>/<stem>.wav at the model rate -> spectrogram (n_fft//2+1, samples // hop)
All four are cut to the shortest, capped at `max_frames` (900 = 9 s); the wave to frames * hop samples.
Clips with fewer frames than one training segment are dropped before training (RVC's
"expanded size of the tensor" crash) and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from voiceapp.errors import ConfigError, InputError
from voiceapp.train.mel import MelConfig, spectrogram
from voiceapp.manifests import FeatureManifest
from voiceapp.workspace import ExperimentDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipRecord:
    stem: str
    wav: Path
    content: Path
    f0: Path
    f0_coarse: Path
    frames: int          # usable 100 Hz frames after alignment and the cap


def load_manifest(exp: ExperimentDir) -> FeatureManifest:
    """The feature manifest; MissingArtifactError when extraction has not run."""
    return FeatureManifest.read(exp)


def unfinished_features(experiment: str, manifest: FeatureManifest) -> None:
    """InputError when the feature extraction of `experiment` stopped before the end (manifest `complete` False)."""
    if manifest.complete is False:
        raise InputError(f"Feature extraction for {experiment} did not finish ({len(manifest.clips)} clips "
                         f"so far). Run Extract features again (it continues where it stopped), then train.")


class DamagedFeatureError(InputError):
    """A feature file that is not a whole .npy array (truncated, overwritten, not written by Voiceapp)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: damaged feature file (not a complete .npy array); this clip is skipped. "
                         f"Run Extract features again to redo it.")


_NOT_NPY = (ValueError, OSError, EOFError, IndexError)  # numpy says "pickled data" for a non-.npy file


def _npy_rows(path: Path) -> int:
    """Row count of a feature file, read from its header; `DamagedFeatureError` naming it when it is no .npy."""
    try:
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    except _NOT_NPY as err:
        raise DamagedFeatureError(path) from err


def load_feature(path: Path) -> np.ndarray:
    """A feature array; `DamagedFeatureError` naming the file when it is not a whole .npy array."""
    try:
        return np.load(path, allow_pickle=False)
    except _NOT_NPY as err:
        raise DamagedFeatureError(path) from err


def _wav_samples(path: Path) -> tuple[int, int]:
    import soundfile as sf

    info = sf.info(str(path))
    return int(info.frames), int(info.samplerate)


def scan_clips(exp: ExperimentDir, manifest: FeatureManifest, hop_length: int, sample_rate: int,
               max_frames: int, use_f0: bool) -> tuple[list[ClipRecord], dict[str, str]]:
    """Every clip with complete features and its usable frame count; `skipped` maps stem -> reason."""
    clips_dir = Path(manifest.clips_dir)
    records, skipped = [], {}
    for stem in sorted(manifest.clips):
        rec = ClipRecord(stem, clips_dir / f"{stem}.wav", exp.content_dir / f"{stem}.npy",
                         exp.f0_dir / f"{stem}.npy", exp.f0_coarse_dir / f"{stem}.npy", 0)
        needed = [rec.wav, rec.content] + ([rec.f0, rec.f0_coarse] if use_f0 else [])
        absent = [p for p in needed if not p.exists()]
        if absent:
            skipped[stem] = f"missing {absent[0]}"
            continue
        try:
            samples, rate = _wav_samples(rec.wav)
        except RuntimeError as err:  # libsndfile: not a readable wav
            skipped[stem] = f"{rec.wav}: unreadable clip ({str(err).splitlines()[0][:120]}); skipped"
            continue
        if rate != sample_rate:
            raise ConfigError(f"Clip {rec.wav} is at {rate} Hz but the model trains at {sample_rate} Hz. Choose "
                              f"{rate} as the sample rate, or prepare the dataset again at {sample_rate} Hz.")
        try:
            frames = min(2 * _npy_rows(rec.content), samples // hop_length, max_frames)
            if use_f0:
                frames = min(frames, _npy_rows(rec.f0), _npy_rows(rec.f0_coarse))
        except DamagedFeatureError as err:
            skipped[stem] = str(err)
            continue
        records.append(ClipRecord(rec.stem, rec.wav, rec.content, rec.f0, rec.f0_coarse, frames))
    return records, skipped


def damaged_clips(skipped: dict[str, str]) -> list[str]:
    """The reasons in `scan_clips`' skipped map that are damaged files (not merely missing ones)."""
    return [why for why in skipped.values() if not why.startswith("missing ")]


def split_short(records: list[ClipRecord], min_frames: int) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """(clips long enough for one training segment, clips too short)."""
    return [r for r in records if r.frames >= min_frames], [r for r in records if r.frames < min_frames]


def choose_validation(records: list[ClipRecord], wanted: int, seed: int) -> list[str]:
    """Stems held out for validation: at most `wanted`, and at most a quarter of the clips (never all)."""
    count = min(wanted, max(0, (len(records) - 1) // 4))
    if count <= 0:
        return []
    order = np.random.default_rng(seed).permutation(len(records))
    return sorted(records[i].stem for i in order[:count])


class FeatureDataset(Dataset):
    """Items of aligned tensors; see the module docstring."""

    def __init__(self, records: list[ClipRecord], mel_cfg: MelConfig, use_f0: bool = True) -> None:
        self.records = list(records)
        self.mel_cfg = mel_cfg
        self.use_f0 = use_f0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def lengths(self) -> list[int]:
        return [r.frames for r in self.records]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from voiceapp.audio import load_audio

        rec = self.records[index]
        n, hop = rec.frames, self.mel_cfg.hop_length
        phone = np.repeat(np.load(rec.content).astype(np.float32), 2, axis=0)[:n]       # (n, dim) at 100 Hz
        wave, _ = load_audio(rec.wav, self.mel_cfg.sample_rate, mono=True)
        wave_t = torch.from_numpy(np.ascontiguousarray(wave[: n * hop], dtype=np.float32))
        spec = spectrogram(wave_t, self.mel_cfg)[:, :n]                                    # (C, n)
        item = {"phone": torch.from_numpy(np.ascontiguousarray(phone)), "spec": spec, "wave": wave_t,
                "index": torch.tensor(index)}
        if self.use_f0:
            item["pitch"] = torch.from_numpy(np.load(rec.f0_coarse).astype(np.int64)[:n])
            item["pitchf"] = torch.from_numpy(np.load(rec.f0).astype(np.float32)[:n])
        return item


def collate(items: list[dict[str, torch.Tensor]], speaker_id: int = 0) -> dict[str, torch.Tensor]:
    """Zero-pad a list of items into a batch, longest first (as RVC):
    phone (B, T, dim), phone_lengths (B,), pitch (B, T) long, pitchf (B, T), spec (B, C, T), spec_lengths (B,),
    wave (B, 1, T * hop), wave_lengths (B,), sid (B,)."""
    items = sorted(items, key=lambda it: it["spec"].shape[-1], reverse=True)
    batch_size = len(items)
    frames = max(it["spec"].shape[-1] for it in items)
    samples = max(it["wave"].shape[-1] for it in items)
    dim, channels = items[0]["phone"].shape[-1], items[0]["spec"].shape[0]
    out = {"phone": torch.zeros(batch_size, frames, dim), "spec": torch.zeros(batch_size, channels, frames),
           "wave": torch.zeros(batch_size, 1, samples), "phone_lengths": torch.zeros(batch_size, dtype=torch.long),
           "spec_lengths": torch.zeros(batch_size, dtype=torch.long),
           "wave_lengths": torch.zeros(batch_size, dtype=torch.long),
           "sid": torch.full((batch_size,), int(speaker_id), dtype=torch.long),
           "index": torch.stack([it["index"] for it in items])}
    has_f0 = "pitch" in items[0]
    if has_f0:
        out["pitch"] = torch.zeros(batch_size, frames, dtype=torch.long)
        out["pitchf"] = torch.zeros(batch_size, frames)
    for i, it in enumerate(items):
        n, s = it["spec"].shape[-1], it["wave"].shape[-1]
        out["phone"][i, :n] = it["phone"][:n]
        out["spec"][i, :, :n] = it["spec"]
        out["wave"][i, 0, :s] = it["wave"]
        out["phone_lengths"][i] = out["spec_lengths"][i] = n
        out["wave_lengths"][i] = s
        if has_f0:
            out["pitch"][i, :n] = it["pitch"][:n]
            out["pitchf"][i, :n] = it["pitchf"][:n]
    return out


def bucket_boundaries(min_frames: int, max_frames: int, width: int = 100) -> list[int]:
    """Bucket edges in frames: (min_frames - 1, 100, 200, ..., max_frames]; RVC uses 100..900."""
    inner = [b for b in range(width, max_frames, width) if b > min_frames - 1]
    return [min_frames - 1, *inner, max_frames]


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of clips of similar length (RVC's DistributedBucketSampler, reimplemented).

    Each clip goes to the bucket (lo, hi] holding its frame count; a bucket is padded with repeats of its own
    clips to a multiple of batch_size * num_replicas; every epoch shuffles within buckets (seeded by seed + epoch,
    so a resumed run sees the same order), hands rank r every num_replicas-th clip and shuffles the batches.
    """

    def __init__(self, lengths: list[int], batch_size: int, boundaries: list[int], num_replicas: int = 1,
                 rank: int = 0, shuffle: bool = True, seed: int = 0) -> None:
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        buckets: list[list[int]] = [[] for _ in range(len(boundaries) - 1)]
        for index, length in enumerate(lengths):
            for b in range(len(boundaries) - 1):
                if boundaries[b] < length <= boundaries[b + 1]:
                    buckets[b].append(index)
                    break
        self.buckets = [b for b in buckets if b]
        per_step = batch_size * num_replicas
        self._batches_per_replica = sum((len(b) + per_step - 1) // per_step for b in self.buckets)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._batches_per_replica

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        per_step = self.batch_size * self.num_replicas
        batches = []
        for bucket in self.buckets:
            order = torch.randperm(len(bucket), generator=generator).tolist() if self.shuffle else range(len(bucket))
            ids = [bucket[i] for i in order]
            rem = (per_step - len(ids) % per_step) % per_step
            ids = ids + (ids * (rem // len(ids) + 1))[:rem]
            mine = ids[self.rank::self.num_replicas]
            batches += [mine[i:i + self.batch_size] for i in range(0, len(mine), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return iter(batches)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """x (B, C, T) -> (B, C, size), row b taken from starts[b]."""
    return torch.stack([x[b, :, int(s):int(s) + size] for b, s in enumerate(starts)])
