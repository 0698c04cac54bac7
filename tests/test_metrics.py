"""Quality measures used by the demo report and bench/quality.py (the ones that need no model)."""

import numpy as np

from voiceapp.metrics import f0_errors, word_error_rate


def test_f0_errors_split_gross_from_fine():
    ref = np.array([100.0, 100, 100, 100, 0, 200])
    est = np.array([101.0, 50, 100 * 2 ** (30 / 1200), 100, 120, 0])  # +17 c, octave down, +30 c, exact, 2x unvoiced
    gross, fine = f0_errors(ref, est)
    assert gross == 0.25
    assert abs(fine - 17.2264) < 0.01  # median of 17.2, 30, 0
    assert all(np.isnan(f0_errors(np.zeros(3), np.ones(3))))


def test_word_error_rate():
    assert word_error_rate("the cat sat", "the cat sat") == 0
    assert abs(word_error_rate("the cat sat down", "the bat sat") - 0.5) < 1e-9
    assert word_error_rate("Hello, world!", "hello world") == 0
