"""Own RMVPE network: published parameter names/shapes, loading rmvpe.pt from the workspace, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import harmonic

from voiceapp.errors import MissingArtifactError
from voiceapp.features.f0 import default_f0_method, load_f0_method
from voiceapp.nets.rmvpe import CENTS_OFFSET, N_BINS, E2E, salience_to_f0

KEYS = Path(__file__).resolve().parent / "data" / "rmvpe-state-dict-keys.json"


@pytest.fixture(scope="module")
def random_rmvpe_state():
    """A state dict with the published names and shapes and random values (fp16, as the published file)."""
    import torch

    torch.manual_seed(0)
    net = E2E()
    return {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}


def test_names_and_shapes_match_published_file(random_rmvpe_state):
    if not KEYS.exists():
        pytest.skip("reference key list not available")
    published = json.loads(KEYS.read_text())["state_dict"]
    ours = {k: list(v.shape) for k, v in random_rmvpe_state.items()}
    assert ours == published
    assert len(ours) == 741


def test_loads_rmvpe_pt_from_workspace(workspace, random_rmvpe_state, tmp_path):
    import torch

    with pytest.raises(MissingArtifactError, match="assets download rmvpe"):
        load_f0_method("rmvpe", workspace=workspace)
    assert default_f0_method(workspace) == "fcpe"
    nested = workspace.base_dir / "rmvpe" / "rmvpe.pt"  # the other accepted place
    nested.parent.mkdir(parents=True)
    torch.save(random_rmvpe_state, nested)
    assert default_f0_method(workspace) == "rmvpe"
    method = load_f0_method("rmvpe", workspace=workspace)
    audio = harmonic(220, 0.3)
    f0 = method(audio)
    assert f0.shape == (len(audio) // 160 + 1,) and f0.dtype == np.float32
    assert np.all((f0 == 0) | ((f0 >= 50) & (f0 <= 1100)))
    with torch.inference_mode():
        salience = method.model.salience(method.model.mel(torch.from_numpy(audio)[None]))
    assert salience.shape == (len(audio) // 160 + 1, N_BINS)  # 360 bins per frame
    assert float(salience.min()) >= 0 and float(salience.max()) <= 1


def test_refuses_a_file_that_is_not_rmvpe(workspace):
    import torch

    from voiceapp.errors import InputError

    torch.save({"something": torch.zeros(3)}, workspace.rmvpe_path)
    with pytest.raises(InputError, match="RMVPE"):
        load_f0_method("rmvpe", workspace=workspace)


def test_decoding_known_salience():
    salience = np.zeros((3, N_BINS), dtype=np.float32)
    bins = np.arange(N_BINS)
    salience[0] = np.exp(-0.5 * ((bins - 100) / 1.5) ** 2)           # symmetric peak at bin 100
    salience[1] = np.exp(-0.5 * ((bins - 100.5) / 1.5) ** 2)         # between bins 100 and 101
    salience[2] = 0.02                                               # below the 0.03 threshold
    f0 = salience_to_f0(salience)
    expected0 = 10 * 2 ** ((CENTS_OFFSET + 20 * 100) / 1200)
    expected1 = 10 * 2 ** ((CENTS_OFFSET + 20 * 100.5) / 1200)
    assert f0[0] == pytest.approx(expected0, rel=1e-4)
    assert f0[1] == pytest.approx(expected1, rel=2e-3)
    assert f0[2] == 0
