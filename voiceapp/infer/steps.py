"""The numeric steps of RVC's conversion pipeline, as small pure functions on numpy arrays.

Conventions: audio is mono float32 at 16 kHz unless a rate is named; f0 and model frames are 10 ms
(`WINDOW` = 160 samples at 16 kHz); content features are (frames, dim) float32.
Facts: shared/reference/rvc-facts.md §3 (steps 1-12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
WINDOW = 160             # samples per 10 ms frame at 16 kHz
INPUT_PEAK = 0.95        # step 1: input peak limit
OUTPUT_PEAK = 0.99       # step 12: output peak limit


def peak_limit(audio: np.ndarray, ceiling: float = INPUT_PEAK) -> np.ndarray:
    """`audio / max(1, peak/ceiling)`: louder input is scaled down to `ceiling`, quieter input is kept."""
    top = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    scale = max(1.0, top / ceiling)
    return audio.astype(np.float32, copy=False) if scale == 1.0 else (audio / scale).astype(np.float32, copy=False)


def reflect_pad(audio: np.ndarray, pad: int) -> np.ndarray:
    """Mirror `pad` samples on both sides (repeatedly mirrored when the audio is shorter than `pad`)."""
    if pad <= 0:
        return audio
    if len(audio) < 2:
        return np.pad(audio, (pad, pad), mode="edge")
    return np.pad(audio, (pad, pad), mode="reflect")


def extend_to(audio: np.ndarray, length: int) -> np.ndarray:
    """`audio` mirrored at its end up to `length` samples (unchanged when it is that long already)."""
    if len(audio) >= length:
        return audio
    mode = "reflect" if len(audio) >= 2 else "edge"
    return np.pad(audio, (0, length - len(audio)), mode=mode) if len(audio) else np.zeros(length, audio.dtype)


def moving_abs_sum(audio: np.ndarray, width: int = WINDOW) -> np.ndarray:
    """`out[i] = sum |audio[i : i + width]|` for every full window (RVC's `audio_sum`)."""
    csum = np.concatenate([[0.0], np.cumsum(np.abs(audio), dtype=np.float64)])
    return csum[width:] - csum[:-width]


@dataclass(frozen=True)
class Segmentation:
    """Where long audio is cut and how much context each piece gets, in seconds (RVC's x_* values)."""

    pad_s: float      # x_pad: context mirrored/borrowed on each side of a piece, cut off after synthesis
    query_s: float    # x_query: search the quietest point within +-query_s of each nominal cut
    center_s: float   # x_center: nominal distance between cuts
    max_s: float      # x_max: audio up to this long is converted in one piece

    @property
    def pad(self) -> int:
        return int(round(SAMPLE_RATE * self.pad_s / WINDOW)) * WINDOW


def find_cuts(audio: np.ndarray, seg: Segmentation) -> list[int]:
    """Cut positions (sample index at 16 kHz, multiples of 160) at the quietest 10 ms near every `center_s`.

    Follows RVC: only when the 80-sample mirrored audio is longer than `max_s`; for each
    t in range(center, len, center) take the minimum of the 160-sample sum of |x| in [t - query, t + query).
    """
    padded = reflect_pad(audio, WINDOW // 2)
    t_max, t_center = int(SAMPLE_RATE * seg.max_s), int(SAMPLE_RATE * seg.center_s)
    t_query = int(SAMPLE_RATE * seg.query_s)
    if len(padded) <= t_max or t_center <= 0:
        return []
    sums = moving_abs_sum(padded)
    cuts: list[int] = []
    for t in range(t_center, len(audio), t_center):
        lo = max(t - t_query, 0)
        window = sums[lo:t + t_query]
        if window.size == 0:
            continue
        cut = (lo + int(np.argmin(window))) // WINDOW * WINDOW
        if (not cuts or cut > cuts[-1]) and WINDOW <= cut <= len(audio) - WINDOW:
            cuts.append(cut)
    return cuts


def segment_spans(n_samples: int, cuts: list[int]) -> list[tuple[int, int]]:
    """[(start, end)] in samples of the unpadded audio, consecutive and covering [0, n_samples)."""
    edges = [0, *cuts, n_samples]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def fit_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Trim or extend (repeating the last row) `frames` along axis 0 to exactly `n` rows."""
    if len(frames) >= n:
        return frames[:n]
    if len(frames) == 0:
        return np.zeros((n, *frames.shape[1:]), dtype=frames.dtype)
    tail = np.repeat(frames[-1:], n - len(frames), axis=0)
    return np.concatenate([frames, tail], axis=0)


def upsample2(features: np.ndarray) -> np.ndarray:
    """50 Hz content frames -> 100 Hz model frames by repeating each row (nearest, x2)."""
    return np.repeat(features, 2, axis=0)


def transpose_f0(f0_hz: np.ndarray, semitones: float) -> np.ndarray:
    """Shift pitch by `semitones` (unvoiced frames stay 0)."""
    return (f0_hz * np.float32(2.0 ** (semitones / 12.0))).astype(np.float32)


def apply_f0_curve(f0_hz: np.ndarray, times_s: np.ndarray, curve_hz: np.ndarray, offset_frames: int) -> np.ndarray:
    """Overwrite f0 from frame `offset_frames` on with a `time,f0` curve sampled every 10 ms (RVC's f0 file).

    Frame k after the offset takes the curve's value at k/100 s (linear interpolation), for
    k in 0..round((t_max - t_min)*100); frames past the end of `f0_hz` are ignored.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    order = np.argsort(times_s)
    times_s, curve_hz = times_s[order], np.maximum(np.asarray(curve_hz, dtype=np.float64)[order], 0.0)
    n = int(round((times_s.max() - times_s.min()) * 100 + 1))
    replace = np.interp(np.arange(n), times_s * 100, curve_hz).astype(np.float32)
    out = f0_hz.copy()
    room = max(0, min(len(out) - offset_frames, n))
    out[offset_frames:offset_frames + room] = replace[:room]
    return out


def protect_mix(features: np.ndarray, original: np.ndarray, pitchf: np.ndarray, protect: float) -> np.ndarray:
    """Unvoiced frames (f0 < 1 Hz) keep `1 - protect` of the un-retrieved features; voiced frames keep the blend.

    `features`, `original`: (frames, dim); `pitchf`: (frames,) Hz. protect >= 0.5 means off.
    """
    mask = np.where(pitchf > 0, 1.0, 0.0).astype(np.float32)
    mask[pitchf < 1] = protect
    mask = mask[:, None]
    return (features * mask + original * (1.0 - mask)).astype(np.float32)


def linear_resize(values: np.ndarray, size: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Linear interpolation to `size` points with half-pixel centres (torch `interpolate(mode="linear")`);
    only points [start, stop) of the result when given (to work through long signals in blocks)."""
    n, stop = len(values), size if stop is None else min(stop, size)
    if n == 1 or size == 0:
        return np.full(max(0, stop - start), values[0] if n else 0.0, dtype=np.float64)
    pos = (np.arange(start, stop) + 0.5) * (n / size) - 0.5
    return np.interp(np.clip(pos, 0, n - 1), np.arange(n), values)


def half_second_rms(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """librosa-style RMS with frame `sr//2*2` and hop `sr//2`, centred, zero-padded: one value per 0.5 s.

    Computed from per-hop sums of squares, so memory stays O(len/hop) beyond the input.
    """
    hop = sample_rate // 2
    frame = 2 * hop
    n_frames = 1 + len(audio) // hop
    sums = np.zeros(n_frames + 1, dtype=np.float64)  # sums[j] = sum of squares of padded[j*hop:(j+1)*hop]
    # padded = [hop zeros] + audio + [hop zeros]; block j (j >= 1) covers audio[(j-1)*hop : j*hop]
    step = hop * 256
    for start in range(0, len(audio), step):
        chunk = audio[start:start + step].astype(np.float64)
        blocks = np.add.reduceat(np.square(chunk), np.arange(0, len(chunk), hop))
        first = 1 + start // hop
        sums[first:first + len(blocks)] = blocks
    energy = (sums[:-1] + sums[1:]) / frame
    return np.sqrt(energy[:n_frames])


def rms_mix(source_16k: np.ndarray, output: np.ndarray, out_rate: int, rate: float,
            block: int = 1 << 20) -> np.ndarray:
    """Give the output the input's loudness envelope: out *= rms_in^(1-rate) * rms_out^(rate-1).

    rate 1 leaves the output as it is; rate 0 copies the input envelope fully.
    """
    if rate >= 1 or len(output) == 0:
        return output
    env_in, env_out = half_second_rms(source_16k, SAMPLE_RATE), half_second_rms(output, out_rate)
    mixed = np.empty(len(output), dtype=np.float32)
    for a in range(0, len(output), block):  # in blocks: the float64 envelopes of a whole song would be GBs
        b = min(a + block, len(output))
        rms_in = linear_resize(env_in, len(output), a, b)
        rms_out = np.maximum(linear_resize(env_out, len(output), a, b), 1e-6)
        mixed[a:b] = output[a:b] * (np.power(rms_in, 1.0 - rate) * np.power(rms_out, rate - 1.0))
    return mixed


def peak_safe(audio: np.ndarray, ceiling: float = OUTPUT_PEAK) -> np.ndarray:
    """`out / max(1, peak/ceiling)` so the written file never clips."""
    return peak_limit(audio, ceiling)
