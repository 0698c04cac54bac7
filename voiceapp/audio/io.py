"""Read any audio file into float32 at a chosen rate, and write wav/flac/mp3/ogg.

Arrays are float32, mono as shape (samples,), multichannel as (channels, samples).
soundfile (libsndfile) reads wav, flac, ogg/vorbis, opus and mp3 directly; everything else
(m4a/aac, webm, mp4, wma, ...) goes through ffmpeg: the system's, or the one `imageio-ffmpeg` ships.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from voiceapp.audio.dsp import to_mono
from voiceapp.errors import InputError
from voiceapp.workspace import atomic_path

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac",
                                     ".wma", ".aiff", ".aif", ".webm", ".mp4", ".mkv", ".mov")
SAVE_FORMATS: tuple[str, ...] = ("wav", "flac", "mp3", "ogg")
_SOUNDFILE_FIRST = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}
_FFMPEG_TIMEOUT_S = 3600


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str | None:
    """The ffmpeg binary: the system's when present, else the one bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - no bundled binary for this platform
        return None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found. Check the path.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an audio file.")
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty (0 bytes). Export it again from its source.")


def _need_ffmpeg(path: Path) -> str:
    exe = ffmpeg_exe()
    if exe is None:
        raise InputError(f"{path.name}: this format needs ffmpeg, which was not found. Install ffmpeg "
                         f"(or `pip install imageio-ffmpeg`), or convert the file to wav/flac.")
    return exe


def _ffmpeg_probe(path: Path) -> AudioInfo:
    """Rate and channels of the first audio stream, from ffmpeg's stream banner."""
    exe = _need_ffmpeg(path)
    proc = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                          text=True, errors="replace", timeout=120)
    import re

    match = re.search(r"Audio: [^\n]*?(\d+) Hz, ([^,\n]+)", proc.stderr)
    if not match:
        raise InputError(f"{path.name}: no audio stream could be decoded (not an audio/video file, or corrupt). "
                         "Check that it plays in a media player, or convert it to wav.")
    layout = match.group(2).strip()
    named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}
    channels = named.get(layout.split("(")[0], None)
    if channels is None:
        digits = re.match(r"(\d+) channels", layout)
        channels = int(digits.group(1)) if digits else 2
    dur = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", proc.stderr)
    seconds = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    rate = int(match.group(1))
    return AudioInfo(path, rate, channels, int(seconds * rate))


