"""One conversion's pieces, after the pitch: content features, then synthesis, piece after piece (`convert_serial`)
or overlapped in worker threads (`convert_overlapped`, what `conversion_workers` > 1 picks), with the same output.

`parts` is pipeline._Parts (encoder, retrieval, the voice to run) and `cfg` an InferConfig; the noise generator
is drawn from in piece order on either path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from voiceapp.infer import steps
from voiceapp.infer.steps import WINDOW
from voiceapp.progress import CancelToken, Progress


class Timer:
    """Wall seconds per step, plus this process's CPU seconds per step under "cpu_<step>" (CPU time is what a
    step costs even when other programs share the cores)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._cpu = time.process_time()

    def add(self, key: str, started: float) -> float:
        now, cpu = time.perf_counter(), time.process_time()
        self.totals[key] = self.totals.get(key, 0.0) + now - started
        self.totals[f"cpu_{key}"] = self.totals.get(f"cpu_{key}", 0.0) + cpu - self._cpu
        self._cpu = cpu
        return now

    def merge(self, times: dict[str, float]) -> float:
        """Add seconds measured elsewhere ({"step": wall, "cpu_step": CPU}) and restart the clocks; returns now."""
        for key, value in times.items():
            self.totals[key] = self.totals.get(key, 0.0) + value
        return self.restart()

    def restart(self) -> float:
        self._cpu = time.process_time()
        return time.perf_counter()


def _padded(values: np.ndarray | None, frames: int, fill: float) -> np.ndarray | None:
    if values is None or len(values) >= frames:
        return values
    tail = np.full((frames - len(values), *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, tail])


def synthesize(voice: Any, feats: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None,
               cfg: Any, generator: Any, head: int, length: int, shape_frames: int = 0) -> np.ndarray:
    """Audio of frames [head, head + length) of a piece whose features/pitch are given for all its frames.

    The prior and flow see the whole piece, padded to `shape_frames` (masked by the true length) so that the
    pieces of one conversion share one tensor shape and the CPU kernels built for the first piece are reused;
    the decoder (which works on fixed tiles on the CPU) decodes the requested real frames only.
    """
    import torch

    device = next(voice.net.parameters()).device
    n = feats.shape[0]
    feats, pitch, pitchf = _padded(feats, shape_frames, 0.0), _padded(pitch, shape_frames, 1), _padded(
        pitchf, shape_frames, 0.0)
    phone = torch.from_numpy(np.ascontiguousarray(feats)).unsqueeze(0).to(device)
    lengths = torch.tensor([n], dtype=torch.long, device=device)
    sid = torch.tensor([cfg.speaker_id], dtype=torch.long, device=device)
    p = torch.from_numpy(pitch).unsqueeze(0).to(device) if pitch is not None else None
    pf = torch.from_numpy(pitchf).unsqueeze(0).to(device) if pitchf is not None else None
    with torch.inference_mode():  # the padding frames past `n` are never decoded
        audio = voice.net.infer(phone, lengths, p, pf, sid, noise_scale=cfg.noise_scale, generator=generator,
                                skip_head=head, return_length=min(length, n - head))
    return audio[0, 0].float().cpu().numpy()


@dataclass
class Piece:
    """One piece's inputs (views into the padded input and its pitch)."""

    encoder_input: np.ndarray     # the piece extended to a whole `piece_bucket_s` (16 kHz)
    n_frames: int                 # frames of the piece (100 per second)
    keep: int                     # frames kept in the output
    shape: int                    # frames the prior and flow see (padded, masked)
    pitch: np.ndarray | None
    pitchf: np.ndarray | None


def plan_pieces(spans: list[tuple[int, int]], audio_pad: np.ndarray, pad: int, pitch: np.ndarray | None,
                pitchf: np.ndarray | None, cfg: Any) -> list[Piece]:
    """The pieces of the mirrored input `audio_pad` cut at `spans` (each with `pad` samples of context)."""
    shape = _common_shape(spans, len(audio_pad), pad, cfg.piece_bucket_s)
    out = []
    for i, (s, e) in enumerate(spans):
        n_frames = (len(audio_pad) - s if i == len(spans) - 1 else e + 2 * pad + WINDOW - s) // WINDOW
        first = s // WINDOW
        # the encoder gets the piece extended by the audio after it to a whole `piece_bucket_s`: few distinct
        # tensor shapes (oneDNN keeps kernels per shape, so distinct lengths made memory grow with the input)
        encoder_len = _round_up(n_frames, cfg.piece_bucket_s) * WINDOW
        out.append(Piece(steps.extend_to(audio_pad[s:s + encoder_len], encoder_len), n_frames, (e - s) // WINDOW,
                         shape if n_frames >= 0.6 * shape else _round_up(n_frames, cfg.piece_bucket_s),
                         steps.fit_frames(pitch[first:first + n_frames], n_frames) if pitch is not None else None,
                         steps.fit_frames(pitchf[first:first + n_frames], n_frames) if pitchf is not None else None))
    return out


