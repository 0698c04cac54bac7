"""Pitch shift that keeps the length: phase-vocoder time stretch by r = 2^(semitones/12), then resampling by 1/r.

    input (rate sr) -> STFT frames at analysis centres t * hop / r -> per-bin instantaneous frequency ->
    phases advanced by `hop` per frame, locked to the nearest spectral peak (Laroche & Dolson's identity
    phase locking: less "phasiness" on chords than a plain phase vocoder) -> overlap-add at t * hop
    (a signal r times longer, same pitch) -> soxr stream from rate r * sr to sr (r times higher, same length)

Streaming: frames are made in batches from a sliding input buffer, and the stretched signal is passed to a
`soxr.ResampleStream` as soon as no later frame can add to it, so memory does not grow with the length.
Frame t's analysis window is centred on input sample t * hop / r and its synthesis window on stretched sample
t * hop, so the output lines up with the input sample for sample (no latency to remove).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import scipy.fft

from voiceapp.errors import ConfigError
from voiceapp.progress import NEVER, CancelToken

_BATCH_FRAMES = 128


def _fft_size(sample_rate: int) -> int:
    """~93 ms windows (4096 at 44.1 kHz): fine enough in frequency to resolve the partials of low notes."""
    return int(2 ** round(np.log2(0.093 * sample_rate)))


class PitchShifter:
    """Shift (channels, samples) blocks fed in order by `semitones`; `process` and `flush` return output blocks.

    The output has exactly as many samples as the input once `flush` has been called."""

    def __init__(self, semitones: float, sample_rate: int, channels: int, n_fft: int | None = None) -> None:
        import soxr

        if not -36 <= semitones <= 36:
            raise ConfigError(f"Pitch shift must be within -36..36 semitones, got {semitones}.")
        self.ratio = float(2 ** (semitones / 12))
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.n_fft = int(n_fft or _fft_size(self.sample_rate))
        self.hop = self.n_fft // 4
        half = self.n_fft // 2
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.n_fft) / self.n_fft)).astype(np.float64)
        self._norm = 1.0 / np.sum(self._window ** 2 / self.hop)       # periodic Hann^2 at 75 % overlap: 1.5
        self._omega = 2 * np.pi * np.arange(half + 1) / self.n_fft     # radians per sample of each bin
        self._buffer = np.zeros((channels, 0))
        self._buffer_start = 0                                         # input index of _buffer[:, 0]
        self._received = 0
        self._next_frame = -(self.n_fft // self.hop)                   # frames before 0 cover the first samples
        self._prev_angle: np.ndarray | None = None
        self._prev_centre = 0
        self._phase = np.zeros((channels, half + 1))
        self._ola = np.zeros((channels, 0))
        self._ola_start = self._next_frame * self.hop - half           # stretched index of _ola[:, 0]
        self._emitted = 0                                              # stretched samples sent to the resampler
        self._out_count = 0
        self._resampler = soxr.ResampleStream(self.sample_rate * self.ratio, self.sample_rate, channels,
                                              dtype="float32", quality="HQ")

    # ------------------------------------------------------------------------------------------ frames
    def _centre(self, frame: int) -> int:
        return int(round(frame * self.hop / self.ratio))

    def _frames(self, stop: int) -> np.ndarray:
        """Synthesised frames next .. stop-1 as (channels, frames, n_fft), window applied."""
        half = self.n_fft // 2
        ids = np.arange(self._next_frame, stop)
        centres = np.array([self._centre(int(t)) for t in ids])
        starts = centres - half - self._buffer_start
        padded = np.pad(self._buffer, ((0, 0), (max(0, -starts.min()), max(0, starts.max() + self.n_fft
                                                                          - self._buffer.shape[1]))))
        offset = max(0, -starts.min())
        index = (starts + offset)[:, None] + np.arange(self.n_fft)[None, :]
        spec = scipy.fft.rfft(padded[:, index] * self._window, axis=-1)   # (channels, frames, bins)
        magnitude, angle = np.abs(spec), np.angle(spec)
        prev_angle = angle[:, :1] if self._prev_angle is None else self._prev_angle[:, None]
        prev_centres = np.concatenate([[self._prev_centre if self._prev_angle is not None else centres[0]],
                                       centres[:-1]])
        hops_in = np.maximum(centres - prev_centres, 1)[None, :, None]
        delta = np.diff(np.concatenate([prev_angle, angle], axis=1), axis=1) - self._omega * hops_in
        delta = (delta + np.pi) % (2 * np.pi) - np.pi
        advance = (self._omega + delta / hops_in) * self.hop
        if self._prev_angle is None:    # the very first frame keeps its own phases
            advance[:, 0], self._phase = 0.0, angle[:, 0]
        phase = self._phase[:, None, :] + np.cumsum(advance, axis=1)       # plain phase vocoder, per bin
        self._phase = phase[:, -1] % (2 * np.pi)
        self._prev_angle, self._prev_centre = angle[:, -1], int(centres[-1])
        locked = _lock_to_peaks(magnitude, angle, phase)
        frames = scipy.fft.irfft(magnitude * np.exp(1j * locked), n=self.n_fft, axis=-1) * self._window
        return frames * self._norm

    def _run(self, available: int, final: bool) -> list[np.ndarray]:
        """Make every frame whose analysis window lies within the input seen so far; return resampled output."""
        half = self.n_fft // 2
        out: list[np.ndarray] = []
        total_stretched = int(round(self._received * self.ratio))
        while True:
            stop = self._next_frame
            limit = self._next_frame + _BATCH_FRAMES
            while stop < limit and (self._centre(stop) + half <= available or final):
                if final and stop * self.hop - half >= total_stretched:
                    break
                stop += 1
            if stop == self._next_frame:
                break
            frames = self._frames(stop)
            end = (stop - 1) * self.hop - half + self.n_fft - self._ola_start
            if self._ola.shape[1] < end:
                self._ola = np.pad(self._ola, ((0, 0), (0, end - self._ola.shape[1])))
            for i, t in enumerate(range(self._next_frame, stop)):
                at = t * self.hop - half - self._ola_start
                self._ola[:, at:at + self.n_fft] += frames[:, i]
            self._next_frame = stop
            done = self._next_frame * self.hop - half                      # no later frame reaches before this
            out += self._emit(done if not final else None, total_stretched)
            self._release_input()
        return out

    def _emit(self, done: int | None, total_stretched: int) -> list[np.ndarray]:
        """Send finished stretched samples (index >= 0, < done, < total) to the resampler."""
        end = total_stretched if done is None else min(done, total_stretched)
        begin = max(self._emitted, 0)
        out = []
        if end > begin:
            piece = self._ola[:, begin - self._ola_start:end - self._ola_start]
            out.append(self._resample(piece, last=False))
            self._emitted = end
        # drop what was sent and what lies before 0; keep finished samples not sent yet (beyond the input's
        # stretched length so far: more input makes them part of the output)
        keep_from = min(done if done is not None else end, self._emitted) - self._ola_start
        if keep_from > 0:
            self._ola = self._ola[:, keep_from:]
            self._ola_start += keep_from
        return out

    def _resample(self, piece: np.ndarray, last: bool) -> np.ndarray:
        data = np.ascontiguousarray(piece.T, dtype=np.float32)
        result = self._resampler.resample_chunk(data, last=last)
        return np.ascontiguousarray(np.asarray(result, dtype=np.float32).reshape(-1, self.channels).T)

    def _release_input(self) -> None:
        first_needed = self._centre(self._next_frame) - self.n_fft // 2
        drop = min(max(0, first_needed - self._buffer_start), self._buffer.shape[1])
        if drop:
            self._buffer = self._buffer[:, drop:]
            self._buffer_start += drop

    # ------------------------------------------------------------------------------------------ public
    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed the next (channels, samples) block; returns the output that is ready (maybe empty)."""
        data = np.asarray(block, dtype=np.float64)
        data = data[None, :] if data.ndim == 1 else data
        self._buffer = np.concatenate([self._buffer, data], axis=1)
        self._received += data.shape[1]
        return self._trim(self._run(self._buffer_start + self._buffer.shape[1], final=False))

    def flush(self) -> np.ndarray:
        """The rest of the output; afterwards exactly as many samples came out as went in."""
        parts = self._run(self._received, final=True)
        parts.append(self._resample(np.zeros((self.channels, 0)), last=True))
        out = self._trim(parts)
        missing = self._received - self._out_count
        if missing > 0:
            out = np.concatenate([out, np.zeros((self.channels, missing), dtype=np.float32)], axis=1)
            self._out_count += missing
        return out

    def _trim(self, parts: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), dtype=np.float32)
        room = max(0, self._received - self._out_count)
        out = out[:, :room]
        self._out_count += out.shape[1]
        return out.astype(np.float32, copy=False)


