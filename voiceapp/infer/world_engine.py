"""Conversion with `instant` and `quick` voices: content matching + WORLD source-filter synthesis.

    16 kHz input -> cuts at quiet points (as the RVC pipeline) -> f0 (+ transpose, f0 curve)
    -> per piece: Whisper block-3 content -> k nearest target frames (cosine)
         instant: the matched frames' spectral envelopes and aperiodicities, averaged
         quick:   the quick network on the matched content (blended with the source's own by `neighbour_blend`)
       -> WORLD synthesis at the model's rate on the source f0 -> crossfaded joins
    -> loudness envelope mix -> resample -> peak 0.99

Only one piece (at most `segment_max_s` plus context) is in memory besides the input and output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from voiceapp.errors import VoiceAppError
from voiceapp.infer import steps
from voiceapp.infer.models import cached, default_f0, load_encoder_cached, load_f0_cached
from voiceapp.infer.pitch import pitch_track
from voiceapp.infer.steps import SAMPLE_RATE, WINDOW
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress

if TYPE_CHECKING:
    from voiceapp.services import Services

NEIGHBOURS = 4           # k of the content matching (k = 1 and 2 were less intelligible, 8 less like the target)
CROSSFADE_S = 0.01       # raised-cosine overlap at each join between pieces


@dataclass
class WorldOutput:
    audio: np.ndarray
    sample_rate: int
    timings: dict[str, float]
    segments: int
    f0_method: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Parts:
    encoder: Any
    matcher: Any
    f0_fn: Any
    f0_method: str


def _load_parts(voice: Any, cfg: Any, services: Services) -> _Parts:
    from voiceapp.index.neighbours import FrameMatcher

    encoder = load_encoder_cached(voice.embedder, voice, services)
    stamp = voice.path.stat().st_mtime if voice.path.exists() else 0.0
    matcher = cached(services, ("matcher", str(voice.path), stamp), lambda: FrameMatcher(voice.content))
    method = cfg.f0_method or default_f0(services)
    return _Parts(encoder, matcher, load_f0_cached(method, services), method)


def _acoustic_frames(voice: Any, parts: _Parts, content: np.ndarray, f0_hz: np.ndarray, cfg: Any,
                     blend: float, bf16: bool = False,
                     span: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coded (sp, ap) for `len(f0_hz)` 10 ms frames from the piece's content frames (50/s). `bf16`: the quick
    network in bfloat16 (autocast; a live block on a fast-bf16 CPU: 2x faster, frames within 1e-4 of float32).
    `span` = content frames [s0, s1): only the 10 ms frames [2 s0, 2 s1) are returned, and the quick network
    computes only what they depend on (a live block; the same numbers as the whole piece's)."""
    n = len(f0_hz)
    content = steps.fit_frames(content, (n + 1) // 2)
    idx = parts.matcher.search(content, NEIGHBOURS)                                  # (frames50, k)
    if voice.net is None:                                                             # instant
        sp = voice.sp[idx].mean(axis=1).reshape(-1, voice.sp.shape[-1])[:n]           # (n, sp_dims)
        ap = voice.ap[idx].mean(axis=1).reshape(-1, voice.ap.shape[-1])[:n]
        # (smoothing these frames over time, or scaling their spread towards the target's, raised DNSMOS a
        # little and cost similarity more, on bench/quality.py's sources)
        if span is not None:
            sp, ap = sp[2 * span[0]:2 * span[1]], ap[2 * span[0]:2 * span[1]]
        return sp, ap
    import torch

    from voiceapp.nets.quicknet import pitch_features

    matched = voice.content[idx].mean(axis=1)
    # gather, then join: joining the whole voice's sp and ap first copied every target frame per call (~9 MB for
    # 10 min of target speech, per live block)
    frames = np.concatenate([voice.sp[idx], voice.ap[idx]], axis=-1).mean(axis=1)     # (frames50, 2, dims)
    # RVC's `protect` is not applied: mixing the source's own content into unvoiced frames raised the quick
    # engine's WER from 0.19 to 0.27 (bench/quality.py); its network keeps consonants from the matched content.
    features = blend * matched + (1 - blend) * content
    f0_pairs = steps.fit_frames(f0_hz, 2 * len(content)).reshape(-1, 2)
    inputs = (torch.from_numpy(features[None]), pitch_features(torch.from_numpy(f0_pairs[None]), voice.median_f0_hz),
              torch.from_numpy(frames[None].astype(np.float32)))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = voice.net(*inputs)[0] if span is None else voice.net.forward_span(*inputs, *span)[0]
    out = out.float().reshape(-1, out.shape[-1]).numpy()[:n if span is None else max(0, n - 2 * span[0])]
    sp_dims = voice.sp.shape[-1]
    return out[:, :sp_dims], out[:, sp_dims:]


def _ramp(length: int) -> np.ndarray:
    return np.sin(0.5 * np.pi * (np.arange(length) + 0.5) / max(length, 1)) ** 2


def convert_world(x16: np.ndarray, expected: int, voice: Any, cfg: Any, *, services: Services,
                  progress: Progress = no_progress, cancel: CancelToken = NEVER) -> WorldOutput:
    """Convert prepared mono 16 kHz audio (peak-limited, high-passed) into an instant/quick `voice`; returns
    `expected` samples at the voice's rate (or `cfg.resample_sr`)."""
    from voiceapp.audio.world import WorldFrames, synthesize

    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(key: str, since: float) -> float:
        now = time.perf_counter()
        timings[key] = timings.get(key, 0.0) + now - since
        return now

    parts = _load_parts(voice, cfg, services)
    t0 = lap("load", started)
    seg = cfg.segmentation
    pad, rate = seg.pad, int(voice.sample_rate)
    spans = steps.segment_spans(len(x16), steps.find_cuts(x16, seg))
    audio_pad = steps.reflect_pad(x16, pad)
    _, pitchf = pitch_track(audio_pad, parts.f0_fn, parts.f0_method, pad, cfg.transpose_semitones, cfg.filter_radius,
                            cfg.f0_curve, cfg.f0_block_s, cancel, sub_progress(progress, 0.0, 0.15), cfg.f0_workers)
    t0 = lap("f0", t0)
    out = np.zeros(expected, dtype=np.float32)
    half = max(1, int(CROSSFADE_S * rate) // 2)
    fade = 2 * half
    for i, (s, e) in enumerate(spans):
        cancel.raise_if_set()
        piece = audio_pad[s:] if i == len(spans) - 1 else audio_pad[s:e + 2 * pad]
        n_frames = len(piece) // WINDOW + 1
        f0 = steps.fit_frames(pitchf[s // WINDOW:s // WINDOW + n_frames], n_frames)
        content = np.asarray(parts.encoder.encode(piece), dtype=np.float32)
        t0 = lap("features", t0)
        sp, ap = _acoustic_frames(voice, parts, content, f0, cfg, cfg.neighbour_blend)
        t0 = lap("retrieval", t0)
        wav = synthesize(f0, WorldFrames(sp, ap, rate))
        # this piece's kept part [s, e) of the input, with half a crossfade more on each inner side
        at = int(round(s * rate / SAMPLE_RATE))
        stop = expected if i == len(spans) - 1 else int(round(e * rate / SAMPLE_RATE))
        lo, hi = (at - half if i > 0 else at), (stop + half if i < len(spans) - 1 else stop)
        lo, hi = max(0, lo), min(expected, hi)
        offset = int(round(pad * rate / SAMPLE_RATE)) - at                # piece sample of output sample 0
        chunk = steps.extend_to(wav[max(0, lo + offset):hi + offset], hi - lo) if hi > lo else wav[:0]
        chunk = chunk.astype(np.float32, copy=True)
        if i > 0:
            chunk[:fade] *= _ramp(min(fade, len(chunk)))[: len(chunk[:fade])]
        if i < len(spans) - 1:
            tail = min(fade, len(chunk))
            chunk[len(chunk) - tail:] *= _ramp(tail)[::-1]
        out[lo:lo + len(chunk)] += chunk
        t0 = lap("synthesis", t0)
        progress(0.15 + 0.8 * (i + 1) / len(spans), f"piece {i + 1}/{len(spans)}")
    out = steps.rms_mix(x16, out, rate, cfg.rms_mix_rate)
    out_rate = rate
    if cfg.resample_sr >= 16000 and cfg.resample_sr != rate:
        from voiceapp.audio import resample

        out, out_rate = resample(out, rate, cfg.resample_sr), cfg.resample_sr
    out = steps.peak_safe(out)
    if not np.all(np.isfinite(out)):
        raise VoiceAppError(f"The conversion with {voice.path.name} produced invalid samples (NaN); the model file "
                            f"may be damaged. Train the voice again.")
    lap("post", t0)
    timings["total"] = time.perf_counter() - started
    return WorldOutput(out.astype(np.float32, copy=False), out_rate, timings, len(spans), parts.f0_method)
