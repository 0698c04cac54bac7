"""A live session: device-rate audio in, converted device-rate audio out, at a fixed latency (the Live tab).

    device rate -> resampler stream -> 16 kHz blocks -> noise gate -> the quality level in use (StreamConverter:
    window history, crossfaded joins, pitch track) -> engine rate -> resampler stream -> device rate -> FIFO

The two resampler streams (audio/stream_resample.py) hold back ~1-2 ms each; soxr's held back ~11 ms each.

The FIFO releases exactly `input samples - latency_samples` samples over the session, so the output never falls
further behind than the latency; when compute cannot keep up the session steps down a quality level (a lighter
pitch tracker, a shorter encoder context, at last the input itself) and, when the caller hands over more blocks at
once than the current level can convert in time, the older ones pass through unconverted (counted as dropped).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from voiceapp.audio import highpass
from voiceapp.errors import ConfigError
from voiceapp.infer.steps import SAMPLE_RATE
from voiceapp.live.engines import PitchTrack, Silence, WindowEngine
from voiceapp.live.stream import LiveConfig, StreamConverter

if TYPE_CHECKING:
    from voiceapp.services import Services

LOAD_BUDGET = 0.8           # a level whose median load exceeds this is too slow: step down
HEADROOM = 0.5              # step back up only while the level in use stays below this ...
UP_WAIT_S = 3.0             # ... for this long (doubled each time the level above fails again, up to MAX_WAIT_S)
MAX_WAIT_S = 60.0
CATCH_UP = 1.5              # blocks arriving together are all converted while their estimated cost stays below this
                            # many block lengths (the page's jitter margin absorbs it); beyond it the older pass through
BEHIND_TIMES = 3            # ... and this many such catch-ups ...
BEHIND_WINDOW_S = 3.0       # ... within this long step the level down
HOPELESS = 2.0              # a level last seen at this load or more is not tried again (one block would stall the
                            # output for seconds: e.g. RVC's full model on a laptop CPU); a level on trial after a
                            # step up that costs this much on one block goes back at once
LOAD_WINDOW = 5             # blocks in the median of a level's load (a single slow block does not flip levels)
GATE_HOLD_MS = 300          # the gate stays open this long after the last block above the threshold
CONTEXT_MS = 800            # the encoder and pitch context of the top levels
SHORT_CONTEXT_MS = 300      # the "300 ms context" level
PROBE_S = 1.0               # generated audio on which open_session measures the load
LOUDNESS_S = 1.0            # the loudness mix compares the last second of input and output (offline: 1 s windows)
MAX_GAIN = 8.0


class _Loudness:
    """The Inference tab's `rms_mix_rate` on a stream: the output gets the input's loudness envelope,
    out *= rms_in^(1-rate) * rms_out^(rate-1), with both RMS over the last second (offline: centred 1 s windows,
    which a stream cannot look ahead for); the gain moves linearly across each block, so it never steps."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.reset()

    def reset(self) -> None:
        self.inp: deque = deque()
        self.out: deque = deque()
        self.gain = 1.0

    @staticmethod
    def _rms(store: deque, energy: float, seconds: float) -> float:
        store.append((energy, seconds))
        while sum(s for _, s in store) - store[0][1] >= LOUDNESS_S:
            store.popleft()
        total_s = sum(s for _, s in store)
        return math.sqrt(sum(e for e, _ in store) / max(total_s, 1e-9))

    def apply(self, block16: np.ndarray, y: np.ndarray, out_rate: int) -> np.ndarray:
        if self.rate >= 1 or not len(y):
            return y
        rms_in = self._rms(self.inp, float(np.sum(np.square(block16, dtype=np.float64))) / SAMPLE_RATE,
                           len(block16) / SAMPLE_RATE)
        rms_out = self._rms(self.out, float(np.sum(np.square(y, dtype=np.float64))) / out_rate, len(y) / out_rate)
        gain = min(MAX_GAIN, rms_in ** (1.0 - self.rate) * max(rms_out, 1e-6) ** (self.rate - 1.0))
        ramp = np.linspace(self.gain, gain, len(y) + 1, dtype=np.float32)[1:]
        self.gain = gain
        return np.clip(y * ramp, -0.99, 0.99).astype(np.float32)


