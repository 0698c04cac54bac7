"""Window converters: one call converts the newest window of 16 kHz input into the voice, for one output span.

Each engine sees the whole window (left context + the new block + the look-ahead) so that its content encoder and
pitch tracker have the context they need, and returns only the output span asked for, at its own rate:

    passthrough  the input itself, resampled (the do-nothing baseline of the benchmarks)
    world        instant/quick voices: f0 + Whisper block-3 content + kNN frames (+ quick net) -> WORLD synthesis
    rvc          RVC's synthesizer: content (+ index blend, protect) and pitch -> decoder of the span only
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from voiceapp.infer import steps
from voiceapp.infer.steps import SAMPLE_RATE, WINDOW

if TYPE_CHECKING:
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.services import Services

class WindowEngine:
    """Base: `convert(window, start, stop)` -> output samples at `sample_rate` for input samples
    [start, stop) of the 16 kHz `window` (positions may lie a little outside the window's real audio)."""

    name = "passthrough"
    sample_rate = SAMPLE_RATE

    def convert(self, window: np.ndarray, start: int, stop: int) -> np.ndarray:
        out_start, out_stop = _out(start, self.sample_rate), _out(stop, self.sample_rate)
        from voiceapp.audio import resample

        y = resample(window, SAMPLE_RATE, self.sample_rate) if self.sample_rate != SAMPLE_RATE else window
        return _span(y, out_start, out_stop)


def _out(position: int, rate: int) -> int:
    return int(round(position * rate / SAMPLE_RATE))


def _span(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """audio[start:stop], zeros where the span leaves `audio`."""
    out = np.zeros(max(0, stop - start), dtype=np.float32)
    lo, hi = max(start, 0), min(stop, len(audio))
    if hi > lo:
        out[lo - start:hi - start] = audio[lo:hi]
    return out


class WorldWindow(WindowEngine):
    """instant/quick voices (infer/world_engine.py) on one window; the same settings as the Inference tab."""

    def __init__(self, voice: Any, cfg: InferConfig, services: Services) -> None:
        from voiceapp.infer.world_engine import _load_parts

        self.name, self.voice, self.cfg = voice.engine, voice, cfg
        self.sample_rate = int(voice.sample_rate)
        self.parts = _load_parts(voice, cfg, services)

    def convert(self, window: np.ndarray, start: int, stop: int) -> np.ndarray:
        from voiceapp.audio.world import WorldFrames, synthesize
        from voiceapp.infer.world_engine import _acoustic_frames

        n = len(window) // WINDOW + 1
        f0 = steps.fit_frames(np.asarray(self.parts.f0_fn(window), dtype=np.float32), n)
        f0 = steps.transpose_f0(f0, self.cfg.transpose_semitones)
        content = np.asarray(self.parts.encoder.encode(window), dtype=np.float32)
        lo = max(0, start // WINDOW - 2)                      # synthesise only the frames of the span (+2 each side)
        hi = min(n, -(-stop // WINDOW) + 3)
        sp, ap = _acoustic_frames(self.voice, self.parts, content, f0, self.cfg, self.cfg.neighbour_blend)
        wav = synthesize(f0[lo:hi], WorldFrames(sp[lo:hi], ap[lo:hi], self.sample_rate))
        first = _out(lo * WINDOW, self.sample_rate)           # output sample of wav[0]
        return _span(wav, _out(start, self.sample_rate) - first, _out(stop, self.sample_rate) - first)


class RvcWindow(WindowEngine):
    """RVC voices (infer/pipeline.py) on one window: content and pitch of the whole window, decoder of the span."""

    name = "rvc"

    def __init__(self, voice: Any, cfg: InferConfig, index_path: Any, services: Services) -> None:
        import torch

        from voiceapp.infer.pipeline import _load_parts

        self.voice, self.cfg = voice, cfg
        self.sample_rate = int(voice.sample_rate)
        self.hop = int(voice.config.hop_length)
        self.parts = _load_parts(voice, cfg, index_path, services)
        device = str(next(voice.net.parameters()).device)
        self.generator = torch.Generator(device=device).manual_seed(int(cfg.seed))

    def convert(self, window: np.ndarray, start: int, stop: int) -> np.ndarray:
        from voiceapp.features.f0 import coarse_f0
        from voiceapp.infer.pipeline import _piece_features, _synthesize, _Timer

        n = len(window) // WINDOW
        pitch = pitchf = None
        if self.parts.f0_fn is not None:
            f0 = steps.fit_frames(np.asarray(self.parts.f0_fn(window), dtype=np.float32), n)
            pitchf = steps.transpose_f0(f0, self.cfg.transpose_semitones)
            pitch = np.asarray(coarse_f0(pitchf), dtype=np.int64)
        timer = _Timer()
        feats, _ = _piece_features(self.parts, window, n, pitchf, self.cfg, timer, 0.0)
        head = max(0, start // WINDOW - 2)
        length = min(n, -(-stop // WINDOW) + 2) - head
        wav = _synthesize(self.parts.run_voice, feats, pitch, pitchf, self.cfg, self.generator, head, length, n)
        first = head * self.hop
        return _span(wav, _out(start, self.sample_rate) - first, _out(stop, self.sample_rate) - first)


def window_engine(voice: Any, cfg: InferConfig, *, services: Services, index_path: Any = None) -> WindowEngine:
    """The window converter for a loaded voice of any engine (the file says which)."""
    if getattr(voice, "engine", "rvc") != "rvc":
        return WorldWindow(voice, cfg, services)
    return RvcWindow(voice, cfg, index_path, services)
