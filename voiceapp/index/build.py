"""Build the retrieval index: a faiss `IVF<n>,Flat` file over an experiment's training features.

Reads  logs/<exp>/features/content/*.npy (float32 (frames, dim), sorted by name) + features/manifest.json
Writes logs/<exp>/added_IVF<n>_Flat_nprobe_1_<exp>_<v>.index (+ `.json` sidecar), and the same two files
       into the voice model's folder (models/voices/<exp>/) so RVC WebUI and Applio find the index there.

Recipe (RVC `train_index`): rows shuffled; above 200,000 rows k-means down to 10,000 centroids;
n = max(1, min(int(16*sqrt(N)), N // 39)) inverted lists; trained on all rows; added in batches of 8192.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.manifests import FeatureManifest
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress
from voiceapp.workspace import ExperimentDir, atomic_path, read_json, write_json_atomic

log = logging.getLogger(__name__)

INDEX_FORMAT_VERSION = 1
VERSION_DIMS = {"v1": 256, "v2": 768}


@dataclass(frozen=True)
class IndexConfig:
    kmeans_above_rows: int = 200_000   # cluster the features first when there are more rows than this
    kmeans_centroids: int = 10_000     # ... down to this many centroids (RVC's number)
    kmeans_iterations: int = 10        # faiss k-means passes (MiniBatchKMeans in RVC; same role)
    kmeans_points_per_centroid: int = 64  # k-means trains on at most this many rows per centroid (a sample)
    n_lists: int | None = None         # None: max(1, min(16*sqrt(N), N/39)) as RVC
    add_batch_rows: int = 8192         # rows per index.add call (RVC's batch; big adds stalled RVC)
    nprobe: int = 1                    # lists searched per query; RVC writes and uses 1
    seed: int = 0                      # shuffle and k-means seed (same features -> same index)
    copy_to_voice_dir: bool = True     # also place the index beside the voice model

    def __post_init__(self) -> None:
        if self.nprobe < 1:
            raise ConfigError(f"IndexConfig.nprobe must be >= 1, got {self.nprobe}")
        if self.add_batch_rows < 1:
            raise ConfigError(f"IndexConfig.add_batch_rows must be >= 1, got {self.add_batch_rows}")
        if self.kmeans_centroids < 1 or self.kmeans_above_rows < self.kmeans_centroids:
            raise ConfigError("IndexConfig: kmeans_above_rows must be >= kmeans_centroids >= 1, got "
                              f"{self.kmeans_above_rows} and {self.kmeans_centroids}")
        if self.n_lists is not None and self.n_lists < 1:
            raise ConfigError(f"IndexConfig.n_lists must be >= 1 or None, got {self.n_lists}")


def n_lists_for(n_rows: int) -> int:
    """RVC's inverted-list count: min(16*sqrt(N), N // 39), at least 1."""
    return max(1, min(int(16 * math.sqrt(n_rows)), n_rows // 39))


def load_training_features(exp: ExperimentDir, cancel: CancelToken = NEVER) -> tuple[np.ndarray, FeatureManifest]:
    """All content-feature frames of `exp` in sorted file order, as float32 (rows, dim), and the manifest."""
    manifest = FeatureManifest.read(exp)
    content_dir = exp.content_dir
    files = sorted(content_dir.glob("*.npy")) if content_dir.is_dir() else []
    if not files:
        raise MissingArtifactError(f"No content features in {content_dir}. Run Train > Extract features "
                                   f"(or `python -m voiceapp features {exp.name} --dataset NAME`) first.")
    parts: list[np.ndarray] = []
    dim = int(manifest.dim or 0)
    for path in files:
        cancel.raise_if_set()
        feats = np.load(path, allow_pickle=False)
        if feats.ndim != 2 or (dim and feats.shape[1] != dim):
            raise InputError(f"{path}: features of shape {feats.shape}, expected (frames, {dim or 'dim'}). "
                             "Extract features again for this experiment.")
        dim = feats.shape[1]
        if not np.all(np.isfinite(feats)):
            log.warning("skipping %s: contains NaN/inf", path.name)  # RVC skips these files too
            continue
        parts.append(feats.astype(np.float32, copy=False))
    if not parts:
        raise InputError(f"Every feature file in {content_dir} is damaged (NaN values). Extract features again.")
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32), manifest


def _kmeans(rows: np.ndarray, cfg: IndexConfig, progress: Progress) -> np.ndarray:
    import faiss

    progress(0.1, f"k-means: {len(rows):,} frames -> {cfg.kmeans_centroids:,} centroids")
    kmeans = faiss.Kmeans(rows.shape[1], cfg.kmeans_centroids, niter=cfg.kmeans_iterations, seed=cfg.seed,
                          max_points_per_centroid=cfg.kmeans_points_per_centroid, verbose=False)
    kmeans.train(rows)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def make_ivf_index(rows: np.ndarray, n_lists: int, cfg: IndexConfig = IndexConfig(),
                   progress: Progress = no_progress, cancel: CancelToken = NEVER):
    """Train an `IVF<n_lists>,Flat` (L2) index on `rows` and add them in batches; returns the faiss index."""
    import faiss

    index = faiss.index_factory(rows.shape[1], f"IVF{n_lists},Flat")
    faiss.extract_index_ivf(index).nprobe = cfg.nprobe
    progress(0.3, f"training {n_lists} lists on {len(rows):,} rows")
    index.train(rows)
    for start in range(0, len(rows), cfg.add_batch_rows):
        cancel.raise_if_set()
        index.add(rows[start:start + cfg.add_batch_rows])
        done = min(start + cfg.add_batch_rows, len(rows))
        progress(0.4 + 0.5 * done / len(rows), f"adding rows {done:,}/{len(rows):,}")
    return index


def _write_index(index, target: Path, sidecar: dict) -> Path:
    import faiss

    with atomic_path(target) as tmp:
        faiss.write_index(index, str(tmp))
    write_json_atomic(target.with_name(target.name + ".json"), sidecar)
    return target


def _remove_stale(folder: Path, keep: Path, exp_name: str) -> None:
    """Delete older `added_*_<exp>_v?.index` files (another list count) so auto-matching finds one index."""
    for old in folder.glob(f"added_IVF*_Flat_nprobe_1_{exp_name}_v*.index"):
        if old.name != keep.name:
            old.unlink(missing_ok=True)
            old.with_name(old.name + ".json").unlink(missing_ok=True)


def build_index(exp: ExperimentDir, cfg: IndexConfig = IndexConfig(), progress: Progress = no_progress,
                cancel: CancelToken = NEVER, voices_dir: Path | None = None) -> Path:
    """Build `exp`'s retrieval index from its content features and return its path in logs/<exp>/.

    See the module docstring for the files written. `voices_dir` is the voice model's folder
    (models/voices/<exp>/); when given (and `cfg.copy_to_voice_dir`) the index and its sidecar are copied
    there too. Rows, list count and build time are in the sidecar (`read_index_sidecar`, `index_summary`).
    """
    started = time.perf_counter()
    progress(0.0, "reading features")
    rows, manifest = load_training_features(exp, cancel)
    source_rows, dim = rows.shape
    version = str(manifest.version or ("v1" if dim == 256 else "v2"))
    if source_rows < 1:
        raise InputError(f"No feature frames in {exp.features_dir}; extract features from a longer dataset.")
    rng = np.random.default_rng(cfg.seed)
    rows = rows[rng.permutation(source_rows)]
    if source_rows > cfg.kmeans_above_rows:
        rows = _kmeans(rows, cfg, progress)
    cancel.raise_if_set()
    n_lists = cfg.n_lists or n_lists_for(len(rows))
    n_lists = min(n_lists, len(rows))
    index = make_ivf_index(rows, n_lists, cfg, progress, cancel)
    build_s = time.perf_counter() - started
    target = exp.index_path(n_lists, version)
    sidecar = {"format_version": INDEX_FORMAT_VERSION, "experiment": exp.name, "version": version, "dim": dim,
               "rows": int(index.ntotal), "source_rows": int(source_rows), "n_lists": n_lists,
               "encoder": manifest.encoder, "factory": f"IVF{n_lists},Flat", "metric": "L2",
               "build_s": round(build_s, 3), "config": asdict(cfg), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    progress(0.95, f"writing {target.name}")
    _write_index(index, target, sidecar)
    _remove_stale(exp.root, target, exp.name)
    if voices_dir is not None and cfg.copy_to_voice_dir:
        copy = Path(voices_dir) / target.name
        with atomic_path(copy) as tmp:
            shutil.copyfile(target, tmp)
        write_json_atomic(copy.with_name(copy.name + ".json"), {**sidecar, "copy_of": str(target)})
        _remove_stale(copy.parent, copy, exp.name)
        sidecar["copies"] = [str(copy)]
        write_json_atomic(target.with_name(target.name + ".json"), sidecar)
    summary = index_summary(target)
    log.info("index built: %s", summary)
    progress(1.0, summary)
    return target


def read_index_sidecar(index_path: Path) -> dict:
    """The JSON written beside an index by `build_index` ({} for indexes made elsewhere)."""
    return read_json(Path(index_path).with_name(Path(index_path).name + ".json"), default={}) or {}


def index_summary(index_path: Path) -> str:
    """One line about a built index: rows, dimension, lists, build time and where its copy is."""
    info = read_index_sidecar(index_path)
    if not info:
        return Path(index_path).name
    clustered = (f" (k-means of {info['source_rows']:,} frames)" if info.get("source_rows", info["rows"])
                 != info["rows"] else "")
    copies = info.get("copies") or []
    where = f"; copy beside the voice model in {Path(copies[0]).parent}" if copies else ""
    return (f"{Path(index_path).name}: {info['rows']:,} rows{clustered} x {info['dim']}, {info['n_lists']} lists, "
            f"built in {info['build_s']:.1f} s{where}")


def experiment_index(exp: ExperimentDir) -> Path | None:
    """The newest `added_*.index` in logs/<exp>/, or None."""
    found = [p for p in exp.root.glob("added_*.index") if not p.name.startswith(".")] if exp.root.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
