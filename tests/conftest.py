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


def song_stems(sample_rate: int = 22_050, seconds: float = 6.0, seed: int = 0, stereo: bool = True,
               voice_f0_hz: float = 220.0) -> tuple[np.ndarray, np.ndarray]:
    """A generated "song": (vocals, accompaniment), each (2, samples) when `stereo` else (samples,).

    Vocals: sung notes (harmonic, 5.5 Hz vibrato, short gaps), centred. Accompaniment: a drum-like pattern
    (decaying kick every 0.5 s, noise hats every 0.25 s) panned left and a three-note chord pad panned right,
    each with a few ms of inter-channel delay as in real stereo mixes.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    notes = [1.0, 9 / 8, 5 / 4, 4 / 3, 3 / 2, 4 / 3, 5 / 4, 9 / 8]
    note_s = 0.75
    voice = np.zeros(n, dtype=np.float32)
    for i, ratio in enumerate(notes * int(np.ceil(seconds / note_s / len(notes)))):
        start, length = int(i * note_s * sample_rate), int((note_s - 0.1) * sample_rate)
        if start >= n:
            break
        tone = harmonic(voice_f0_hz * ratio, length / sample_rate, sample_rate, n_harmonics=12, amplitude=0.3,
                        vibrato_hz=5.5, vibrato_cents=40)
        tone = tone * np.minimum(1.0, np.minimum(np.arange(len(tone)), np.arange(len(tone))[::-1]) / (0.02 * sample_rate))
        voice[start:start + len(tone)] = tone[: n - start]
    drums = np.zeros(n, dtype=np.float32)
    for beat in np.arange(0, seconds, 0.25):
        i = int(beat * sample_rate)
        m = min(n - i, int(0.15 * sample_rate))
        env = np.exp(-np.arange(m) / (0.02 * sample_rate))
        hat = rng.standard_normal(m) * env * 0.12
        if beat % 0.5 == 0:
            hat += 0.4 * np.sin(2 * np.pi * 55 * np.arange(m) / sample_rate) * np.exp(-np.arange(m) / (0.05 * sample_rate))
        drums[i:i + m] += hat.astype(np.float32)
    pad = sum(harmonic(f, seconds, sample_rate, n_harmonics=4, amplitude=0.06) for f in (130.8, 164.8, 196.0))
    pad = np.asarray(pad, dtype=np.float32)[:n]
    if not stereo:
        return voice, (drums + pad).astype(np.float32)
    shift = int(0.003 * sample_rate)
    delayed = lambda x: np.concatenate([np.zeros(shift, np.float32), x[:-shift]])  # noqa: E731
    acc = np.stack([0.9 * drums + 0.3 * delayed(pad), 0.4 * delayed(drums) + 0.9 * pad]).astype(np.float32)
    return np.stack([voice, voice]), acc


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio (dB) of `estimate` against `reference`, over all channels."""
    error = np.sum((np.asarray(reference, np.float64) - estimate) ** 2)
    return float(10 * np.log10(np.sum(np.asarray(reference, np.float64) ** 2) / max(error, 1e-20)))


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


REFERENCE = Path(__file__).resolve().parent / "data" / "rvc-state-dict-keys.json"   # copy of shared/reference
RMVPE_KEYS = Path(__file__).resolve().parent / "data" / "rmvpe-state-dict-keys.json"


@pytest.fixture(scope="session")
def reference() -> dict:
    """RVC's parameter names and shapes for the 12 synthesizer variants and the discriminators."""
    import json

    return json.loads(REFERENCE.read_text())


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a busy 2-core machine OpenMP barriers stall the tiny test networks badly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_torch_ops(one_torch_thread):
    """One thread and no oneDNN (it compiles a kernel per new conv shape, more than tiny convs cost)."""
    import torch

    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = mkldnn