def piece_features(parts: Any, piece: Piece, cfg: Any,
                   cpu_clock: Any = time.process_time) -> tuple[np.ndarray, dict[str, float]]:
    """Content features of the piece's frames at 100 frames/s after retrieval and protect: (n_frames, dim), and
    the seconds spent ({"features", "retrieval"} wall, "cpu_<step>" by `cpu_clock`)."""
    times: dict[str, float] = {}

    def lap(key: str, started: tuple[float, float]) -> tuple[float, float]:
        now = (time.perf_counter(), cpu_clock())
        times[key] = times.get(key, 0.0) + now[0] - started[0]
        times[f"cpu_{key}"] = times.get(f"cpu_{key}", 0.0) + now[1] - started[1]
        return now

    t0 = (time.perf_counter(), cpu_clock())
    n_frames = piece.n_frames
    feats = np.asarray(parts.encoder.encode(piece.encoder_input), dtype=np.float32)[:(n_frames + 1) // 2]
    t0 = lap("features", t0)
    original = feats
    if parts.retrieval is not None:
        from voiceapp.index.retrieval import blend

        feats = blend(feats, parts.retrieval.index, parts.retrieval.big_npy, cfg.index_rate)
        t0 = lap("retrieval", t0)
    feats = steps.fit_frames(steps.upsample2(feats), n_frames)
    if piece.pitchf is not None and cfg.protect < 0.5:
        feats = steps.protect_mix(feats, steps.fit_frames(steps.upsample2(original), n_frames), piece.pitchf,
                                  cfg.protect)
    lap("features", t0)
    return feats, times


def window_features(parts: Any, audio: np.ndarray, n_frames: int, pitchf: np.ndarray | None, cfg: Any,
                    timer: Timer, t0: float) -> tuple[np.ndarray, float]:
    """`piece_features` of one window (the live engine's call): (n_frames, dim) features, the time after; the
    seconds spent added to `timer`."""
    piece = Piece(audio, n_frames, n_frames, n_frames, None, pitchf)
    feats, times = piece_features(parts, piece, cfg)
    return feats, timer.merge(times)


def _decode_span(piece: Piece, cfg: Any, pad: int) -> tuple[int, int, int]:
    """(context frames kept around the piece's core, first frame decoded, frames decoded)."""
    context = pad // WINDOW
    if cfg.decoder_context_s is not None:
        context = min(context, int(round(cfg.decoder_context_s * 100)))
    head = pad // WINDOW - context
    return context, head, min(piece.keep + 2 * context, piece.n_frames - head) if head else piece.n_frames


def _decode_piece(parts: Any, piece: Piece, feats: np.ndarray, cfg: Any, generator: Any,
                  pad: int, hop: int) -> np.ndarray:
    """The kept audio of one piece at the model's rate (the generator's noise drawn here, in piece order)."""
    context, head, length = _decode_span(piece, cfg, pad)
    wav = synthesize(parts.run_voice, feats, piece.pitch, piece.pitchf, cfg, generator, head, length, piece.shape)
    return wav[context * hop:(context + piece.keep) * hop]


def _start_piece(parts: Any, piece: Piece, feats: np.ndarray, cfg: Any, generator: Any,
                 pad: int, hop: int) -> Any:
    """`_decode_piece` begun: the prior, flow and NSF source computed here (the generator drawn as there), the
    decoder's tiles submitted to the workers of `tiles.tiles_in`; returns `finish()` -> the kept audio."""
    from voiceapp.infer.tiles import decode_later

    context, head, length = _decode_span(piece, cfg, pad)
    with decode_later() as later:
        synthesize(parts.run_voice, feats, piece.pitch, piece.pitchf, cfg, generator, head, length, piece.shape)
    if len(later) != 1:
        raise RuntimeError(f"expected one decoder call per piece, got {len(later)}")

    def finish() -> np.ndarray:
        import torch

        with torch.inference_mode():
            audio = later[0]()
        return audio[0, 0].float().cpu().numpy()[context * hop:(context + piece.keep) * hop]
    return finish


def convert_serial(parts: Any, pieces: list[Piece], cfg: Any, generator: Any, pad: int, hop: int,
                   timer: Timer, progress: Progress, cancel: CancelToken) -> list[np.ndarray]:
    out = []
    for i, piece in enumerate(pieces):
        cancel.raise_if_set()
        feats, times = piece_features(parts, piece, cfg)
        t0 = timer.merge(times)
        out.append(_decode_piece(parts, piece, feats, cfg, generator, pad, hop))
        timer.add("synthesis", t0)
        progress(0.15 + 0.8 * (i + 1) / len(pieces), f"piece {i + 1}/{len(pieces)}")
    return out


def conversion_workers(run_voice: Any, requested: int = 0) -> int:
    """Threads a conversion's pieces use: `requested`, or (0) torch's thread count at most the cores this process
    may run on; 1 (the serial path) when the decoder cannot decode its tiles in worker threads (on CUDA, or the
    model as loaded)."""
    import torch

    if not getattr(getattr(run_voice.net, "dec", None), "tiles_in_threads", False):
        return 1
    if requested:
        return requested
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores))


