"""Training material for separators: find songs with stems and make random remixes of them.

A stems folder holds one folder per song (searched recursively). A song folder is any folder with a
`vocals.*` file and/or an accompaniment: `accompaniment.*` (or `instrumental.*`), else the sum of the other stems
(`drums`, `bass`, `other`, ... every audio file except `mixture` and `vocals`), else `mixture - vocals`.
Folders with only vocals (e.g. speech or a cappella takes) or only an accompaniment (instrumentals) feed the
remix pools too. This is the MUSDB18-HQ wav layout (`train/<song>/{mixture,vocals,drums,bass,other}.wav`);
the original MUSDB18 `.stem.mp4` files are read through the optional `musdb` package when it is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceapp.errors import InputError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress

log = logging.getLogger(__name__)

_ACCOMPANIMENT_NAMES = ("accompaniment", "instrumental", "instrumentals", "karaoke")
_SKIP_NAMES = ("mixture", "mix", "vocals", "vocal")


@dataclass
class StemSong:
    """One song's stems in memory at the training rate: float16 (channels, samples) or None."""

    name: str
    vocals: np.ndarray | None
    accompaniment: np.ndarray | None


def _audio_files(folder: Path) -> list[Path]:
    from voiceapp.audio.io import AUDIO_EXTENSIONS

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))


def _song_parts(folder: Path) -> tuple[Path | None, list[Path], Path | None]:
    """(vocals, accompaniment files to sum, mixture) of one folder."""
    files = _audio_files(folder)
    by_stem = {p.stem.lower(): p for p in files}
    vocals = by_stem.get("vocals") or by_stem.get("vocal")
    mixture = by_stem.get("mixture") or by_stem.get("mix")
    for name in _ACCOMPANIMENT_NAMES:
        if name in by_stem:
            return vocals, [by_stem[name]], mixture
    others = [p for p in files if p.stem.lower() not in _SKIP_NAMES]
    return vocals, others if (vocals is not None or mixture is not None) else [], mixture


def find_stem_folders(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that hold vocals or an accompaniment."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: stems folder not found. Give a folder with one sub-folder per song "
                         "(vocals.wav + accompaniment.wav, or the MUSDB18-HQ layout).")
    found = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        vocals, acc, mixture = _song_parts(folder)
        if vocals or acc:
            found.append(folder)
    return found


def _load(path: Path, sample_rate: int) -> np.ndarray:
    from voiceapp.audio.io import load_audio

    audio, _ = load_audio(path, sample_rate, mono=False)
    return audio if audio.ndim == 2 else audio[None, :]


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    return audio[:, :length] if audio.shape[1] >= length else np.pad(audio, ((0, 0), (0, length - audio.shape[1])))


def load_stem_song(folder: Path, sample_rate: int) -> StemSong:
    vocals_path, acc_paths, mixture_path = _song_parts(folder)
    vocals = _load(vocals_path, sample_rate) if vocals_path else None
    acc = None
    if acc_paths:
        parts = [_load(p, sample_rate) for p in acc_paths]
        length, channels = max(p.shape[1] for p in parts), max(p.shape[0] for p in parts)
        acc = sum(np.broadcast_to(_fit(p, length), (channels, length)) for p in parts).astype(np.float32)
    elif vocals is not None and mixture_path is not None:
        mix = _load(mixture_path, sample_rate)
        acc = _fit(mix, vocals.shape[1]) - vocals
    half = (lambda a: None if a is None else a.astype(np.float16))
    return StemSong(folder.name if folder.name else str(folder), half(vocals), half(acc))


def _load_musdb(root: Path, sample_rate: int) -> list[StemSong]:
    try:
        import musdb  # optional: only for the .stem.mp4 release of MUSDB18
    except ImportError as err:
        raise InputError(f"{root} holds MUSDB18 .stem.mp4 files; reading them needs `pip install musdb`, or use "
                         "MUSDB18-HQ (wav folders), which needs nothing extra.") from err
    from voiceapp.audio.dsp import resample

    songs = []
    for track in musdb.DB(root=str(root), subsets=["train"]).tracks:
        rate = int(track.rate)
        vocals = resample(track.targets["vocals"].audio.T.astype(np.float32), rate, sample_rate)
        acc = resample(track.targets["accompaniment"].audio.T.astype(np.float32), rate, sample_rate)
        songs.append(StemSong(track.name, vocals.astype(np.float16), acc.astype(np.float16)))
    return songs