@dataclass(frozen=True)
class LiveSettings:
    model: str                   # voice model name under models/voices/ (any engine) or "passthrough"
    transpose: float = 0.0       # semitones
    blend: float = 0.75          # index rate (rvc) / neighbour blend (instant, quick): the Inference tab's meaning
    f0_method: str = "pm"        # the Inference tab's pitch methods; pm is the live default (cheapest)
    block_ms: int = 100          # the latency-vs-quality control (multiple of 10, 20..500)
    lookahead_ms: int = 20
    gate_db: float | None = -50.0  # noise gate threshold (dBFS RMS); -inf/None = off
    device_rate: int = 48000     # the browser's AudioContext rate (in and out)

    def __post_init__(self) -> None:
        checks = [
            (bool(str(self.model).strip()), "model must name a voice (or be 'passthrough')"),
            (self.block_ms % 10 == 0 and 20 <= self.block_ms <= 500, f"block_ms must be a multiple of 10 in 20..500, "
                                                                     f"got {self.block_ms}"),
            (self.lookahead_ms % 10 == 0 and 10 <= self.lookahead_ms <= 200,
             f"lookahead_ms must be a multiple of 10 in 10..200, got {self.lookahead_ms}"),
            (0.0 <= self.blend <= 1.0, f"blend must be in [0, 1], got {self.blend}"),
            (-48 <= self.transpose <= 48, f"transpose must be in -48..48 semitones, got {self.transpose}"),
            (8000 <= int(self.device_rate) <= 192000, f"device_rate must be 8000..192000 Hz, got {self.device_rate}"),
            (self.gate_db is None or math.isinf(self.gate_db) or -120 <= self.gate_db <= 0,
             f"gate_db must be in -120..0 dBFS (or None/-inf: off), got {self.gate_db}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"LiveSettings: {message}.")

    @property
    def gate_on(self) -> bool:
        return self.gate_db is not None and not math.isinf(self.gate_db)


@dataclass
class Level:
    """One quality level: an engine and the context it sees (16 kHz samples before the block)."""

    name: str
    engine: WindowEngine
    context_ms: int = CONTEXT_MS


def _db(x: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)) if len(x) else -120.0


class LiveSession:
    """Feed `push` with device-rate audio; see the module docstring. Thread-safe (one lock)."""

    def __init__(self, settings: LiveSettings, levels: list[Level], *, start_level: int = 0,
                 warning: str | None = None, measured: dict[str, float] | None = None, adaptive: bool = True,
                 record: bool = False) -> None:
        """`levels` heaviest first (the last one the lightest); `adaptive=False` keeps `start_level` whatever
        the load (a file converted as if streamed); `record=True` keeps one dict per block in `records`."""
        if not levels or len({lv.engine.sample_rate for lv in levels}) != 1:
            raise ConfigError("LiveSession needs at least one level, all at one sample rate.")
        if not 0 <= start_level < len(levels):
            raise ConfigError(f"LiveSession: start_level {start_level} is not one of the {len(levels)} levels.")
        self.settings, self.levels, self.warning = settings, levels, warning
        self.adaptive, self.record = adaptive, record
        self.start_level, self.measured = start_level, dict(measured or {})
        self.engine_rate = int(levels[0].engine.sample_rate)
        self.config = LiveConfig(block_ms=settings.block_ms, lookahead_ms=settings.lookahead_ms,
                                 context_ms=max(lv.context_ms for lv in levels))
        self.silence = Silence(self.engine_rate)
        from voiceapp.infer.pipeline import InferConfig

        self.loudness = _Loudness(InferConfig().rms_mix_rate)
        self.pitch = PitchTrack()
        for level in levels:
            level.engine.pitch = self.pitch
            if hasattr(level.engine, "matches"):
                level.engine.matches = {}      # neighbours of emitted content frames carried across blocks
        self.converter = StreamConverter(levels[0].engine, self.config)
        self.block = self.converter.block
        self.latency_samples = self._latency_samples()
        self._lock = threading.Lock()
        self.reset()

    # --- public ----------------------------------------------------------------------------------------------

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.settings.device_rate

    def reset(self) -> None:
        from voiceapp.audio.stream_resample import StreamResampler

        with getattr(self, "_lock", threading.Lock()):
            rate = int(self.settings.device_rate)
            self.rs_in = StreamResampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
            self.rs_out = StreamResampler(self.engine_rate, rate) if rate != self.engine_rate else None
            self.converter.reset()
            self.pitch.reset()
            for level in self.levels:
                level.engine.reset()
            self.loudness.reset()
            self.pending16 = np.zeros(0, dtype=np.float32)
            self.hp_state = None
            self.fifo = np.zeros(0, dtype=np.float32)
            self.received = self.emitted = 0
            self.level = self.start_level
            self.loads: list[deque] = [deque(maxlen=LOAD_WINDOW) for _ in self.levels]
            self.up_wait_s = [UP_WAIT_S for _ in self.levels]
            self.blocks_at_level = 0
            self.last_step_up_block = -10**9
            self.behind_at: list[int] = []
            self.load = 0.0
            self.blocks = self.dropped = 0
            self.in_db = self.out_db = -120.0
            self.gate_open = not self.settings.gate_on
            self.gate_hold = 0
            self.last_compute_ms = 0.0
            self.records: list[dict[str, Any]] = []

    def push(self, samples: np.ndarray) -> np.ndarray:
        """float32 mono at `settings.device_rate` (any length) -> the output produced so far (device rate); over
        the session output length == input length - `latency_samples` (from the first `latency_samples` on)."""
        x = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
        with self._lock:
            self.received += len(x)
            x16 = self.rs_in.resample_chunk(x) if self.rs_in is not None else x
            if len(x16):       # RVC's 48 Hz high-pass, causal here (offline: zero-phase over the file)
                x16, self.hp_state = highpass(x16, SAMPLE_RATE, state=self.hp_state)
            self.pending16 = np.concatenate([self.pending16, x16.astype(np.float32, copy=False)])
            n_blocks = len(self.pending16) // self.block
            if n_blocks:
                self._run_blocks(n_blocks)
            want = max(0, self.received - self.latency_samples - self.emitted)
            out, self.fifo = self.fifo[:want], self.fifo[want:]
            self.emitted += len(out)
            return out.copy()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"load": round(float(self.load), 3), "level": self.levels[self.level].name,
                    "degraded": self.level > 0, "in_db": round(self.in_db, 1), "out_db": round(self.out_db, 1),
                    "gate_open": bool(self.gate_open), "latency_ms": round(self.latency_ms, 1),
                    "blocks": int(self.blocks), "dropped": int(self.dropped), "warning": self._warning_now(),
                    "compute_ms": round(self.last_compute_ms, 2), "levels": [lv.name for lv in self.levels]}

    def _warning_now(self) -> str | None:
        if self.warning or self.level == 0:
            return self.warning
        top = self._level_load(0)
        return (f"This machine cannot keep up with the settings as set right now (load {top:.1f} at "
                f"{self.settings.block_ms} ms blocks): playing at a lower quality ({self.levels[self.level].name}).")

    # --- blocks ----------------------------------------------------------------------------------------------

    def _run_blocks(self, n_blocks: int) -> None:
        """Convert the pending blocks; when the level in use cannot convert them all within the budget, the
        older ones pass through (dropped) and the newest are converted."""
        estimate = self._level_load(self.level)
        convert_n = n_blocks
        if (self.adaptive and n_blocks > 1 and self.level < len(self.levels) - 1
                and estimate * n_blocks > CATCH_UP):
            convert_n = max(1, int(CATCH_UP / max(estimate, 1e-6)))
            if estimate > LOAD_BUDGET:
                self._step(+1)                  # behind, and this level is too slow anyway
            else:
                self._note_overload()           # behind: a hiccup, or this level is too slow now
        for i in range(n_blocks):
            block, self.pending16 = self.pending16[:self.block], self.pending16[self.block:]
            self._block(block, dropped=i < n_blocks - convert_n)

    def _block(self, block: np.ndarray, dropped: bool) -> None:
        self.blocks += 1
        self.in_db = _db(block)
        self._gate(block)
        level = self.levels[self.level]
        compute = cpu = 0.0
        if not self.gate_open:
            y = self.converter.convert_block(block, self.silence)
        elif dropped:
            self.dropped += 1
            y = self.converter.convert_block(block, self.levels[-1].engine, self.levels[-1].context_ms * 16)
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            y = self.converter.convert_block(block, level.engine, level.context_ms * 16)
            compute, cpu = time.perf_counter() - t0, time.process_time() - c0
            self.last_compute_ms = 1000.0 * compute
            self._account(compute / (self.block / SAMPLE_RATE))
        y = self.loudness.apply(block, y, self.engine_rate)
        self.out_db = _db(y)
        if self.record:
            self.records.append({"block": self.blocks, "level": level.name if self.gate_open and not dropped
                                 else "gate closed" if not self.gate_open else "passthrough (dropped)",
                                 "compute_ms": 1000.0 * compute, "load": compute / (self.block / SAMPLE_RATE),
                                 "cpu_ms": 1000.0 * cpu})   # process CPU time: all threads (faiss, torch)
        y = self.rs_out.resample_chunk(y) if self.rs_out is not None else y
        self.fifo = np.concatenate([self.fifo, y.astype(np.float32, copy=False)])

    def _gate(self, block: np.ndarray) -> None:
        if not self.settings.gate_on:
            self.gate_open = True
            return
        look = self.converter.history[-self.converter.look:] if self.converter.look else block[:0]
        loud = _db(np.concatenate([block, look])) >= float(self.settings.gate_db)   # opens on the look-ahead
        hold = max(1, -(-GATE_HOLD_MS // self.settings.block_ms))
        self.gate_hold = hold if loud else max(0, self.gate_hold - 1)
        self.gate_open = loud or self.gate_hold > 0

    # --- adaptation ------------------------------------------------------------------------------------------

    def _level_load(self, index: int) -> float:
        recent = self.loads[index]
        if recent:
            return float(np.median(recent))
        return float(self.measured.get(self.levels[index].name, 0.0))

    def _account(self, load: float) -> None:
        self.load = load if self.load == 0 else 0.7 * self.load + 0.3 * load
        self.loads[self.level].append(load)
        self.blocks_at_level += 1
        if not self.adaptive:
            return
        on_trial = self.blocks_at_level <= 3 and self.last_step_up_block == self.blocks - self.blocks_at_level
        if (len(self.loads[self.level]) >= 3 and float(np.median(self.loads[self.level])) > LOAD_BUDGET) or (
                on_trial and load >= HOPELESS):
            self._step(+1)
            return
        waited_s = self.blocks_at_level * self.block / SAMPLE_RATE
        if (self.level > 0 and len(self.loads[self.level]) >= 3 and waited_s >= self.up_wait_s[self.level - 1]
                and float(np.median(self.loads[self.level])) < HEADROOM
                and self._level_load(self.level - 1) < HOPELESS):
            self._step(-1)

    def _note_overload(self) -> None:
        """Behind once is a hiccup of the machine or the transport (the older blocks passed through); behind
        BEHIND_TIMES times within BEHIND_WINDOW_S means this level cannot keep up: step down."""
        window = int(BEHIND_WINDOW_S * SAMPLE_RATE / self.block)
        self.behind_at = [b for b in self.behind_at if self.blocks - b < window] + [self.blocks]
        if len(self.behind_at) >= BEHIND_TIMES:
            self.behind_at = []
            self._step(+1)

    def _step(self, direction: int) -> None:
        target = self.level + direction
        if not 0 <= target < len(self.levels):
            return
        seconds = (self.blocks - self.last_step_up_block) * self.block / SAMPLE_RATE
        if direction > 0 and seconds < 2.0:    # the level we came up to failed again at once: wait longer
            self.up_wait_s[self.level] = min(MAX_WAIT_S, 2 * self.up_wait_s[self.level])
        if direction < 0:
            self.last_step_up_block = self.blocks
            self.loads[target].clear()
        self.level, self.blocks_at_level = target, 0

    def _latency_samples(self) -> int:
        """Block + look-ahead + what the two resampler streams hold back at most (measured on zeros), device rate."""
        rate = int(self.settings.device_rate)
        held = 0.0
        if rate != SAMPLE_RATE:
            held += _held_back(rate, SAMPLE_RATE, [128, 441, 1000, 3001, rate // 10]) * rate / SAMPLE_RATE
        if rate != self.engine_rate:
            spans = [_rate_block(self.block, self.engine_rate)]
            held += _held_back(self.engine_rate, rate, spans)
        base = (self.block + self.converter.look) * rate / SAMPLE_RATE
        return int(math.ceil(base + held)) + 2


def _rate_block(block16: int, rate: int) -> int:
    return int(round(block16 * rate / SAMPLE_RATE))


def _held_back(in_rate: int, out_rate: int, chunks: list[int], seconds: float = 3.0) -> float:
    """The most output samples a resampler stream (in_rate -> out_rate) holds back, fed in chunks of these sizes."""
    from voiceapp.audio.stream_resample import StreamResampler

    worst = 0.0
    for chunk in chunks:
        stream = StreamResampler(in_rate, out_rate)
        n_in = n_out = 0
        while n_in < seconds * in_rate:
            n_out += len(stream.resample_chunk(np.zeros(chunk, dtype=np.float32)))
            n_in += chunk
            worst = max(worst, n_in * out_rate / in_rate - n_out)
    return worst


# --- building a session ------------------------------------------------------------------------------------------


_BLAS_LOCK = threading.Lock()
_BLAS_USERS: list[Any] = []     # the threadpoolctl limiter while any session thread runs, one entry per thread


@contextlib.contextmanager
def one_compute_thread() -> Iterator[None]:
    """One intra-op torch thread for the calling thread (OpenMP's setting is per thread), and one BLAS thread for
    the process, while a session runs there.

    - torch: the small matrices of one block gain no wall time from a second thread (Whisper's encoder on a 1 s
      window: 11.3 ms with one, 12.1 ms with two) but take twice the CPU, with 80-115 ms stalls every few blocks
      when the other core is busy (the page's audio, another session). Restored after.
    - BLAS (threadpoolctl): numpy's OpenBLAS runs a small product in each block (the log-mel) on two threads,
      and its second thread then spins waiting for the next one: 0.58 of a core in the app for nothing, taken
      from the browser and the session (instant voice at 60 ms blocks: load 0.43 -> 0.28, end to end 156 -> 139
      ms). OpenBLAS's thread count is per process, so it is one while any session runs and restored when the
      last one ends (numpy products elsewhere in the app run on one thread meanwhile).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with _BLAS_LOCK:
        if not _BLAS_USERS:
            from threadpoolctl import threadpool_limits

            _BLAS_USERS.append(threadpool_limits(limits=1, user_api="blas"))
        else:
            _BLAS_USERS.append(_BLAS_USERS[0])
    try:
        yield
    finally:
        torch.set_num_threads(before)
        with _BLAS_LOCK:
            limiter = _BLAS_USERS.pop()
            if not _BLAS_USERS:
                limiter.restore_original_limits()


def build_levels(settings: LiveSettings, services: Services) -> tuple[list[Level], Any]:
    """The quality levels for the settings, heaviest first, and the loaded voice (None for "passthrough")."""
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.live.engines import window_engine

    if settings.model.strip().lower() == "passthrough":
        return [Level("passthrough", WindowEngine(SAMPLE_RATE))], None
    from voiceapp.infer.models import load_voice

    voice = load_voice(settings.model, services)
    base = InferConfig(f0_method=settings.f0_method, transpose_semitones=settings.transpose,
                       index_rate=settings.blend, neighbour_blend=settings.blend)
    index = None
    if getattr(voice, "engine", "rvc") == "rvc":
        from pathlib import Path

        from voiceapp.voices.store import find_index

        index = find_index(Path(str(voice.path)), services.workspace)
    top = window_engine(voice, base, services=services, index_path=index)
    levels = [Level("as set", top)]
    pm = top
    if (settings.f0_method or "") != "pm" and getattr(voice, "use_f0", True):
        pm = window_engine(voice, replace(base, f0_method="pm"), services=services, index_path=index)
        levels.append(Level("pm pitch", pm))
    levels.append(Level(f"pm pitch, {SHORT_CONTEXT_MS} ms context", pm, SHORT_CONTEXT_MS))
    levels.append(Level("passthrough", WindowEngine(top.sample_rate)))
    for level in levels:
        if hasattr(level.engine, "matches"):
            level.engine.matches = {}          # live: neighbours of emitted content frames carried across blocks
    return levels, voice


def measure_level(level: Level, settings: LiveSettings, seconds: float = PROBE_S) -> float:
    """Median load (compute / block length) of one level on `seconds` of a generated voiced signal (or on 4
    blocks, when they take longer than that), the first block (warm-up) left out."""
    cfg = LiveConfig(block_ms=settings.block_ms, lookahead_ms=settings.lookahead_ms,
                     context_ms=max(level.context_ms, CONTEXT_MS))
    conv = StreamConverter(level.engine, cfg)
    saved, level.engine.pitch = level.engine.pitch, PitchTrack()
    level.engine.reset()
    x = _probe_voice(seconds)
    loads = []
    started = time.perf_counter()
    try:
        for i in range(0, len(x) - conv.block + 1, conv.block):
            t0 = time.perf_counter()
            conv.convert_block(x[i:i + conv.block], level.engine, level.context_ms * 16)
            loads.append((time.perf_counter() - t0) / (conv.block / SAMPLE_RATE))
            if len(loads) >= 4 and time.perf_counter() - started > seconds:
                break                  # a heavy model: 3 blocks after the first (warm-up) tell, opening stays quick
    finally:
        level.engine.pitch = saved
        level.engine.reset()
    return float(np.median(loads[1:] or loads))


def _probe_voice(seconds: float) -> np.ndarray:
    """A vowel-like voiced signal with a gliding pitch (16 kHz)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140.0 + 30.0 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _describe(voice: Any) -> str:
    engine = getattr(voice, "engine", "rvc")
    rate = f"{int(voice.sample_rate) / 1000:g} kHz"
    if engine == "rvc":
        return f"rvc model ({rate}, {getattr(voice, 'version', '?')})"
    return f"{engine} voice ({rate})"


def _warning(voice: Any, settings: LiveSettings, levels: list[Level], measured: dict[str, float],
             start: int) -> str | None:
    """The "too heavy" line of the Live tab, or None when the settings as set keep up."""
    top = measured.get(levels[0].name, 0.0)
    if voice is None or top <= LOAD_BUDGET:
        return None
    what = _describe(voice)
    if getattr(voice, "engine", "rvc") != "rvc" and settings.f0_method != "pm":
        what += f" with {settings.f0_method} pitch"
    if start == len(levels) - 1:
        plays = "even its lightest level does not keep up, so it plays the input unconverted"
    else:
        plays = f"it plays at a lower quality ({levels[start].name}, load {measured[levels[start].name]:.1f})"
    lighter = ("An instant or quick voice is several times lighter (bench/RESULTS.md, live section) and is the one "
               "to use live here." if getattr(voice, "engine", "rvc") == "rvc" else
               "An instant voice is the lightest engine." if voice.engine == "quick" else "")
    return (f"This {what} is too heavy for live use on this machine (load {top:.1f} at {settings.block_ms} ms "
            f"blocks): {plays}. {lighter}").strip()


def open_session(settings: LiveSettings, services: Services, *, level: str | None = None, adaptive: bool = True,
                 record: bool = False) -> LiveSession:
    """Loads the model (VoiceAppError naming it when it is missing or broken), builds the quality levels once,
    measures the load of the top level on ~1 s of generated audio (so `stats()["warning"]` is right before the
    first block) and, when it is too heavy, the lighter levels until one keeps up; returns a session starting at
    the best level that keeps up (or at `level`, by name)."""
    levels, voice = build_levels(settings, services)
    measured: dict[str, float] = {}
    start = 0
    for i, candidate in enumerate(levels[:-1]):
        measured[candidate.name] = measure_level(candidate, settings)
        start = i
        if measured[candidate.name] <= LOAD_BUDGET:
            break
        start = i + 1
    warning = _warning(voice, settings, levels, measured, start)
    if level is not None:
        names = [lv.name for lv in levels]
        if level not in names:
            raise ConfigError(f"Unknown live quality level {level!r} for {settings.model}; choose one of "
                              f"{', '.join(names)}.")
        start = names.index(level)
    session = LiveSession(settings, levels, start_level=start, warning=warning, measured=measured,
                          adaptive=adaptive, record=record)
    _warm_up(session)
    return session


def _warm_up(session: LiveSession) -> None:
    """A few blocks of the probe voice through the session's own path, then a reset: its first real block no
    longer pays the lazy imports and first-call kernel set-up (scipy's filters alone took 0.7 s), a stall the page
    would answer by widening its jitter margin for seconds."""
    rate = int(session.settings.device_rate)
    probe = _probe_voice(3 * session.block / SAMPLE_RATE + 0.05)
    if rate != SAMPLE_RATE:
        from voiceapp.audio import resample

        probe = resample(probe, SAMPLE_RATE, rate)
    adaptive, session.adaptive = session.adaptive, False
    try:
        session.push(probe)
    finally:
        session.adaptive = adaptive
        session.reset()