def _lock_to_peaks(magnitude: np.ndarray, angle: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Identity phase locking: every bin keeps its analysis phase relative to the nearest magnitude peak,
    which gets the phase-vocoder phase. (channels, frames, bins) arrays."""
    bins = magnitude.shape[-1]
    left = np.concatenate([np.full(magnitude.shape[:-1] + (1,), -1.0), magnitude[..., :-1]], axis=-1)
    right = np.concatenate([magnitude[..., 1:], np.full(magnitude.shape[:-1] + (1,), -1.0)], axis=-1)
    peaks = (magnitude > left) & (magnitude >= right)
    index = np.arange(bins)
    below = np.maximum.accumulate(np.where(peaks, index, -1), axis=-1)
    above = np.flip(np.minimum.accumulate(np.flip(np.where(peaks, index, bins), axis=-1), axis=-1), axis=-1)
    use_above = (below < 0) | ((above < bins) & (above - index < index - below))
    nearest = np.where(use_above, above, below)
    nearest = np.where(nearest < 0, index, np.minimum(nearest, bins - 1))
    peak_phase = np.take_along_axis(phase, nearest, axis=-1)
    peak_angle = np.take_along_axis(angle, nearest, axis=-1)
    return peak_phase + angle - peak_angle


def shift_blocks(blocks: Iterable[np.ndarray], semitones: float, sample_rate: int, channels: int,
                 cancel: CancelToken = NEVER) -> Iterator[np.ndarray]:
    """Pitch-shift a stream of (channels, samples) blocks; yields blocks with as many samples in total."""
    shifter = PitchShifter(semitones, sample_rate, channels)
    for block in blocks:
        cancel.raise_if_set()
        out = shifter.process(block)
        if out.shape[1]:
            yield out
    yield shifter.flush()


def pitch_shift(audio: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Pitch-shift an in-memory signal ((samples,) or (channels, samples)); same shape and length."""
    data = np.asarray(audio, dtype=np.float32)
    stereo = data[None, :] if data.ndim == 1 else data
    blocks = (stereo[:, i:i + sample_rate * 10] for i in range(0, stereo.shape[1], sample_rate * 10))
    out = np.concatenate(list(shift_blocks(blocks, semitones, sample_rate, stereo.shape[0])), axis=1)
    return out[0] if data.ndim == 1 else out
