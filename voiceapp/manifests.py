"""The manifests stages hand each other on disk, as frozen dataclasses: `DatasetManifest` (datasets/<name>/
manifest.json, written by the Dataset stage) and `FeatureManifest` (logs/<exp>/features/manifest.json, written
by feature extraction; read by training, the index and the Train tab).

`to_json()` gives the dict written to disk (the same keys as before these classes existed, so old workspaces
load); `from_json()` accepts files with keys missing (older or hand-made manifests). Both are also read-only
mappings of their JSON (`manifest["clips"]`), for code that reads them as the dicts they used to be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from voiceapp.errors import MissingArtifactError
from voiceapp.workspace import DatasetDir, ExperimentDir, read_json

DATASET_MANIFEST_VERSION = 1


class _JsonRecord(Mapping):
    """to_json/from_json for a frozen dataclass: its fields in order, None fields left out, unknown keys kept."""

    extra: dict

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in out.items() if v is not None}
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


@dataclass(frozen=True)
class DatasetManifest(_JsonRecord):
    """What the Dataset stage made of each input file: `sources[key]` (key: 12 hex digits of the input's sha256)
    is {"path", "status": "ok" | "rejected", "reason"} or, when ok, also "raw", "stats", "isolated_with",
    "cuts_s", "clips": [{"name", "start_s", "end_s", "duration_s"}] (where in the input each clip was cut; older
    manifests have no "end_s")."""

    name: str = ""
    sample_rate: int = 0
    version: int = DATASET_MANIFEST_VERSION
    created: str | None = None
    sources: dict[str, dict] = field(default_factory=dict)
    config: dict | None = None          # the DatasetConfig of the latest run
    extra: dict = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:  # the order the files have always had
        order = ("version", "name", "sample_rate", "created", "sources", "config")
        data = super().to_json()
        return {**{k: data[k] for k in order if k in data}, **data}

    @classmethod
    def read(cls, ds: DatasetDir) -> DatasetManifest | None:
        """The manifest of `ds`, or None when the dataset has not been prepared."""
        data = read_json(ds.manifest_path, default=None)
        return cls.from_json(data) if data else None

    def ok_sources(self) -> dict[str, dict]:
        return {key: s for key, s in self.sources.items() if s.get("status") == "ok"}


@dataclass(frozen=True)
class FeatureManifest(_JsonRecord):
    """The features of an experiment: the settings they were made with, and the clips done and failed."""

    dataset: str = ""
    dataset_dir: str | None = None      # datasets/<name>/
    clips_dir: str = ""                 # datasets/<name>/clips (the clips at the training rate)
    sample_rate: int = 0
    encoder: str | None = None
    dim: int = 0                        # content feature width
    version: str | None = None          # v1 / v2
    f0_method: str | None = None
    clips: dict[str, dict] = field(default_factory=dict)     # stem -> {"frames": n at 100 frames/s}
    failed: dict[str, str] = field(default_factory=dict)     # stem -> why
    complete: bool | None = None        # False while extraction runs or after it was stopped
    created: str | None = None
    versions: dict[str, str] | None = None                   # package versions that made the features
    f0_stats: dict | None = None
    updated: str | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, exp: ExperimentDir) -> FeatureManifest:
        """The features manifest of `exp`; MissingArtifactError when extraction has not run."""
        data = read_json(exp.features_manifest_path, default=None)
        if not data:
            raise MissingArtifactError(f"No features in {exp.features_dir}. Run Train > Extract features "
                                       f"(or `python -m voiceapp features {exp.name} --dataset NAME`) first.")
        return cls.from_json(data)

    def settings(self) -> dict[str, Any]:
        """What must match for old feature files to be reused."""
        return {"encoder": self.encoder, "dim": self.dim, "version": self.version, "f0_method": self.f0_method}
