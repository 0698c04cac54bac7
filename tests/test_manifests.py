"""The manifests as dataclasses: the JSON on disk round-trips unchanged, old files with keys missing load."""

from __future__ import annotations

import json

from voiceapp.manifests import DatasetManifest, FeatureManifest

FEATURES = {"dataset": "ds", "dataset_dir": "/w/datasets/ds", "clips_dir": "/w/datasets/ds/clips", "sample_rate": 40000,
            "encoder": "fake-16", "dim": 16, "version": "v2", "f0_method": "dio", "clips": {"a_0": {"frames": 120}},
            "failed": {}, "complete": True, "created": "2024-01-01T00:00:00", "versions": {"voiceapp": "0.1"},
            "f0_stats": {"median_hz": 180.0}, "updated": "2024-01-01T00:01:00"}
DATASET = {"version": 1, "name": "ds", "sample_rate": 40000, "created": "2024-01-01T00:00:00",
           "sources": {"0123456789ab": {"path": "/in/a.wav", "status": "ok", "clips": [{"name": "a_0"}]},
                       "ba9876543210": {"path": "/in/b.wav", "status": "rejected", "reason": "too short"}},
           "config": {"sample_rate": 40000}}


def test_round_trip_keeps_the_file_byte_for_byte():
    for cls, data in ((FeatureManifest, FEATURES), (DatasetManifest, DATASET)):
        assert json.dumps(cls.from_json(data).to_json()) == json.dumps(data)


def test_old_files_with_missing_and_unknown_keys_load():
    old = FeatureManifest.from_json({"dataset": "d", "sample_rate": 40000, "encoder": "fake", "dim": 8,
                                     "clips": {"x": {"frames": 3}}, "note": "hand-made"})
    assert old.version is None and old.complete is None and old.dataset_dir is None and list(old.clips) == ["x"]
    assert old.to_json()["note"] == "hand-made"
    ds = DatasetManifest.from_json({"name": "d", "sample_rate": 40000, "sources": {}})
    assert ds.version == 1 and ds.config is None and "config" not in ds.to_json()


def test_typed_and_mapping_access_agree():
    m = FeatureManifest.from_json(FEATURES)
    assert m.dim == m["dim"] == 16 and m.get("missing", 7) == 7 and m.settings()["f0_method"] == "dio"
    ds = DatasetManifest.from_json(DATASET)
    assert list(ds.ok_sources()) == ["0123456789ab"] and ds["name"] == "ds"
