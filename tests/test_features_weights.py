"""Real base weights (skipped unless models/base has them): RMVPE and ContentVec give sensible output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import harmonic

from voiceapp.features.encoders import contentvec_dir, load_encoder
from voiceapp.features.f0 import find_rmvpe, load_f0_method
from voiceapp.workspace import Workspace

APP = Workspace(Path(__file__).resolve().parents[1])


@pytest.mark.weights
@pytest.mark.skipif(find_rmvpe(APP) is None, reason="models/base/rmvpe.pt not present")
def test_real_rmvpe_tracks_tones():
    method = load_f0_method("rmvpe", workspace=APP)
    for f in (110, 220, 440):
        f0 = method(harmonic(f, 1.0))[10:-10]
        assert np.mean(f0 > 0) > 0.9
        assert np.median(1200 * np.abs(np.log2(f0[f0 > 0] / f))) < 20


@pytest.mark.weights
@pytest.mark.skipif(contentvec_dir(APP) is None, reason="models/base/contentvec not present")
@pytest.mark.parametrize("version, dim", [("v1", 256), ("v2", 768)])
def test_real_contentvec_dims(version, dim):
    encoder = load_encoder("contentvec", version, workspace=APP)
    audio = harmonic(200, 1.0)
    out = encoder.encode(audio)
    assert encoder.dim == dim and out.shape == ((len(audio) - 400) // 320 + 1, dim)
    assert np.all(np.isfinite(out))
