"""A streaming resampler that holds back about a millisecond, for the live path.

soxr's streams (what the rest of Voiceapp resamples with) hold back 10-11 ms each at their lowest quality and more
above it: in a live session that is two streams, ~22 ms of the end-to-end delay for nothing but resampling. This one
is a windowed-sinc polyphase filter (Kaiser window, ±1 ms, ±2 ms when one side is 16 kHz): linear phase, -60 dB
stopband, cutoff at 90 % of the lower Nyquist frequency, so it keeps speech and the voice models' bandwidth while
holding back only the filter's half-width. Any rational rate ratio (44.1 kHz <-> 16/40 kHz included); the output does not depend on how the input
is chunked.
"""

from __future__ import annotations

from math import gcd

import numpy as np

HALF_WIDTH_S = 0.001     # the filter reaches this far each side (what the stream holds back) ...
NARROW_HALF_WIDTH_S = 0.002   # ... or this far when the lower rate is at most 24 kHz (16 kHz: a sharper edge)
ROLL_OFF = 0.9           # cutoff as a share of the lower of the two Nyquist frequencies
KAISER_BETA = 8.6        # ~ -60 dB stopband


class StreamResampler:
    """`resample_chunk(x)` -> the output samples now computable (float32); output sample n is the input signal at
    time n / out_rate, so the stream holds back `HALF_WIDTH_S` (+ what the last chunk leaves) and adds no delay."""

    def __init__(self, in_rate: int, out_rate: int, half_width_s: float | None = None) -> None:
        in_rate, out_rate = int(in_rate), int(out_rate)
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"rates must be positive, got {in_rate} -> {out_rate}")
        if half_width_s is None:   # Kaiser transition ~1.8 kHz / (half width in ms): ~0.9 kHz around 7.2 kHz at 16 kHz
            half_width_s = NARROW_HALF_WIDTH_S if min(in_rate, out_rate) <= 24000 else HALF_WIDTH_S
        g = gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g       # output n sits at input position n * down / up
        self.reach = int(np.ceil(half_width_s * in_rate))      # input samples each side of an output sample
        cutoff = 0.5 * ROLL_OFF * min(1.0, out_rate / in_rate)  # cycles per input sample
        offsets = np.arange(-self.reach, self.reach + 2)       # k - floor(position)
        phase = np.arange(self.up)[:, None] / self.up          # position - floor(position)
        tau = phase - offsets[None, :]                         # position - k, in input samples
        inside = np.abs(tau) <= half_width_s * in_rate
        taper = np.where(inside, np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (tau / (half_width_s * in_rate)) ** 2,
                                                                      0, 1))) / np.i0(KAISER_BETA), 0.0)
        table = 2 * cutoff * np.sinc(2 * cutoff * tau) * taper
        self.table = (table / table.sum(axis=1, keepdims=True)).astype(np.float32)   # unit gain at DC, each phase
        self.offsets = offsets
        self.reset()

    def reset(self) -> None:
        lead = self.reach + 1
        self.buffer = np.zeros(lead, dtype=np.float32)    # zeros before the stream's first sample
        self.base = -lead                                   # input index of buffer[0]
        self.next_out = 0

    def resample_chunk(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        self.buffer = np.concatenate([self.buffer, x])
        have = self.base + len(self.buffer)                 # input samples [.., have) are known
        # output n needs input up to floor(n * down / up) + offsets[-1]
        last = ((have - 1 - int(self.offsets[-1])) * self.up) // self.down
        n = np.arange(self.next_out, max(self.next_out, last + 1), dtype=np.int64)
        if len(n) == 0:
            return np.zeros(0, dtype=np.float32)
        where = n * self.down
        start, phase = where // self.up, where % self.up
        idx = (start - self.base)[:, None] + self.offsets[None, :]
        y = np.einsum("ij,ij->i", self.buffer[idx], self.table[phase])
        self.next_out = int(n[-1]) + 1
        keep_from = (self.next_out * self.down) // self.up + int(self.offsets[0]) - self.base
        if keep_from > 0:
            self.buffer, self.base = self.buffer[keep_from:], self.base + keep_from
        return y.astype(np.float32, copy=False)
