"""Matplotlib figures shown by the tabs and written into reports (no GUI backend needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _figure(width: float = 9.0, height: float = 2.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    fig.set_layout_engine("tight")
    return fig, ax


def envelope(path: Path | str, points: int = 2000, sample_rate: int = 8000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of a (possibly hour-long) file for drawing, streamed at a low rate."""
    from voiceapp.audio.io import iter_blocks

    audio = np.concatenate(list(iter_blocks(path, sample_rate, mono=True, block_s=60.0)) or [np.zeros(1, np.float32)])
    per = max(1, len(audio) // points)
    usable = len(audio) - len(audio) % per or len(audio)
    frames = audio[:usable].reshape(-1, per) if usable >= per else audio[None, :]
    times = np.arange(frames.shape[0]) * per / sample_rate
    return times, frames.min(axis=1), frames.max(axis=1)


def waveform_with_cuts(path: Path | str, spans_s: Sequence[Sequence[float]], title: str = "") -> Any:
    """The file's waveform with the kept spans shaded and the cut points marked."""
    times, low, high = envelope(path)
    fig, ax = _figure()
    ax.fill_between(times, low, high, color="#4a6fa5", linewidth=0)
    for start, end in spans_s:
        ax.axvspan(start, end, color="#7bc47f", alpha=0.25, linewidth=0)
        ax.axvline(start, color="#2e7d32", linewidth=0.8)
        ax.axvline(end, color="#c62828", linewidth=0.8)
    ax.set_xlim(0, max(times[-1] if len(times) else 1.0, 1e-3))
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_title(title or f"{Path(path).name}: kept spans (green), cuts (lines)", fontsize=9)
    return fig


def clip_length_histogram(report: dict) -> Any:
    hist = report.get("length_histogram") or {"edges_s": [0, 1], "counts": [0]}
    edges, counts = np.asarray(hist["edges_s"]), np.asarray(hist["counts"])
    fig, ax = _figure(6.0, 2.4)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4a6fa5", edgecolor="white")
    ax.set_xlabel("clip length (s)")
    ax.set_ylabel("clips")
    ax.set_title(f"{report.get('clip_count', 0)} clips", fontsize=9)
    return fig


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
               title: str = "", log_y: bool = False) -> Any:
    """Several named (x, y) series on one axis, e.g. loss curves."""
    fig, ax = _figure(7.0, 3.0)
    for name, (xs, ys) in series.items():
        if len(xs):
            ax.plot(xs, ys, label=name, linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=9)
    if series:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def spectrogram(audio: np.ndarray, sample_rate: int, title: str = "", f0_hz: np.ndarray | None = None,
                f0_rate_hz: float = 100.0, max_hz: float | None = None) -> Any:
    """Log-magnitude spectrogram, optionally with an f0 track drawn over it."""
    from scipy import signal as sps

    audio = np.asarray(audio, dtype=np.float32)
    nper = 1024 if sample_rate >= 32000 else 512
    freqs, times, spec = sps.spectrogram(audio, fs=sample_rate, nperseg=nper, noverlap=nper * 3 // 4)
    fig, ax = _figure(9.0, 3.0)
    ax.pcolormesh(times, freqs, 10 * np.log10(spec + 1e-10), shading="auto", cmap="magma")
    if f0_hz is not None:
        t = np.arange(len(f0_hz)) / f0_rate_hz
        voiced = np.where(f0_hz > 0, f0_hz, np.nan)
        ax.plot(t, voiced, color="#00e5ff", linewidth=1.2, label="f0")
    ax.set_ylim(0, max_hz or sample_rate / 2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Hz")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
