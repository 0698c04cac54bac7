"""Rate-independent STFT grid and the chunked mask-apply engine shared by every separator.

Grid: the STFT keeps the same bin spacing (reference_rate / n_fft = 21.5 Hz) and the same hop in seconds
(11.6 ms) at any input rate, so bin k means the same frequency at 44.1 kHz, 48 kHz or 16 kHz and a mask estimated
on the low bins applies bin-for-bin to the full-rate STFT of every channel. Frame t is centred on sample t * hop
of the zero-extended signal; a signal of N samples has N // hop + 1 frames.

Engine: mask estimators see fixed "patches" of `patch_frames` frames placed on a global grid (patch k starts at
frame k * patch_frames / 2). Each frame's mask is the sin^2-weighted blend of the two patches covering it, so it
depends only on audio within about one patch of that frame. The audio is then processed in chunks (with the margin
those patches and the synthesis overlap need), and the result of chunked processing equals whole-file processing
up to float rounding. Memory is bounded by the chunk length, whatever the file's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
import scipy.fft

from voiceapp.errors import ConfigError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress


@dataclass(frozen=True)
class StftConfig:
    reference_rate: int = 44100
    n_fft: int = 2048        # at reference_rate; scaled with the input rate (kept even)
    hop_length: int = 512    # at reference_rate; scaled with the input rate

    def __post_init__(self) -> None:
        if self.n_fft < 16 or self.hop_length < 1 or self.hop_length > self.n_fft:
            raise ConfigError(f"StftConfig needs 16 <= n_fft and 1 <= hop_length <= n_fft, got {self}")

    @property
    def bin_hz(self) -> float:
        return self.reference_rate / self.n_fft

    def for_rate(self, sample_rate: int) -> tuple[int, int]:
        """(n_fft, hop) at `sample_rate` with the reference bin spacing and hop duration."""
        scale = sample_rate / self.reference_rate
        n_fft = max(16, 2 * int(round(self.n_fft * scale / 2)))
        hop = max(1, int(round(self.hop_length * scale)))
        return n_fft, min(hop, n_fft)


def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (float32)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def stft_frames(segment: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """(channels, samples) -> complex64 (channels, n_fft // 2 + 1, frames), frames at 0, hop, 2 hop, ... (no padding).

    Scaled by 1 / sum(window) so a full-scale sine has magnitude ~0.5 whatever the rate.
    """
    frames = np.lib.stride_tricks.sliding_window_view(segment, n_fft, axis=-1)[:, ::hop]  # (C, T, n_fft)
    spec = scipy.fft.rfft(frames * window, axis=-1) / np.float32(window.sum())
    return np.ascontiguousarray(spec.transpose(0, 2, 1)).astype(np.complex64, copy=False)


def overlap_add(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `stft_frames`: (C, F, T) -> (numerator (C, samples), window-square sum (samples,)).

    Output sample i of frame t lands at t * hop + i; divide the sums where they are both accumulated.
    """
    channels, _, n_frames = spec.shape
    frames = scipy.fft.irfft(spec.transpose(0, 2, 1) * np.float32(window.sum()), n=n_fft, axis=-1)
    frames = (frames * window).astype(np.float32)  # (C, T, n_fft)
    length = (n_frames - 1) * hop + n_fft
    out = np.zeros((channels, length), dtype=np.float32)
    norm = np.zeros(length, dtype=np.float32)
    wsq = window ** 2
    for t in range(n_frames):
        out[:, t * hop:t * hop + n_fft] += frames[:, t]
        norm[t * hop:t * hop + n_fft] += wsq
    return out, norm


class MaskEstimator(Protocol):
    """Estimates a vocals mask for patches of the STFT (see module docstring)."""

    name: str
    patch_frames: int

    def estimate(self, patches: np.ndarray, sample_rate: int, bin_hz: float) -> np.ndarray:
        """complex64 (K, channels, F, patch_frames) -> float32 vocals mask in [0, 1] of the same shape."""


class SampleSource:
    """Random access with increasing start to a stream of (channels, samples) blocks; zeros outside the signal."""

    def __init__(self, blocks: Iterator[np.ndarray], channels: int) -> None:
        self._blocks = blocks
        self.channels = channels
        self._buffer = np.zeros((channels, 0), dtype=np.float32)
        self._buffer_start = 0
        self.length: int | None = None  # known once the stream has ended

    @classmethod
    def from_array(cls, audio: np.ndarray) -> "SampleSource":
        source = cls(iter(()), audio.shape[0])
        source._buffer = np.asarray(audio, dtype=np.float32)
        source.length = audio.shape[1]
        return source

    def _fill_to(self, end: int) -> None:
        while self.length is None and self._buffer_start + self._buffer.shape[1] < end:
            block = next(self._blocks, None)
            if block is None:
                self.length = self._buffer_start + self._buffer.shape[1]
                break
            block = block[None, :] if block.ndim == 1 else block
            self._buffer = np.concatenate([self._buffer, block.astype(np.float32, copy=False)], axis=1)

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) as (channels, end - start); zeros before 0 and after the end of the signal."""
        self._fill_to(end)
        out = np.zeros((self.channels, end - start), dtype=np.float32)
        lo, hi = max(start, self._buffer_start), min(end, self._buffer_start + self._buffer.shape[1])
        if hi > lo:
            out[:, lo - start:hi - start] = self._buffer[:, lo - self._buffer_start:hi - self._buffer_start]
        return out

    def release_before(self, sample: int) -> None:
        """Forget samples before `sample` (they will not be read again)."""
        drop = min(max(0, sample - self._buffer_start), self._buffer.shape[1])
        if drop:
            self._buffer = self._buffer[:, drop:]
            self._buffer_start += drop


def _patch_weight(patch_frames: int) -> np.ndarray:
    """sin^2 weights; two patches offset by half a patch sum to 1."""
    return (np.sin(np.pi * (np.arange(patch_frames) + 0.5) / patch_frames) ** 2).astype(np.float32)


def masked_chunks(source: SampleSource, sample_rate: int, estimator: MaskEstimator, stft: StftConfig,
                  chunk_s: float = 30.0, batch_patches: int = 8, progress: Progress = no_progress,
                  cancel: CancelToken = NEVER,
                  total_samples: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (mix, vocals) blocks of (channels, samples) covering the whole signal in order.

    `total_samples` (when known in advance) only drives the progress fraction.
    """
    n_fft, hop = stft.for_rate(sample_rate)
    half = n_fft // 2
    window = hann(n_fft)
    patch = int(estimator.patch_frames)
    if patch < 2 or patch % 2:
        raise ConfigError(f"{estimator.name}: patch_frames must be even and >= 2, got {patch}")
    stride = patch // 2
    weight = _patch_weight(patch)
    frames_per_chunk = max(stride, int(chunk_s * sample_rate / hop) // stride * stride)
    chunk_samples = frames_per_chunk * hop
    s0 = 0
    while True:
        cancel.raise_if_set()
        s1 = s0 + chunk_samples
        # Frames whose window overlaps [s0, s1), then the patches that cover those frames.
        t_lo = max(0, (s0 - half) // hop)
        t_hi = -(-(s1 + half) // hop) + 1
        k_lo, k_hi = (t_lo - patch) // stride + 1, (t_hi - 1) // stride
        f_lo, f_hi = k_lo * stride, k_hi * stride + patch
        segment = source.read(f_lo * hop - half, (f_hi - 1) * hop - half + n_fft)
        n_total = source.length
        if n_total is not None:
            s1 = min(s1, n_total)
            t_hi = min(t_hi, n_total // hop + 1)
            if s0 >= n_total:
                return
        spec = stft_frames(segment, n_fft, hop, window)  # (C, F, f_hi - f_lo)
        mask = _blend_patches(spec, estimator, k_lo, k_hi, stride, patch, weight, sample_rate, stft.bin_hz,
                              batch_patches)
        sel = slice(t_lo - f_lo, t_hi - f_lo)
        num, norm = overlap_add(spec[:, :, sel] * mask[:, :, sel], n_fft, hop, window)
        origin = t_lo * hop - half  # sample index of num[:, 0]
        a, b = s0 - origin, s1 - origin
        vocals = num[:, a:b] / np.maximum(norm[a:b], 1e-8)
        mix = segment[:, s0 - (f_lo * hop - half):s1 - (f_lo * hop - half)]
        yield mix, vocals.astype(np.float32)
        if total_samples:
            progress(min(1.0, s1 / total_samples), f"separating: {s1 / sample_rate:.0f} s")
        source.release_before(s1 - n_fft - 2 * (patch + 1) * hop)
        s0 = s1
        if n_total is not None and s0 >= n_total:
            return


def _blend_patches(spec: np.ndarray, estimator: MaskEstimator, k_lo: int, k_hi: int, stride: int, patch: int,
                   weight: np.ndarray, sample_rate: int, bin_hz: float, batch_patches: int) -> np.ndarray:
    """Masks of patches k_lo..k_hi blended into one (C, F, frames) mask aligned with `spec`."""
    mask = np.zeros(spec.shape, dtype=np.float32)
    total = np.zeros(spec.shape[-1], dtype=np.float32)
    ks = list(range(k_lo, k_hi + 1))
    for i in range(0, len(ks), max(1, batch_patches)):
        group = ks[i:i + batch_patches]
        starts = [(k - k_lo) * stride for k in group]
        patches = np.stack([spec[:, :, s:s + patch] for s in starts])  # (K, C, F, patch)
        masks = np.clip(estimator.estimate(patches, sample_rate, bin_hz), 0.0, 1.0)
        for s, m in zip(starts, masks):
            mask[:, :, s:s + patch] += m * weight
            total[s:s + patch] += weight
    return mask / np.maximum(total, 1e-8)


def separate_array(audio: np.ndarray, sample_rate: int, estimator: MaskEstimator, stft: StftConfig = StftConfig(),
                   chunk_s: float = 30.0, progress: Progress = no_progress,
                   cancel: CancelToken = NEVER) -> np.ndarray:
    """Vocals of `audio` ((samples,) or (channels, samples)), same shape; the instrumental is `audio - vocals`."""
    mono = audio.ndim == 1
    data = np.asarray(audio, dtype=np.float32)[None, :] if mono else np.asarray(audio, dtype=np.float32)
    parts = [v for _, v in masked_chunks(SampleSource.from_array(data), sample_rate, estimator, stft, chunk_s,
                                         progress=progress, cancel=cancel, total_samples=data.shape[1])]
    vocals = np.concatenate(parts, axis=1) if parts else np.zeros_like(data)
    return vocals[0] if mono else vocals

