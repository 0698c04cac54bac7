"""Block-wise conversion of a stream: context for the engine, crossfaded joins, a fixed delay.

After `n` input samples (a multiple of the block) the converter has emitted exactly `n - delay_samples` output
samples (at the engine's rate, scaled), `output[k]` belonging to `input[k]`: the look-ahead is held back, never more.
Each block converts the window [n - context - block - lookahead, n) (10 ms shorter when that would not start on
the stream's 20 ms content-frame grid) and emits the span of the block, the first `crossfade` samples mixed (raised
cosine) with the tail the previous block made past its own span. `convert_block` lets a caller (the live session)
choose the engine and a shorter context per block, over one shared history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceapp.errors import ConfigError
from voiceapp.infer.steps import SAMPLE_RATE, WINDOW
from voiceapp.live.engines import WindowEngine, _out


@dataclass(frozen=True)
class LiveConfig:
    block_ms: int = 100        # new audio per conversion: the latency-vs-load control
    lookahead_ms: int = 20     # audio after the block the engine sees (held back: part of the latency)
    context_ms: int = 800      # audio before the block the encoder and pitch tracker see
    crossfade_ms: int = 10     # overlap of two blocks' outputs (inside the look-ahead)

    def __post_init__(self) -> None:
        for name in ("block_ms", "lookahead_ms", "context_ms"):
            if getattr(self, name) % 10 or getattr(self, name) < 0:
                raise ConfigError(f"LiveConfig.{name} must be a multiple of 10 ms, got {getattr(self, name)}.")
        if self.block_ms < 20 or not 0 < self.crossfade_ms <= self.lookahead_ms:
            raise ConfigError("LiveConfig: block_ms must be >= 20 and 0 < crossfade_ms <= lookahead_ms.")

    def samples(self, ms: int) -> int:
        return ms * SAMPLE_RATE // 1000


class StreamConverter:
    """Feed 16 kHz blocks with `push`; `reset` starts a new session (no state of the last one is kept)."""

    def __init__(self, engine: WindowEngine, cfg: LiveConfig = LiveConfig()) -> None:
        self.engine, self.cfg = engine, cfg
        self.block, self.look = cfg.samples(cfg.block_ms), cfg.samples(cfg.lookahead_ms)
        self.context = cfg.samples(cfg.context_ms) // WINDOW * WINDOW
        self.fade = _out(cfg.samples(cfg.crossfade_ms), engine.sample_rate)
        self.reset()

    @property
    def delay_samples(self) -> int:
        """Input samples (16 kHz) held back: the algorithmic latency is this plus one block."""
        return self.look

    def reset(self) -> None:
        self.history = np.zeros(self.context + self.block + self.look, dtype=np.float32)
        self.pending = np.zeros(0, dtype=np.float32)
        self.tail = np.zeros(self.fade, dtype=np.float32)
        self.received = 0

    def push(self, audio16: np.ndarray) -> np.ndarray:
        """Add input; returns the output of every block completed (possibly empty)."""
        self.pending = np.concatenate([self.pending, np.asarray(audio16, dtype=np.float32)])
        out = []
        while len(self.pending) >= self.block:
            block, self.pending = self.pending[:self.block], self.pending[self.block:]
            out.append(self.convert_block(block))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def convert_block(self, block: np.ndarray, engine: WindowEngine | None = None,
                      context: int | None = None) -> np.ndarray:
        """One block (exactly `self.block` samples) through `engine` (default: the converter's) seeing `context`
        samples before it (default and at most: the converter's); the engines of one stream must share one rate."""
        engine = engine or self.engine
        self.history = np.concatenate([self.history[len(block):], block])
        self.received += len(block)
        keep = self.context if context is None else min(self.context, context // WINDOW * WINDOW)
        if (self.received - keep - self.block - self.look) % (2 * WINDOW) and keep >= WINDOW:
            keep -= WINDOW     # windows start on the 20 ms content grid of the stream (blocks of 50, 150 ms...)
        window = self.history[self.context - keep:]
        w = len(window)
        start, stop = w - self.look - self.block, w - self.look   # the block's span, in window samples
        extra = self.cfg.samples(self.cfg.crossfade_ms)
        y = engine.convert(window, start, stop + extra, origin=self.received - w)
        n_out = _out(self.received - self.look, self.engine.sample_rate) - _out(
            self.received - self.look - self.block, self.engine.sample_rate)
        ramp = np.sin(0.5 * np.pi * (np.arange(self.fade) + 0.5) / self.fade) ** 2
        y = y.astype(np.float32, copy=True)
        if self.received > self.block:                       # the first block has nothing to join
            y[:self.fade] = y[:self.fade] * ramp + self.tail * ramp[::-1]
        self.tail = y[n_out:n_out + self.fade].copy()
        if self.received <= self.look + self.block:          # the held-back start: drop the samples before 0
            skip = _out(self.look + self.block - self.received, self.engine.sample_rate)
            return np.clip(y[skip:n_out], -0.99, 0.99)
        return np.clip(y[:n_out], -0.99, 0.99)
