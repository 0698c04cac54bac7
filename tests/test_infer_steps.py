"""RVC's pipeline steps on known signals: cuts at quiet points, padding, pitch edits, protect, RMS mix, scaling."""

import numpy as np
import pytest

from helpers import sine
from voiceapp.infer import steps
from voiceapp.infer.steps import Segmentation


def _tones_with_gaps(gaps_s, total_s, sr=16_000):
    x = sine(200, total_s, sr)
    for a, b in gaps_s:
        x[int(a * sr):int(b * sr)] = 0.0
    return x


def test_cuts_land_in_the_quiet_gaps():
    gaps = [(2.7, 3.1), (6.4, 6.6), (8.8, 9.3)]
    x = _tones_with_gaps(gaps, 11.0)
    cuts = steps.find_cuts(x, Segmentation(pad_s=0.5, query_s=1.0, center_s=3.0, max_s=4.0))
    assert len(cuts) == 3 and all(c % 160 == 0 for c in cuts)
    for cut, (a, b) in zip(cuts, gaps):
        assert a * 16000 - 160 <= cut <= b * 16000, (cut / 16000, a, b)


def test_short_audio_is_one_piece_and_spans_cover_everything():
    x = sine(200, 3.0)
    seg = Segmentation(1.0, 3.0, 15.0, 18.0)
    assert steps.find_cuts(x, seg) == []
    spans = steps.segment_spans(len(x), [16000, 32000])
    assert spans == [(0, 16000), (16000, 32000), (32000, len(x))]
    assert seg.pad == 16000


def test_reflect_pad_handles_tiny_input():
    assert len(steps.reflect_pad(np.ones(1, np.float32), 100)) == 201
    assert len(steps.reflect_pad(sine(200, 0.1), 16000)) == 1600 + 32000
    x = np.arange(5, dtype=np.float32)
    assert np.array_equal(steps.reflect_pad(x, 2), [2, 1, 0, 1, 2, 3, 4, 3, 2])


def test_peak_limits():
    loud = sine(200, 0.5, amplitude=3.0)
    assert np.isclose(np.abs(steps.peak_limit(loud)).max(), 0.95, atol=1e-4)
    quiet = sine(200, 0.5, amplitude=0.3)
    assert np.array_equal(steps.peak_limit(quiet), quiet)
    assert np.isclose(np.abs(steps.peak_safe(loud)).max(), 0.99, atol=1e-4)
    assert not steps.peak_safe(np.zeros(10, np.float32)).any()


def test_transpose_octave_keeps_unvoiced():
    f0 = np.array([0, 100, 220, 0], np.float32)
    assert np.allclose(steps.transpose_f0(f0, 12), [0, 200, 440, 0])
    assert np.allclose(steps.transpose_f0(f0, -12), [0, 50, 110, 0])


def test_f0_curve_replaces_pitch_after_the_padding():
    times, hz = np.array([0.0, 0.05, 0.10]), np.array([100.0, 200.0, 300.0])
    f0 = np.full(40, 150.0, np.float32)
    out = steps.apply_f0_curve(f0, times, hz, offset_frames=20)
    assert np.allclose(out[:20], 150)
    assert np.allclose(out[20:31], np.linspace(100, 300, 11))
    assert np.allclose(out[31:], 150)
    short = steps.apply_f0_curve(np.zeros(25, np.float32), times, hz, 20)  # curve longer than what is left
    assert len(short) == 25 and short[-1] > 0


def test_protect_keeps_original_features_on_unvoiced_frames():
    blended = np.ones((4, 3), np.float32)
    original = np.zeros((4, 3), np.float32)
    pitchf = np.array([0.0, 120.0, 0.5, 300.0], np.float32)
    out = steps.protect_mix(blended, original, pitchf, 0.33)
    assert np.allclose(out[:, 0], [0.33, 1.0, 0.33, 1.0])


def test_upsample_and_fit_frames():
    f = np.arange(6, dtype=np.float32).reshape(3, 2)
    up = steps.upsample2(f)
    assert up.shape == (6, 2) and np.array_equal(up[0], up[1])
    assert steps.fit_frames(up, 8).shape == (8, 2) and np.array_equal(steps.fit_frames(up, 8)[-1], f[-1])
    assert steps.fit_frames(up, 4).shape == (4, 2)
    assert steps.fit_frames(np.zeros((0, 2), np.float32), 3).shape == (3, 2)


def test_linear_resize_matches_torch():
    import torch
    import torch.nn.functional as F

    values = np.array([1.0, 5.0, 2.0, 7.0])
    for size in (1, 3, 7, 50):
        ref = F.interpolate(torch.tensor(values)[None, None], size=size, mode="linear").numpy()[0, 0]
        assert np.allclose(steps.linear_resize(values, size), ref)


def test_half_second_rms_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(0).standard_normal(40_000 * 3 + 123).astype(np.float32)
    ref = librosa.feature.rms(y=x, frame_length=40_000, hop_length=20_000)[0]
    assert np.allclose(steps.half_second_rms(x, 40_000), ref, atol=1e-6)


def test_rms_mix_follows_input_envelope():
    sr_out = 32_000
    x = np.concatenate([sine(200, 2.0, amplitude=0.8), sine(200, 2.0, amplitude=0.1)])
    out = sine(300, 4.0, sr_out, amplitude=0.5)
    assert np.array_equal(steps.rms_mix(x, out, sr_out, 1.0), out)
    mixed = steps.rms_mix(x, out, sr_out, 0.0)
    loud, quiet = np.abs(mixed[sr_out // 2:sr_out]).max(), np.abs(mixed[3 * sr_out:int(3.5 * sr_out)]).max()
    assert loud / quiet == pytest.approx(8.0, rel=0.15)
    assert np.isclose(np.abs(mixed[sr_out // 2:sr_out]).max(), 0.8, rtol=0.1)
    assert not steps.rms_mix(np.zeros(16000, np.float32), out, sr_out, 0.25).any()
    blocked = steps.rms_mix(x, out, sr_out, 0.3, block=7_777)  # long songs are mixed in blocks
    assert np.allclose(blocked, steps.rms_mix(x, out, sr_out, 0.3, block=len(out)), atol=1e-7)


def _local_f0(audio):
    """A stand-in pitch tracker whose frame i depends only on samples within 80 of i*160."""
    n = len(audio) // 160 + 1
    padded = np.pad(np.abs(audio), (80, 80 + 160))
    return np.array([padded[i * 160:i * 160 + 160].mean() for i in range(n)], dtype=np.float32) * 1000


def test_f0_in_blocks_equals_one_call_and_pitch_track_edits():
    from voiceapp.infer.pitch import f0_blocks, pitch_track

    x = np.random.default_rng(0).standard_normal(16000 * 7 + 37).astype(np.float32)
    whole = _local_f0(x)
    blocks = f0_blocks(x, _local_f0, block=16000 * 2, context=1600, cancel=_never(), progress=lambda f, m: None)
    assert len(blocks) == len(whole) and np.allclose(blocks, whole)
    threaded = f0_blocks(x, _local_f0, block=16000 * 30, context=1600, workers=2)  # split in two, two threads
    assert np.allclose(threaded, whole)
    coarse, hz = pitch_track(x, _local_f0, "pm", 1600, 12.0, 3, None, 10.0)
    assert len(hz) == len(x) // 160 and np.allclose(hz, 2 * whole[:len(hz)], rtol=1e-5)
    assert coarse.dtype == np.int64 and coarse.min() >= 1 and coarse.max() <= 255


def _never():
    from voiceapp.progress import NEVER

    return NEVER
