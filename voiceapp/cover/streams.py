"""The cover's streamed parts: wav blocks in and out, the lead vocals converted in blocks cut at quiet points,
the pitch-shifted music, the remix and the loudness-matched final file. Each reads and writes files block by
block, so memory is bounded by the block length, not the song's."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from voiceapp.progress import CancelToken, Progress, sub_progress

if TYPE_CHECKING:
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.services import Services

_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def stream_blocks(path: Path, block_frames: int) -> Iterator[np.ndarray]:
    """(channels, frames) float32 blocks of one of our own wav files."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as handle:
        while True:
            block = handle.read(block_frames, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield np.ascontiguousarray(block.T)


def open_writer(path: Path, sample_rate: int, channels: int, fmt: str = "wav") -> Any:
    import soundfile as sf

    formats = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24"), "mp3": ("MP3", "MPEG_LAYER_III"),
               "ogg": ("OGG", "VORBIS")}
    container, subtype = formats[fmt]
    return sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, format=container,
                        subtype=subtype)


def quiet_cuts(path: Path, block_s: float, search_s: float) -> tuple[list[int], float, int]:
    """(cut samples, peak, length) of a mono-mixed wav: cuts near every `block_s` at its quietest 10 ms."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as handle:
        hop = max(1, handle.samplerate // 100)   # 10 ms
    energies, peak, length, rest = [], 0.0, 0, np.zeros(0, dtype=np.float32)
    for block in stream_blocks(path, hop * 3000):
        mono = block.mean(axis=0)
        peak = max(peak, float(np.max(np.abs(mono))) if mono.size else 0.0)
        length += mono.size
        data = np.concatenate([rest, mono])
        whole = len(data) // hop * hop
        energies.append(np.square(data[:whole].reshape(-1, hop)).sum(axis=1))
        rest = data[whole:]
    energy = np.concatenate(energies) if energies else np.zeros(0)
    cuts, step = [], int(block_s * 100)
    for target in range(step, len(energy) - step // 2, step):
        lo, hi = max(0, target - int(search_s * 100)), min(len(energy), target + int(search_s * 100))
        cuts.append(int(lo + np.argmin(energy[lo:hi])) * hop)
    return sorted(set(c for c in cuts if 0 < c < length)), peak, length


def convert_lead(lead: Path, target: Path, voice: Any, infer_cfg: InferConfig, block_s: float, context_s: float,
                  index_path: Path | None, services: Services, progress: Progress,
                  cancel: CancelToken) -> list[str]:
    """Convert `lead` block by block into `target` (mono float wav at the lead's rate, as long); returns notes."""
    import soundfile as sf
    import soxr

    from voiceapp.infer.pipeline import convert

    with sf.SoundFile(str(lead)) as handle:
        rate = handle.samplerate
    cuts, peak, length = quiet_cuts(lead, block_s, min(5.0, block_s / 4))
    bounds = [0, *cuts, length]
    gain = min(1.0, 0.95 / peak) if peak > 0 else 1.0   # one input gain for every block (convert limits peaks)
    convert_cfg = replace(infer_cfg, resample_sr=0)      # the cover's rate is the song's: resampled here once
    context = int(context_s * rate)
    resampler, written, notes = None, 0, []
    with sf.SoundFile(str(lead)) as source, open_writer(target, rate, 1) as out:
        for i, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
            cancel.raise_if_set()
            a, b = max(0, start - context), min(length, end + context)
            source.seek(a)
            block = source.read(b - a, dtype="float32", always_2d=True).mean(axis=1) * np.float32(gain)
            part = sub_progress(progress, i / (len(bounds) - 1), (i + 1) / (len(bounds) - 1))
            result = convert(block, rate, voice, convert_cfg, index_path=index_path, services=services,
                             progress=part, cancel=cancel)
            out_rate = result.sample_rate
            lo = int(round(start * out_rate / rate)) - int(round(a * out_rate / rate))
            n = int(round(end * out_rate / rate)) - int(round(start * out_rate / rate))
            piece = result.audio[lo:lo + n]
            piece = np.pad(piece, (0, n - len(piece))) if len(piece) < n else piece
            if resampler is None and out_rate != rate:
                resampler = soxr.ResampleStream(out_rate, rate, 1, dtype="float32", quality="HQ")
            last = i == len(bounds) - 2
            if resampler is not None:
                piece = resampler.resample_chunk(np.ascontiguousarray(piece, dtype=np.float32), last=last)
            piece = piece[:length - written]
            out.write(piece)
            written += len(piece)
            notes += [note for note in result.notes if note not in notes]
        if written < length:
            out.write(np.zeros(length - written, dtype=np.float32))
    return notes


def shift_file(source: Path, target: Path, semitones: float, chunk_s: float, cancel: CancelToken,
                progress: Progress) -> None:
    import soundfile as sf

    from voiceapp.audio.pitchshift import shift_blocks

    with sf.SoundFile(str(source)) as handle:
        rate, channels, frames = handle.samplerate, handle.channels, handle.frames
    done = 0
    with open_writer(target, rate, channels) as out:
        for block in shift_blocks(stream_blocks(source, int(chunk_s * rate)), semitones, rate, channels, cancel):
            out.write(block.T)
            done += block.shape[1]
            progress(min(1.0, done / max(frames, 1)), f"shifting: {done / rate:.0f} s")


def remix(parts: list[tuple[Path, float]], target: Path, rate: int, channels: int, length: int,
           chunk_s: float, cancel: CancelToken) -> tuple[float, float]:
    """Sum `(stem, linear gain)` parts (mono stems go to every channel) into `target`; (loudness, peak)."""
    from voiceapp.audio.loudness import LoudnessMeter

    meter = LoudnessMeter(rate, channels)
    step = int(chunk_s * rate)
    streams = [(stream_blocks(path, step), gain) for path, gain in parts]
    with open_writer(target, rate, channels) as out:
        for at in range(0, length, step):
            cancel.raise_if_set()
            n = min(step, length - at)
            mix = np.zeros((channels, n), dtype=np.float32)
            for stream, gain in streams:
                block = next(stream, np.zeros((1, 0), dtype=np.float32))[:, :n]
                mix[:, :block.shape[1]] += np.float32(gain) * block   # (1, n) broadcasts to every channel
            meter.add(mix)
            out.write(mix.T)
    return meter.integrated(), meter.peak


def finish(premix: Path, target: Path, gain_db: float, fmt: str, out_rate: int, chunk_s: float,
            cancel: CancelToken) -> int:
    """Apply the gain, resample when asked, and write the cover in its format; returns the written rate."""
    import soundfile as sf
    import soxr

    with sf.SoundFile(str(premix)) as handle:
        rate, channels = handle.samplerate, handle.channels
    if fmt == "mp3" and out_rate not in _MP3_RATES:
        out_rate = min((r for r in _MP3_RATES if r >= out_rate), default=max(_MP3_RATES))
    resampler = soxr.ResampleStream(rate, out_rate, channels, dtype="float32", quality="HQ") \
        if out_rate != rate else None
    gain = np.float32(10 ** (gain_db / 20))
    with open_writer(target, out_rate, channels, fmt) as out:
        pending = None
        for block in stream_blocks(premix, int(chunk_s * rate)):
            cancel.raise_if_set()
            if pending is not None:
                out.write(_resampled(resampler, pending * gain, last=False).T)
            pending = block
        if pending is None:
            pending = np.zeros((channels, 0), dtype=np.float32)
        out.write(_resampled(resampler, pending * gain, last=True).T)
    return out_rate


def _resampled(resampler: Any, block: np.ndarray, last: bool) -> np.ndarray:
    if resampler is None:
        return block
    out = resampler.resample_chunk(np.ascontiguousarray(block.T), last=last)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, block.shape[0]).T)


def loudness_gain(song_lufs: float, mix_lufs: float, mix_peak: float, enabled: bool) -> tuple[float, list[str]]:
    """The gain (dB) that makes the remix as loud as the song, capped so its peak stays at or below -0.1 dBFS."""
    if not enabled or not (math.isfinite(song_lufs) and math.isfinite(mix_lufs)):
        return 0.0, []
    wanted = song_lufs - mix_lufs
    ceiling = 20 * math.log10(0.99 / mix_peak) if mix_peak > 0 else wanted
    if wanted <= ceiling:
        return wanted, []
    return ceiling, [f"Note: matching the song's loudness needed {wanted:+.1f} dB, but then the cover's peaks would "
                     f"clip; it is {wanted - ceiling:.1f} dB quieter than the song instead (its peaks are at -0.1 "
                     f"dBFS; nothing is limited or clipped)."]