def audio_info(path: Path | str) -> AudioInfo:
    """Rate, channel count and length of a file without decoding it all."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in _SOUNDFILE_FIRST:
        try:
            info = sf.info(str(path))
            if info.frames > 0 or info.format != "MPEG":
                return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames))
        except (sf.LibsndfileError, RuntimeError, TypeError):
            pass
    return _ffmpeg_probe(path)


def _ffmpeg_stream(path: Path, sample_rate: int | None, channels: int | None,
                   block_frames: int) -> Iterator[np.ndarray]:
    """Decode through ffmpeg into float32 blocks of (channels, frames)."""
    exe = _need_ffmpeg(path)
    info = _ffmpeg_probe(path)
    out_channels = channels or info.channels
    rate = sample_rate or info.sample_rate
    cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-vn", "-map", "0:a:0",
           "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(out_channels), "-ar", str(rate), "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    bytes_per_block = block_frames * out_channels * 4
    try:
        while True:
            data = proc.stdout.read(bytes_per_block)
            if not data:
                break
            usable = len(data) - len(data) % (4 * out_channels)
            block = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, out_channels).T
            yield np.ascontiguousarray(block, dtype=np.float32)
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        code = proc.wait(timeout=_FFMPEG_TIMEOUT_S)
    if code != 0:
        raise InputError(f"{path.name}: ffmpeg could not decode it ({err.strip()[-200:] or f'exit {code}'}). "
                         "The file may be corrupt or truncated; re-export it or convert it to wav.")


def _soundfile_stream(path: Path, block_frames: int) -> Iterator[np.ndarray]:
    with sf.SoundFile(str(path)) as handle:
        while True:
            block = handle.read(block_frames, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            yield np.ascontiguousarray(block.T)


def iter_blocks(path: Path | str, sample_rate: int | None = None, mono: bool = True,
                block_s: float = 30.0) -> Iterator[np.ndarray]:
    """Stream a file as float32 blocks at `sample_rate` (None: the file's own rate).

    Blocks are (samples,) when `mono`, else (channels, samples). Memory stays bounded by `block_s`,
    so an hour-long file never sits in memory whole. Raises `InputError` for unreadable input.
    """
    path = Path(path)
    info = audio_info(path)
    rate = sample_rate or info.sample_rate
    blocks: Iterator[np.ndarray]
    use_soundfile = path.suffix.lower() in _SOUNDFILE_FIRST
    if use_soundfile:
        try:
            sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError):
            use_soundfile = False
    if use_soundfile:
        blocks = _soundfile_stream(path, max(1, int(block_s * info.sample_rate)))
        source_rate = info.sample_rate
    else:
        blocks = _ffmpeg_stream(path, None, None, max(1, int(block_s * info.sample_rate)))
        source_rate = info.sample_rate
    resampler = None
    if source_rate != rate:
        import soxr

        resampler = soxr.ResampleStream(source_rate, rate, 1 if mono else info.channels, dtype="float32",
                                        quality="HQ")
    try:
        previous: np.ndarray | None = None
        for block in blocks:
            block = to_mono(block) if mono else block
            if resampler is not None:
                if previous is not None:
                    yield _resample_stream(resampler, previous, mono, last=False)
                previous = block
            else:
                yield block
        if resampler is not None:
            if previous is None:
                previous = np.zeros((0,) if mono else (info.channels, 0), dtype=np.float32)
            yield _resample_stream(resampler, previous, mono, last=True)
    except sf.LibsndfileError as err:
        raise InputError(f"{path.name}: cannot decode ({err}). The file may be corrupt or truncated.") from err


def _resample_stream(resampler: object, block: np.ndarray, mono: bool, last: bool) -> np.ndarray:
    data = block if mono else block.T
    out = resampler.resample_chunk(np.ascontiguousarray(data, dtype=np.float32), last=last)  # type: ignore[attr-defined]
    return np.asarray(out if mono else out.T, dtype=np.float32)


def load_audio(path: Path | str, sample_rate: int | None = None, mono: bool = True,
               max_duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file into float32 at `sample_rate` (None: keep the file's rate).

    Returns `(audio, rate)`: (samples,) when `mono`, else (channels, samples). Samples above 1.0 in
    float files are kept (callers normalise). Raises `InputError` naming the file for empty, corrupt or
    unsupported input, or when the file is longer than `max_duration_s`.
    """
    path = Path(path)
    info = audio_info(path)
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise InputError(f"{path.name}: {info.duration_s / 60:.1f} min is longer than the {max_duration_s / 60:.0f} "
                         "min this step loads at once; cut it into parts first.")
    rate = sample_rate or info.sample_rate
    parts = list(iter_blocks(path, rate, mono=mono, block_s=60.0))
    if not parts:
        audio = np.zeros((0,) if mono else (info.channels, 0), dtype=np.float32)
    else:
        audio = np.concatenate(parts, axis=-1).astype(np.float32, copy=False)
    if audio.shape[-1] == 0:
        raise InputError(f"{path.name}: contains no audio samples. Export it again from its source.")
    if not np.all(np.isfinite(audio)):
        raise InputError(f"{path.name}: contains NaN or infinite samples; the file is damaged.")
    return audio, rate


def _save_format(path: Path | str, fmt: str | None) -> str:
    fmt = (fmt or Path(path).suffix.lstrip(".") or "wav").lower()
    if fmt not in SAVE_FORMATS:
        raise InputError(f"Cannot save as {fmt!r}; choose one of {list(SAVE_FORMATS)}.")
    return fmt


def saved_path(path: Path | str, fmt: str | None = None) -> Path:
    """The file `save_audio(path, ..., fmt)` writes: `path` with the format's suffix."""
    path, fmt = Path(path), _save_format(path, fmt)
    return path if path.suffix.lower() == f".{fmt}" else path.with_suffix(f".{fmt}")


def save_audio(path: Path | str, audio: np.ndarray, sample_rate: int, fmt: str | None = None,
               subtype: str | None = None) -> Path:
    """Write `audio` ((samples,) or (channels, samples)) atomically as wav, flac, mp3 or ogg.

    The format comes from `fmt` or the file suffix. wav keeps float32 unless `subtype` says otherwise;
    flac is 24-bit; mp3 (320 kbit/s) and ogg (vorbis) are written by libsndfile.
    """
    path, fmt = saved_path(path, fmt), _save_format(path, fmt)
    data = np.asarray(audio, dtype=np.float32)
    data = data.T if data.ndim == 2 else data
    settings = {"wav": ("WAV", subtype or "FLOAT"), "flac": ("FLAC", subtype or "PCM_24"),
                "mp3": ("MP3", subtype or "MPEG_LAYER_III"), "ogg": ("OGG", subtype or "VORBIS")}[fmt]
    if fmt != "wav" or (subtype and subtype.startswith("PCM")):
        data = np.clip(data, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(sample_rate), format=settings[0], subtype=settings[1])
    return path


def find_audio_files(inputs: list[Path | str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively) into audio files, sorted, without duplicates.

    Returns (files, skipped) where skipped lists (path, reason) for inputs that are not audio.
    """
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            for child in sorted(item.rglob("*")):
                if child.is_file() and child.suffix.lower() in AUDIO_EXTENSIONS and not child.name.startswith("."):
                    if child.resolve() not in seen:
                        seen.add(child.resolve())
                        files.append(child)
        elif item.is_file():
            if item.resolve() not in seen:
                seen.add(item.resolve())
                files.append(item)
        else:
            skipped.append((item, "not found"))
    return files, skipped
