"""The weight-free separator recovers a generated voice from a generated mix."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sdr_db, song_stems
from voiceapp.separate import load_separator, separate_audio
from voiceapp.separate.dsp import band_weight


@pytest.mark.parametrize("stereo, min_sdr", [(True, 14.0), (False, 9.0)])
def test_dsp_recovers_the_voice(stereo, min_sdr):
    vocals, acc = song_stems(sample_rate=22050, seconds=6.0, stereo=stereo)
    mix = vocals + acc
    est_vocals, est_acc = separate_audio(mix, 22050, load_separator("dsp"))
    assert est_vocals.shape == mix.shape
    assert sdr_db(vocals, est_vocals) > min_sdr
    assert sdr_db(vocals, est_vocals) > sdr_db(vocals, mix) + 4.0  # much better than doing nothing
    assert sdr_db(acc, est_acc) > 5.0
    np.testing.assert_allclose(est_vocals + est_acc, mix, atol=1e-6)


def test_centre_only_variant_uses_stereo():
    vocals, acc = song_stems(sample_rate=22050, seconds=4.0)
    est, _ = separate_audio(vocals + acc, 22050, load_separator("dsp-centre"))
    assert sdr_db(vocals, est) > sdr_db(vocals, vocals + acc) + 4.0


def test_band_weight_edges():
    w = band_weight(np.array([50.0, 100.0, 150.0, 200.0, 1000.0, 8000.0, 12000.0, 16000.0]), 200.0, 8000.0)
    np.testing.assert_allclose(w, [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-6)


def test_silence_in_silence_out():
    out, _ = separate_audio(np.zeros((2, 30000), np.float32), 44100, load_separator("dsp"))
    assert np.all(out == 0)