def load_stem_songs(root: Path, sample_rate: int, progress: Progress = no_progress,
                    cancel: CancelToken = NEVER) -> list[StemSong]:
    """Every song under `root`, loaded at `sample_rate` (float16 in memory: ~20 MB per stereo 4-minute stem)."""
    root = Path(root)
    if root.is_dir() and any(root.rglob("*.stem.mp4")):
        return _load_musdb(root, sample_rate)
    folders = find_stem_folders(root)
    if not folders:
        raise InputError(f"{root}: no song folders with vocals/accompaniment files found. Each song needs its own "
                         "folder with vocals.wav and accompaniment.wav (or mixture.wav, or drums/bass/other stems).")
    songs = []
    for i, folder in enumerate(folders):
        cancel.raise_if_set()
        try:
            songs.append(load_stem_song(folder, sample_rate))
        except InputError as err:
            log.warning("skipping %s: %s", folder, err)
        progress((i + 1) / len(folders), f"loading stems: {folder.name}")
    return songs


class Remixer:
    """Random training mixes: vocals and accompaniment from (usually) different songs, random gains and offsets.

    Each item is a mono segment of `segment_samples`: one channel (or the channel mean) of a vocals excerpt
    at a random gain plus an accompaniment excerpt at a random gain; with `same_song_prob` the song's own
    accompaniment at the same offset. Returns (mixture, vocals) float32 arrays of shape (batch, samples).
    """

    def __init__(self, songs: list[StemSong], segment_samples: int, seed: int = 0, same_song_prob: float = 0.25,
                 vocals_gain_db: tuple[float, float] = (-9.0, 3.0), accomp_gain_db: tuple[float, float] = (-6.0, 3.0),
                 silent_vocals_prob: float = 0.1) -> None:
        self.vocals = [s for s in songs if s.vocals is not None and s.vocals.shape[1] > 0]
        self.accomp = [s for s in songs if s.accompaniment is not None and s.accompaniment.shape[1] > 0]
        if not self.vocals or not self.accomp:
            raise InputError("Training needs at least one vocals stem and one accompaniment (or mixture) stem; "
                             f"found {len(self.vocals)} song(s) with vocals and {len(self.accomp)} with accompaniment.")
        self.segment = segment_samples
        self.rng = np.random.default_rng(seed)
        self.same_song_prob = same_song_prob
        self.vocals_gain_db, self.accomp_gain_db = vocals_gain_db, accomp_gain_db
        self.silent_vocals_prob = silent_vocals_prob

    def _excerpt(self, audio: np.ndarray, offset: int | None = None) -> tuple[np.ndarray, int]:
        n = audio.shape[1]
        if offset is None:
            offset = int(self.rng.integers(0, max(1, n - self.segment + 1)))
        part = audio[:, offset:offset + self.segment].astype(np.float32)
        if part.shape[1] < self.segment:
            part = np.pad(part, ((0, 0), (0, self.segment - part.shape[1])))
        channel = int(self.rng.integers(-1, part.shape[0]))
        return (part.mean(axis=0) if channel < 0 else part[channel]), offset

    def _vocals(self) -> tuple[StemSong, np.ndarray, int]:
        for _ in range(4):
            song = self.vocals[int(self.rng.integers(len(self.vocals)))]
            voc, offset = self._excerpt(song.vocals)
            if np.sqrt(np.mean(voc ** 2)) > 3e-3 or self.rng.random() < self.silent_vocals_prob:
                break
        return song, voc, offset

    def item(self) -> tuple[np.ndarray, np.ndarray]:
        song, voc, offset = self._vocals()
        if song.accompaniment is not None and self.rng.random() < self.same_song_prob:
            acc, _ = self._excerpt(song.accompaniment, min(offset, max(0, song.accompaniment.shape[1] - 1)))
        else:
            acc, _ = self._excerpt(self.accomp[int(self.rng.integers(len(self.accomp)))].accompaniment)
        voc = voc * np.float32(10 ** (self.rng.uniform(*self.vocals_gain_db) / 20))
        acc = acc * np.float32(10 ** (self.rng.uniform(*self.accomp_gain_db) / 20))
        mix = voc + acc
        top = float(np.max(np.abs(mix))) if mix.size else 0.0
        if top > 0.99:
            voc, mix = voc * (0.99 / top), mix * (0.99 / top)
        return mix.astype(np.float32), voc.astype(np.float32)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        items = [self.item() for _ in range(size)]
        return np.stack([m for m, _ in items]), np.stack([v for _, v in items])
