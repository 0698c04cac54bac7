"""Index build: RVC's list count, naming, sidecar, copy beside the voice model, k-means above a row limit."""

import json

import numpy as np
import pytest

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.index import IndexConfig, build_index, index_summary, load_index, n_lists_for, read_index_sidecar
from voiceapp.index.retrieval import search


def write_features(exp, n_clips=4, frames=300, dim=16, version="v2", seed=0):
    """Feature files and manifest in the layout the features stage writes."""
    rng = np.random.default_rng(seed)
    content = exp.features_dir / "content"
    content.mkdir(parents=True)
    clips = {}
    for i in range(n_clips):
        np.save(content / f"clip_{i:03d}.npy", rng.standard_normal((frames, dim)).astype(np.float32))
        clips[f"clip_{i:03d}"] = {"frames": frames * 2}
    manifest = {"dataset": "d", "dataset_dir": "", "clips_dir": "", "sample_rate": 40000, "encoder": "fake",
                "dim": dim, "version": version, "f0_method": "pm", "clips": clips, "failed": {}, "versions": {}}
    (exp.features_dir / "manifest.json").write_text(json.dumps(manifest))
    return np.concatenate([np.load(content / f"clip_{i:03d}.npy") for i in range(n_clips)])


@pytest.mark.parametrize("rows,expected", [(1, 1), (38, 1), (39, 1), (1000, 25), (100_000, 2564),
                                           (10_000, 256), (200_000, 5128)])
def test_n_lists_follows_rvc(rows, expected):
    assert n_lists_for(rows) == expected


def test_build_writes_rvc_named_index_sidecar_and_copy(workspace):
    exp = workspace.experiment("alice")
    rows = write_features(exp)
    voice_dir = workspace.voice_dir("alice")
    path = build_index(exp, IndexConfig(), voices_dir=voice_dir)
    n = n_lists_for(len(rows))
    assert path == exp.root / f"added_IVF{n}_Flat_nprobe_1_alice_v2.index" and path.is_file()
    copy = voice_dir / path.name
    assert copy.is_file() and copy.read_bytes() == path.read_bytes()
    info = read_index_sidecar(path)
    assert info["rows"] == len(rows) and info["dim"] == 16 and info["n_lists"] == n and info["version"] == "v2"
    assert info["build_s"] >= 0 and read_index_sidecar(copy)["rows"] == len(rows)
    assert "1,200 rows" in index_summary(path)
    assert not [p for p in exp.root.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_index_returns_the_rows_inserted(workspace):
    exp = workspace.experiment("bob")
    rows = write_features(exp, dim=32)
    retrieval = load_index(build_index(exp))
    assert retrieval.rows == len(rows) and retrieval.dim == 32
    # every training row is in the index (as a set of vectors; build shuffles the order)
    assert np.allclose(np.sort(retrieval.big_npy, axis=0), np.sort(rows, axis=0))
    probe = rows[::97]
    distances, ids = search(retrieval.index, probe, k=1)
    assert np.allclose(retrieval.big_npy[ids[:, 0]], probe) and np.allclose(distances[:, 0], 0, atol=1e-4)


def test_rebuild_replaces_an_index_with_another_list_count(workspace):
    exp = workspace.experiment("carol")
    write_features(exp)
    first = build_index(exp, IndexConfig(n_lists=4))
    second = build_index(exp, IndexConfig(n_lists=8))
    assert first != second and not first.exists() and second.exists()
    assert sorted(p.name for p in exp.root.glob("*.index")) == [second.name]


def test_kmeans_above_row_limit(workspace):
    exp = workspace.experiment("dave")
    write_features(exp, n_clips=2, frames=400, dim=8, version="v1")
    path = build_index(exp, IndexConfig(kmeans_above_rows=500, kmeans_centroids=50))
    info = read_index_sidecar(path)
    assert info["rows"] == 50 and info["source_rows"] == 800 and path.name.endswith("_dave_v1.index")
    assert "k-means of 800" in index_summary(path)


def test_missing_features_and_bad_config(workspace):
    exp = workspace.experiment("empty")
    exp.root.mkdir(parents=True)
    with pytest.raises(MissingArtifactError):
        build_index(exp)
    with pytest.raises(ConfigError):
        IndexConfig(nprobe=0)
    with pytest.raises(ConfigError):
        IndexConfig(kmeans_above_rows=10, kmeans_centroids=100)


def test_unreadable_or_missing_index_file(tmp_path):
    with pytest.raises(MissingArtifactError):
        load_index(tmp_path / "nope.index")
    junk = tmp_path / "added_junk.index"
    junk.write_bytes(b"not an index")
    with pytest.raises(InputError, match="added_junk.index"):
        load_index(junk)
