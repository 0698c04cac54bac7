"""Shared test helpers: generated audio, a temporary workspace. Offline, CPU only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def sine(f0_hz: float = 220.0, seconds: float = 1.0, sample_rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * f0_hz * t)).astype(np.float32)


def harmonic(f0_hz: float = 220.0, seconds: float = 1.0, sample_rate: int = 16_000, n_harmonics: int = 8,
             amplitude: float = 0.5, vibrato_hz: float = 0.0, vibrato_cents: float = 0.0) -> np.ndarray:
    """A voice-like harmonic tone (1/k amplitudes), optionally with vibrato."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f = f0_hz * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    out = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * f0_hz < sample_rate / 2)
    out = out / np.max(np.abs(out)) * amplitude
    return out.astype(np.float32)


def phrase_with_gaps(sample_rate: int = 40_000, tone_s: float = 2.0, gap_s: float = 0.8, n: int = 3) -> np.ndarray:
    """n harmonic tones of `tone_s` separated by silent gaps of `gap_s`."""
    parts = []
    for i in range(n):
        parts.append(harmonic(180 + 40 * i, tone_s, sample_rate))
        if i < n - 1:
            parts.append(np.zeros(int(gap_s * sample_rate), dtype=np.float32))
    return np.concatenate(parts)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = audio.T if audio.ndim == 2 else audio
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path


@pytest.fixture
def workspace(tmp_path: Path):
    from voiceapp.workspace import Workspace

    return Workspace(tmp_path / "ws").ensure()


@pytest.fixture
def services(workspace):
    from voiceapp.services import Services

    return Services(workspace=workspace, device="cpu")
