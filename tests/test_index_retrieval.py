"""Retrieval blend: RVC's k=8 inverse-square-distance mix, index rate 0 and 1, missing neighbours, dims."""

import numpy as np
import pytest

from voiceapp.errors import InputError
from voiceapp.index.build import IndexConfig, make_ivf_index
from voiceapp.index.retrieval import RetrievalIndex, blend, check_dim


@pytest.fixture(scope="module")
def flat():
    import faiss

    rng = np.random.default_rng(1)
    big = rng.standard_normal((500, 24)).astype(np.float32)
    index = faiss.IndexFlatL2(24)
    index.add(big)
    return index, big


def test_rate_zero_leaves_features_unchanged(flat):
    index, big = flat
    feats = np.random.default_rng(2).standard_normal((50, 24)).astype(np.float32)
    out = blend(feats, index, big, 0.0)
    assert np.array_equal(out, feats)


def test_rate_one_replaces_with_weighted_neighbours(flat):
    index, big = flat
    feats = np.random.default_rng(3).standard_normal((40, 24)).astype(np.float32)
    out = blend(feats, index, big, 1.0)
    # reference: RVC's formula written out with a full distance matrix
    d2 = ((feats[:, None, :] - big[None]) ** 2).sum(-1)
    nearest = np.argsort(d2, axis=1)[:, :8]
    w = 1.0 / np.take_along_axis(d2, nearest, axis=1) ** 2
    w /= w.sum(axis=1, keepdims=True)
    expected = (big[nearest] * w[..., None]).sum(axis=1)
    assert np.allclose(out, expected, atol=1e-4)
    assert not np.allclose(out, feats)


def test_partial_rate_is_linear_mix(flat):
    index, big = flat
    feats = np.random.default_rng(4).standard_normal((10, 24)).astype(np.float32)
    full = blend(feats, index, big, 1.0)
    half = blend(feats, index, big, 0.75)
    assert np.allclose(half, 0.75 * full + 0.25 * feats, atol=1e-5)
    assert half.dtype == np.float32 and half.shape == feats.shape


def test_exact_match_returns_stored_vector_without_nan(flat):
    index, big = flat
    out = blend(big[:5].copy(), index, big, 1.0)
    assert np.all(np.isfinite(out)) and np.allclose(out, big[:5], atol=1e-5)


def test_ivf_with_few_rows_per_list_still_blends():
    """nprobe=1 over tiny lists can return fewer than k neighbours (ids -1): those get no weight."""
    rng = np.random.default_rng(5)
    big = rng.standard_normal((60, 8)).astype(np.float32)
    index = make_ivf_index(big, 20, IndexConfig())
    feats = rng.standard_normal((30, 8)).astype(np.float32)
    out = blend(feats, index, index.reconstruct_n(0, index.ntotal), 1.0, k=8)
    assert np.all(np.isfinite(out)) and out.shape == feats.shape


def test_dimension_mismatch_is_explained(flat, tmp_path):
    index, big = flat
    retrieval = RetrievalIndex(tmp_path / "added_x_v1.index", index, big)
    check_dim(retrieval, 24)
    with pytest.raises(InputError, match="24-d"):
        check_dim(retrieval, 768)