def convert_overlapped(parts: Any, pieces: list[Piece], cfg: Any, generator: Any, pad: int, hop: int,
                       timer: Timer, progress: Progress, cancel: CancelToken, workers: int) -> list[np.ndarray]:
    """The serial loop's output (the same numbers as with one torch thread) with `workers` threads busy: the
    decoder's tiles run in the workers, one tile each, while this thread computes the next piece's prior and
    flow, and the content features of piece i+1 are computed in a worker while piece i is synthesized. Every
    torch op runs single-threaded meanwhile (torch's thread count is restored after). The noise generator is
    drawn from in this thread only, in piece order (prior, then NSF source, piece after piece).

    Timings: "features"/"retrieval" are the workers' busy seconds (CPU: their thread time), "synthesis" this
    thread's seconds in the prior, flow and decoder (its CPU: the process's CPU of the loop minus the features');
    "pieces" is the loop's wall time, less than their sum by what overlapped; "workers" the thread count."""
    import torch
    from concurrent.futures import Future, ThreadPoolExecutor

    from voiceapp.infer.tiles import tiles_in

    def features(piece: Piece) -> tuple[np.ndarray, dict[str, float]]:
        cancel.raise_if_set()
        with torch.inference_mode():
            return piece_features(parts, piece, cfg, time.thread_time)

    def add(key: str, seconds: float) -> None:
        timer.totals[key] = timer.totals.get(key, 0.0) + seconds

    started, cpu_started = time.perf_counter(), time.process_time()
    feature_cpu, out = 0.0, []
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="voiceapp-convert", initializer=torch.set_num_threads,
                              initargs=(1,))
    pending: dict[int, Future] = {}
    decoding: list[Any] = []  # finish() of the piece whose tiles are in the workers

    def collect() -> None:
        t0 = time.perf_counter()
        out.append(decoding.pop()())
        add("synthesis", time.perf_counter() - t0)
        progress(0.15 + 0.8 * len(out) / len(pieces), f"piece {len(out)}/{len(pieces)}")

    try:
        with tiles_in(pool, cancel, workers):
            for i, piece in enumerate(pieces):
                for j in (i, i + 1):  # piece i's features, and the next piece's queued before piece i's tiles
                    if j < len(pieces) and j not in pending:
                        pending[j] = pool.submit(features, pieces[j])
                cancel.raise_if_set()
                feats, times = pending.pop(i).result()
                feature_cpu += times.get("cpu_features", 0.0) + times.get("cpu_retrieval", 0.0)
                for key, value in times.items():
                    add(key, value)
                t0 = time.perf_counter()
                finish = _start_piece(parts, piece, feats, cfg, generator, pad, hop)
                add("synthesis", time.perf_counter() - t0)
                if decoding:  # the previous piece's tiles ran meanwhile
                    collect()
                decoding.append(finish)
            collect()
    finally:
        for future in pending.values():
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads_before)
    cpu_loop = time.process_time() - cpu_started
    add("cpu_synthesis", cpu_loop - feature_cpu)
    timer.totals["pieces"] = time.perf_counter() - started
    timer.totals["workers"] = float(workers)
    timer.restart()
    return out


def _round_up(frames: int, bucket_s: float) -> int:
    step = max(1, int(round(bucket_s * 100)))
    return -(-frames // step) * step


def _common_shape(spans: list[tuple[int, int]], padded_len: int, pad: int, bucket_s: float) -> int:
    """The frame count every piece is padded to: the longest piece, rounded up to `bucket_s`."""
    longest = max((padded_len - s if i == len(spans) - 1 else e + 2 * pad + WINDOW - s)
                  for i, (s, e) in enumerate(spans)) // WINDOW
    return _round_up(longest, bucket_s)
