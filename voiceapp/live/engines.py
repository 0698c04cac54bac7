"""Window converters: one call converts the newest window of 16 kHz input into the voice, for one output span.

Each engine sees the whole window (left context + the new block + the look-ahead) so that its content encoder and
pitch tracker have the context they need, and returns only the output span asked for, at its own rate:

    passthrough  the input itself, resampled (the do-nothing baseline of the benchmarks; a live session's last level)
    silence      zeros (a closed noise gate)
    world        instant/quick voices: f0 + Whisper block-3 content + kNN frames (+ quick net) -> WORLD synthesis;
                 the frame matching runs on the span's content frames (+ the net's receptive field) only, and in a
                 live session reuses the neighbours of content frames already emitted
    rvc          RVC's synthesizer: content (+ index blend, protect) and pitch -> decoder of the span only

A live session shares one `PitchTrack` between its levels: emitted frames keep their f0, new frames continue it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from voiceapp.infer import steps
from voiceapp.infer.steps import SAMPLE_RATE, WINDOW

if TYPE_CHECKING:
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.services import Services


class PitchTrack:
    """The pitch of a stream, carried across blocks (10 ms frames numbered from the stream's start).

    Frames already emitted keep the f0 they were synthesised with (a later, shorter view of them is not used);
    new frames continue the track: an octave jump against the median of the last second of voiced raw pitch is
    folded back (pitch trackers halve or double for a frame or two; a real leap moves that median within half a
    second and is then kept), and voicing has a one-frame hysteresis (a lone unvoiced frame inside voicing is
    bridged, a lone voiced frame in silence is dropped). Raw f0 in, corrected f0 out, before any transpose.
    """

    KEEP_FRAMES = 300          # committed frames remembered (3 s)
    MEDIAN_FRAMES = 100        # the reference median: the last second of voiced raw pitch
    FOLD_OCTAVES = 0.75        # a frame further than this from the reference is moved by whole octaves

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.committed: dict[int, float] = {}
        self.raw: dict[int, float] = {}

    def fix(self, f0_hz: np.ndarray, origin_frame: int, commit_until: int) -> np.ndarray:
        """`f0_hz[i]` is frame `origin_frame + i`; frames before `commit_until` (window frame index) are emitted
        by this call and are remembered."""
        f0 = np.asarray(f0_hz, dtype=np.float32).copy()
        raw = f0.copy()
        ref = self._reference()
        fresh = np.ones(len(f0), dtype=bool)
        for i in range(len(f0)):
            kept = self.committed.get(origin_frame + i)
            if kept is not None:
                f0[i], fresh[i] = kept, False
            elif ref and f0[i] > 0:
                octaves = np.log2(f0[i] / ref)
                if abs(octaves) > self.FOLD_OCTAVES:
                    f0[i] = f0[i] * 2.0 ** -round(float(octaves))
        for i in range(1, len(f0) - 1):
            if fresh[i] and f0[i] <= 0 < f0[i - 1] and f0[i + 1] > 0:
                f0[i] = 0.5 * (f0[i - 1] + f0[i + 1])
            elif fresh[i] and f0[i] > 0 and f0[i - 1] <= 0 and f0[i + 1] <= 0:
                f0[i] = 0.0
        for i in range(min(max(commit_until, 0), len(f0))):
            if fresh[i]:
                self.committed[origin_frame + i] = float(f0[i])
                self.raw[origin_frame + i] = float(raw[i])
        self._forget(origin_frame + commit_until - self.KEEP_FRAMES)
        return f0

    def known_frames(self, origin_frame: int, n: int) -> int:
        """How many of the `n` frames from `origin_frame` on, counted from the first, the track already holds."""
        held = 0
        while held < n and origin_frame + held in self.committed:
            held += 1
        return held

    def _reference(self) -> float:
        if not self.raw:
            return 0.0
        last = max(self.raw)
        voiced = [v for k, v in self.raw.items() if k > last - self.MEDIAN_FRAMES and v > 0]
        return float(np.median(voiced)) if len(voiced) >= 10 else 0.0

    def _forget(self, before: int) -> None:
        for store in (self.committed, self.raw):
            for k in [k for k in store if k < before]:
                del store[k]


class WindowEngine:
    """Base: `convert(window, start, stop, origin)` -> output samples at `sample_rate` for input samples
    [start, stop) of the 16 kHz `window` (positions may lie a little outside the window's real audio);
    `origin` is the stream position (16 kHz samples, a multiple of 160) of `window[0]`, for the pitch track.
    This base is the passthrough: the input itself, resampled."""

    name = "passthrough"
    sample_rate = SAMPLE_RATE
    pitch: PitchTrack | None = None     # shared by the quality levels of a live session

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = int(sample_rate)

    def reset(self) -> None:
        """Forget the state of a stream (a new session)."""

    def convert(self, window: np.ndarray, start: int, stop: int, origin: int = 0) -> np.ndarray:
        out_start, out_stop = _out(start, self.sample_rate), _out(stop, self.sample_rate)
        from voiceapp.audio import resample

        y = resample(window, SAMPLE_RATE, self.sample_rate) if self.sample_rate != SAMPLE_RATE else window
        return _span(y, out_start, out_stop)


def _bf16_convs(net: Any) -> Any:
    """A copy of `net` with its 1-D convolutions' weights in bfloat16 (run under bf16 autocast: the same numbers as
    autocast on the float32 net, without casting the weights at every call; 4.95 -> 4.35 ms per 40 ms block)."""
    import copy

    import torch

    fast = copy.deepcopy(net)
    for module in fast.modules():
        if isinstance(module, torch.nn.Conv1d):
            module.to(torch.bfloat16)
    return fast.eval()


def _out(position: int, rate: int) -> int:
    return int(round(position * rate / SAMPLE_RATE))


def _span(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """audio[start:stop], zeros where the span leaves `audio`."""
    out = np.zeros(max(0, stop - start), dtype=np.float32)
    lo, hi = max(start, 0), min(stop, len(audio))
    if hi > lo:
        out[lo - start:hi - start] = audio[lo:hi]
    return out


class Silence(WindowEngine):
    """Zeros (a closed noise gate): costs no conversion."""

    name = "silence"

    def convert(self, window: np.ndarray, start: int, stop: int, origin: int = 0) -> np.ndarray:
        return np.zeros(_out(stop, self.sample_rate) - _out(start, self.sample_rate), dtype=np.float32)


def receptive_frames(net: Any) -> int:
    """Content frames each side that change one output frame of a 1-D conv net, + 2 frames of margin."""
    from torch import nn

    return sum(m.dilation[0] * (m.kernel_size[0] - 1) // 2 for m in net.modules() if isinstance(m, nn.Conv1d)) + 2


SHORT_WINDOW_S = 0.5       # encoder windows up to this long (a short-context level) are padded to it, not to 1 s
PITCH_MARGIN_FRAMES = 20   # 10 ms frames of audio the pitch tracker sees before the first frame not yet emitted


def _pitch(engine: WindowEngine, window: np.ndarray, n: int, start: int, stop: int, origin: int) -> np.ndarray:
    """Raw f0 of the window's `n` frames, continued from the session's pitch track when there is one.

    With a track, the frames it already holds (emitted by earlier blocks) keep their f0, so the tracker runs
    only on the window's tail: the new frames plus `PITCH_MARGIN_FRAMES` before them (at 40 ms blocks a quarter
    of the window)."""
    track = engine.pitch
    skip = track.known_frames(origin // WINDOW, n) if track is not None else 0
    skip = max(0, skip - PITCH_MARGIN_FRAMES)
    tail = np.asarray(engine.parts.f0_fn(window[skip * WINDOW:]), dtype=np.float32)
    f0 = np.concatenate([np.zeros(skip, dtype=np.float32), steps.fit_frames(tail, n - skip)])
    if track is not None:
        f0 = track.fix(f0, origin // WINDOW, stop // WINDOW)
    return f0


class _CachedSearch:
    """A matcher that reuses the nearest frames found for content frames already emitted (keyed by their stream
    frame): each block searches only its new frames, and the frames left of the span keep the neighbours they
    were synthesised with (the content state carried across blocks; a quick net's receptive field reaches
    ~0.7 s back, so without this every block would search the whole window)."""

    def __init__(self, matcher: Any, store: dict[int, np.ndarray], keys: list[int], emitted_before: int) -> None:
        self.matcher, self.store, self.keys, self.emitted_before = matcher, store, keys, emitted_before

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        if len(queries) != len(self.keys):
            return self.matcher.search(queries, k)
        rows = [self.store.get(key) for key in self.keys]
        todo = [i for i, row in enumerate(rows) if row is None or len(row) != k]
        if todo:
            for i, row in zip(todo, self.matcher.search(queries[todo], k)):
                rows[i] = row
                if self.keys[i] + 2 <= self.emitted_before:    # both 10 ms frames of this content frame emitted
                    self.store[self.keys[i]] = row
        return np.stack(rows) if rows else np.zeros((0, k), dtype=np.int64)


class WorldWindow(WindowEngine):
    """instant/quick voices (infer/world_engine.py) on one window; the same settings as the Inference tab.

    Content and pitch see the whole window; the frame matching (and the quick net) runs on the content frames of
    the span only, plus `margin_frames` each side (the net's receptive field), which gives the same frames as the
    whole window at a fraction of the cost; WORLD synthesises the span's frames (+2 each side)."""

    def __init__(self, voice: Any, cfg: InferConfig, services: Services) -> None:
        from dataclasses import replace

        from voiceapp.index.neighbours import FrameMatcher
        from voiceapp.infer.models import cached
        from voiceapp.infer.speed import cpu_has_fast_bf16
        from voiceapp.infer.world_engine import _load_parts

        self.name, self.voice, self.cfg = voice.engine, voice, cfg
        self.sample_rate = int(voice.sample_rate)
        self.parts = _load_parts(voice, cfg, services)
        stamp = voice.path.stat().st_mtime if voice.path.exists() else 0.0
        # a block searches a few frames: the inverted file, not a scan of every target frame per query
        self.parts = replace(self.parts, matcher=cached(services, ("matcher-live", str(voice.path), stamp),
                                                        lambda: FrameMatcher(voice.content, approximate=True)))
        # the content encoder in bfloat16 where the CPU runs it fast (frames within cosine 0.9999)
        self.encoder_bf16 = bool(getattr(self.parts.encoder, "low_precision", False)) and cpu_has_fast_bf16()
        self.net_bf16 = voice.net is not None and cpu_has_fast_bf16()     # the quick net likewise (2x) ...
        if self.net_bf16:                   # ... from a copy whose conv weights are bf16 already (not cast per call)
            self.voice = replace(voice, net=cached(services, ("quick-net-bf16", str(voice.path), stamp),
                                                   lambda: _bf16_convs(voice.net)))
        self.margin_frames = 2 if voice.net is None else receptive_frames(voice.net)
        self.synth_frames = 2          # 10 ms frames synthesised each side of the span
        self.matches: dict[int, np.ndarray] | None = None   # live: nearest frames of emitted content frames

    def reset(self) -> None:
        if self.matches is not None:
            self.matches = {}

    def _encode(self, window: np.ndarray) -> np.ndarray:
        """Content frames of the window; a short-context level's window (<= SHORT_WINDOW_S) padded to that length
        instead of a whole second: ~15 % less per block (the encoder attends over every padded frame)."""
        encoder = self.parts.encoder
        if not getattr(encoder, "low_precision", False):
            return encoder.encode(window)
        pad_to = SHORT_WINDOW_S if len(window) <= SHORT_WINDOW_S * SAMPLE_RATE else None
        return encoder.encode(window, bf16=self.encoder_bf16, pad_to_s=pad_to)

    def convert(self, window: np.ndarray, start: int, stop: int, origin: int = 0) -> np.ndarray:
        from dataclasses import replace

        from voiceapp.audio.world import WorldFrames, synthesize
        from voiceapp.infer.world_engine import _acoustic_frames

        n = len(window) // WINDOW + 1
        f0 = steps.transpose_f0(_pitch(self, window, n, start, stop, origin), self.cfg.transpose_semitones)
        encoded = self._encode(window)
        content = steps.fit_frames(np.asarray(encoded, dtype=np.float32), (n + 1) // 2)
        lo = max(0, start // WINDOW - self.synth_frames)      # synthesise only the frames of the span (+ a margin)
        hi = min(n, -(-stop // WINDOW) + self.synth_frames + 1)
        c_lo = max(0, lo // 2 - self.margin_frames)           # content frames (50/s) the span's frames depend on
        c_hi = min(len(content), -(-hi // 2) + self.margin_frames)
        parts = self.parts
        if self.matches is not None and origin % (2 * WINDOW) == 0:
            first = origin // WINDOW                          # stream frame (10 ms) of window frame 0
            keys = [first + 2 * j for j in range(c_lo, c_hi)]
            parts = replace(parts, matcher=_CachedSearch(parts.matcher, self.matches, keys, first + stop // WINDOW))
            for key in [k for k in self.matches if k < first]:
                del self.matches[key]
        s0, s1 = (lo - 2 * c_lo) // 2, -(-(hi - 2 * c_lo) // 2)  # the span's content frames, in the slice
        sp, ap = _acoustic_frames(self.voice, parts, content[c_lo:c_hi], f0[2 * c_lo:min(n, 2 * c_hi)],
                                  self.cfg, self.cfg.neighbour_blend, bf16=self.net_bf16, span=(s0, s1))
        sp, ap = sp[lo - 2 * c_lo - 2 * s0:hi - 2 * c_lo - 2 * s0], ap[lo - 2 * c_lo - 2 * s0:hi - 2 * c_lo - 2 * s0]
        wav = synthesize(f0[lo:hi], WorldFrames(sp, ap, self.sample_rate))
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

    def convert(self, window: np.ndarray, start: int, stop: int, origin: int = 0) -> np.ndarray:
        from voiceapp.features.f0 import coarse_f0
        from voiceapp.infer.pipeline import _piece_features, _synthesize, _Timer

        n = len(window) // WINDOW
        pitch = pitchf = None
        if self.parts.f0_fn is not None:
            f0 = _pitch(self, window, n, start, stop, origin)
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
