"""Silence slicer and chunking: known gaps, exact chunk lengths."""

import numpy as np
import pytest

from helpers import harmonic, phrase_with_gaps
from voiceapp.dataset.slicer import ChunkConfig, SlicerConfig, chunk_spans, slice_audio
from voiceapp.errors import ConfigError


def test_slicer_cuts_inside_the_gaps():
    sr = 40_000
    audio = phrase_with_gaps(sr, tone_s=2.0, gap_s=0.8, n=3)
    spans = slice_audio(audio, sr)
    assert len(spans) == 3
    tone_starts, tone_ends = [0.0, 2.8, 5.6], [2.0, 4.8, 7.6]
    for (start, end), t0, t1 in zip(spans, tone_starts, tone_ends):
        assert start / sr <= t0 + 0.02 and end / sr >= t1 - 0.02, "a tone was cut"
        assert start / sr >= t0 - 0.8 and end / sr <= t1 + 0.8
    for (_, left_end), (right_start, _) in zip(spans[:-1], spans[1:]):
        assert left_end <= right_start
        assert 2.0 <= left_end / sr <= 2.8 or 4.8 <= left_end / sr <= 5.6


def test_short_gap_is_not_cut_and_silence_gives_nothing_loud():
    sr = 16_000
    audio = np.concatenate([harmonic(200, 2.0, sr), np.zeros(int(0.2 * sr), np.float32), harmonic(200, 2.0, sr)])
    assert len(slice_audio(audio, sr)) == 1  # 200 ms < 400 ms minimum pause
    silent = np.zeros(5 * sr, np.float32)
    spans = slice_audio(silent, sr)
    assert all((end - start) / sr <= 0.55 for start, end in spans)


def test_slicer_threshold_is_adjustable():
    sr = 16_000
    quiet_gap = np.full(int(0.8 * sr), 0.003, np.float32)  # -50 dB: silence at -42, sound at -60
    audio = np.concatenate([harmonic(200, 2.0, sr), quiet_gap, harmonic(220, 2.0, sr)])
    assert len(slice_audio(audio, sr, SlicerConfig(threshold_db=-42))) == 2
    assert len(slice_audio(audio, sr, SlicerConfig(threshold_db=-60))) == 1


@pytest.mark.parametrize("length_s", [1.0, 3.7, 4.0, 4.01, 10.0, 33.3])
def test_chunks_follow_rvc_rule(length_s):
    sr = 40_000
    n = int(length_s * sr)
    spans = chunk_spans(n, sr, ChunkConfig(3.7, 0.3))
    step, size = int(3.4 * sr), int(3.7 * sr)
    for i, (start, end) in enumerate(spans[:-1]):
        assert start == i * step and end - start == size
    last_start, last_end = spans[-1]
    assert last_end == n and last_start == (len(spans) - 1) * step
    assert n - last_start <= 4.0 * sr  # the remainder is at most chunk + overlap
    if len(spans) > 1:
        overlap = spans[0][1] - spans[1][0]
        assert overlap == size - step == int(0.3 * sr) or abs(overlap - 0.3 * sr) <= 1


def test_no_chunking_and_custom_chunks():
    assert chunk_spans(100_000, 40_000, ChunkConfig(chunk_s=0)) == [(0, 100_000)]
    spans = chunk_spans(10 * 16_000, 16_000, ChunkConfig(chunk_s=2.0, overlap_s=0.5))
    assert spans[0] == (0, 32_000) and spans[1] == (24_000, 56_000)


def test_bad_slicer_config_is_refused():
    with pytest.raises(ConfigError):
        SlicerConfig(min_length_ms=100, min_interval_ms=400)
    with pytest.raises(ConfigError):
        ChunkConfig(chunk_s=1.0, overlap_s=1.0)
