"""The extraction stage: dataset clips -> content frames, f0 in Hz and coarse pitch per clip.

Reads  datasets/<name>/clips_16k/<stem>.wav (16 kHz; falls back to clips/ resampled) and manifest.json.
Writes logs/<exp>/features/content/<stem>.npy   float32 (frames_50Hz, dim)
                             f0/<stem>.npy        float32 Hz, 100 frames/s, len(audio_16k) // 160 + 1 values
                             f0_coarse/<stem>.npy int64 1..255
                             manifest.json        encoder, dim, version, f0 method, clips, failures, versions

Every file is written atomically and a clip counts as done only when all three exist, so a killed run
leaves no half-written file and a rerun skips what is finished. Changing the encoder, version or f0
method starts over. On CPU the f0 runs in worker processes while this process runs the content encoder.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import Cancelled, ConfigError, InputError, MissingArtifactError, VoiceAppError
from voiceapp.features.encoders import VERSIONS, ContentEncoder, default_encoder, load_encoder
from voiceapp.features.f0 import (F0_METHODS, SAMPLE_RATE, check_f0_method, coarse_f0, default_f0_method,
                                  load_f0_method)
from voiceapp.manifests import DatasetManifest, FeatureManifest
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, time_left
from voiceapp.services import Services
from voiceapp.workspace import (DatasetDir, ExperimentDir, Workspace, atomic_path, is_temporary, read_json,
                                write_json_atomic)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureConfig:
    f0_method: str | None = None   # registry name; None: rmvpe when its weights are present, else fcpe
    encoder: str | None = None     # registry name or HuBERT folder; None: contentvec when present, else whisper-tiny
    version: str = "v2"            # v1: 256-d ContentVec features, v2: 768-d
    workers: int = 2               # f0 worker processes on CPU for the slower methods (0: all in this process)
    pool_min_clips: int = 4        # fewer clips than this: no worker processes (their start-up costs more)
    save_every_s: float = 5.0      # the manifest is rewritten at most this often while running

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ConfigError(f"FeatureConfig.version must be one of {list(VERSIONS)}, got {self.version!r}.")
        if self.f0_method is not None and self.f0_method not in F0_METHODS:
            raise ConfigError(f"Unknown f0 method {self.f0_method!r}; choose one of {sorted(F0_METHODS)}.")
        if not 0 <= self.workers <= 16:
            raise ConfigError(f"FeatureConfig.workers must be 0..16, got {self.workers}.")


@dataclass
class FeatureSet:
    """What `extract_features` made: where the files are, and which clips are usable."""

    exp: ExperimentDir
    manifest: FeatureManifest
    clips: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    extracted: int = 0
    reused: int = 0
    seconds: float = 0.0
    f0_workers: int = 0            # worker processes the f0 ran in (0: this process)

    @property
    def manifest_path(self) -> Path:
        return self.exp.features_manifest_path

    @property
    def encoder(self) -> str:
        return str(self.manifest.encoder)

    @property
    def dim(self) -> int:
        return int(self.manifest.dim)

    @property
    def version(self) -> str:
        return str(self.manifest.version)

    @property
    def f0_method(self) -> str:
        return str(self.manifest.f0_method)

    def paths(self, stem: str) -> tuple[Path, Path, Path]:
        return feature_paths(self.exp, stem)


def feature_paths(exp: ExperimentDir, stem: str) -> tuple[Path, Path, Path]:
    """(content, f0 Hz, coarse f0) .npy paths of one clip."""
    return exp.content_dir / f"{stem}.npy", exp.f0_dir / f"{stem}.npy", exp.f0_coarse_dir / f"{stem}.npy"


def load_feature_manifest(exp: ExperimentDir) -> FeatureManifest:
    """The features manifest of `exp`; MissingArtifactError when extraction has not run."""
    return FeatureManifest.read(exp)


def load_clip_features(exp: ExperimentDir, stem: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(content (frames, dim) float32, f0 Hz float32, coarse int64) of one clip."""
    content, f0, coarse = feature_paths(exp, stem)
    return np.load(content), np.load(f0), np.load(coarse)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)


def _clip_sources(ds: DatasetDir) -> dict[str, Path]:
    """stem -> audio path: the 16 kHz clip when there is one, else the model-rate clip (resampled on load)."""
    sources: dict[str, Path] = {}
    for folder in (ds.clips_dir, ds.clips_16k_dir):  # 16 kHz last: it wins
        if folder.is_dir():
            for path in sorted(folder.glob("*.wav")):
                if not is_temporary(path):
                    sources[path.stem] = path
    return dict(sorted(sources.items()))


def _load_16k(path: Path) -> np.ndarray:
    from voiceapp.audio import load_audio

    audio, _ = load_audio(path, SAMPLE_RATE, mono=True)
    return np.asarray(audio, dtype=np.float32)


def _versions(f0_method: str, encoder: str) -> dict[str, str]:
    from importlib import metadata

    from voiceapp import __version__

    out = {"format": str(FORMAT_VERSION), "voiceapp": __version__}
    packages = ["torch", "numpy"]
    packages += list(F0_METHODS[f0_method].packages) if f0_method in F0_METHODS else []
    packages += ["ctranslate2", "faster-whisper"] if encoder == "whisper-tiny" else []
    packages += ["transformers"] if not encoder.startswith(("fake", "whisper")) else []
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


# --- f0 worker processes -------------------------------------------------------------------------------------
# Each worker process holds its own f0 method, loaded once by the pool initializer (process-local state).
_WORKER: dict[str, Any] = {}
# Measured on 2 shared cores (19 clips, 65 s, whisper-tiny): with fcpe, in-process 13 s vs 17-27 s with 1-2
# workers (spawning a worker and loading its model costs more than fcpe's 0.1 s per audio second); pm and dio
# are cheaper still. The slower methods (harvest, crepe, rmvpe: 0.3-15 s per audio second) run beside the
# content encoder in worker processes. Each method's `in_process` / `uses_torch` traits live in the f0 registry.


def _worker_init(method: str, device: str, root: str | None) -> None:
    if F0_METHODS[method].uses_torch:
        import torch

        torch.set_num_threads(1)
    workspace = Workspace(Path(root)) if root else None
    _WORKER["method"] = load_f0_method(method, device, workspace)


def _worker_f0(path: str) -> np.ndarray:
    return _WORKER["method"](_load_16k(Path(path)))


class _F0Runner:
    """f0 for many clips: a pool of worker processes, or this process (workers=0, GPU, or a single clip)."""

    def __init__(self, method: str, device: str, workspace: Workspace | None, workers: int, cache: Any = None) -> None:
        self.cache = cache
        self.pool: cf.ProcessPoolExecutor | None = None
        self.futures: dict[str, cf.Future] = {}
        self.method: Any = None
        self.args = (method, device, str(workspace.root) if workspace else None)
        self.workers = workers
        self.n_workers = 0

    def start(self, jobs: dict[str, Path]) -> None:
        if self.workers > 0 and len(jobs) > 1:
            context = multiprocessing.get_context("spawn")  # fork after torch/OpenMP start can deadlock
            self.n_workers = min(self.workers, len(jobs))
            self.pool = cf.ProcessPoolExecutor(self.n_workers, mp_context=context,
                                               initializer=_worker_init, initargs=self.args)
            self.futures = {stem: self.pool.submit(_worker_f0, str(path)) for stem, path in jobs.items()}
        else:
            method, device, root = self.args
            load = lambda: load_f0_method(method, device, Workspace(Path(root)) if root else None)  # noqa: E731
            self.method = self.cache.get(("f0-method", method, device, root), load) if self.cache else load()

    def result(self, stem: str, audio: np.ndarray) -> np.ndarray:
        if self.pool is None:
            return self.method(audio)
        try:
            return self.futures.pop(stem).result()
        except cf.process.BrokenProcessPool as err:
            raise VoiceAppError("An f0 worker process died (out of memory?). Run the extraction again with "
                                "fewer workers (--workers 1 or 0); finished clips are kept.") from err

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


# --- the stage -------------------------------------------------------------------------------------------------
def _check_clip(stem: str, duration_s: float, content: np.ndarray, f0: np.ndarray) -> str | None:
    """Why a clip cannot be used, or None."""
    if len(content) == 0 or len(f0) == 0:
        return f"{stem}: too short ({duration_s:.2f} s) to give any content frames; it is skipped."
    if not np.all(np.isfinite(content)):
        return f"{stem}: the content encoder returned NaN/inf values; it is skipped."
    if not np.all(np.isfinite(f0)):
        return f"{stem}: the f0 method returned NaN/inf values; it is skipped."
    return None


def _is_done(exp: ExperimentDir, stem: str) -> int | None:
    """f0 frame count of a finished clip, or None when any of its files is missing or unreadable."""
    paths = feature_paths(exp, stem)
    if not all(p.is_file() for p in paths):
        return None
    try:
        return int(np.load(paths[1], mmap_mode="r").shape[0])
    except (OSError, ValueError):
        return None


def _start_manifest(ds: DatasetDir, exp: ExperimentDir, dataset: DatasetManifest,
                    settings: dict) -> FeatureManifest:
    """A fresh manifest (clips are found again from their files); when the settings differ from the previous
    manifest's, the old feature files are removed."""
    data = read_json(exp.features_manifest_path, default=None)
    old = FeatureManifest.from_json(data or {})
    if old.settings() != settings:
        if data:
            log.warning("features of %s were made with %s; extracting again with %s", exp.name, old.settings(),
                        settings)
        for folder in (exp.content_dir, exp.f0_dir, exp.f0_coarse_dir):  # files of unknown or other settings
            shutil.rmtree(folder, ignore_errors=True)
        old = FeatureManifest()
    return FeatureManifest(dataset=ds.name, dataset_dir=str(ds.root), clips_dir=str(ds.clips_dir),
                           sample_rate=int(dataset.sample_rate or 0), **settings, complete=False,
                           created=old.created or time.strftime("%Y-%m-%dT%H:%M:%S"))


class _ManifestWriter:
    """The manifest being built: the clips done and failed so far, saved (atomically) as a `FeatureManifest`."""

    def __init__(self, exp: ExperimentDir, start: FeatureManifest) -> None:
        self.path, self.manifest = exp.features_manifest_path, start
        self.clips: dict[str, dict] = dict(start.clips)
        self.failed: dict[str, str] = dict(start.failed)

    def save(self, **changes: Any) -> FeatureManifest:
        self.manifest = dataclasses.replace(self.manifest, clips=dict(self.clips), failed=dict(self.failed), **changes)
        write_json_atomic(self.path, self.manifest.to_json())
        return self.manifest


def extract_features(ds: DatasetDir, exp: ExperimentDir, cfg: FeatureConfig = FeatureConfig(),
                     progress: Progress = no_progress, cancel: CancelToken = NEVER, *,
                     services: Services) -> FeatureSet:
    """Extract content features, f0 (Hz) and coarse f0 for every clip of dataset `ds` into `exp.features_dir`.

    `services` gives the workspace (where models/base is), the device and the model cache. Clips already
    extracted with the same settings are reused. Clips that give no frames or NaN are listed under "failed" and
    skipped.
    Raises MissingArtifactError (no dataset, no weights), InputError (no clips), Cancelled.
    """
    started = time.monotonic()
    workspace, device = services.workspace, services.device
    dataset_manifest = DatasetManifest.read(ds)
    sources = _clip_sources(ds)
    if not dataset_manifest or not sources:
        raise MissingArtifactError(f"Dataset {ds.name!r} has no clips in {ds.clips_16k_dir}. Prepare it first in the "
                                   f"Dataset tab (or `python -m voiceapp dataset {ds.name} INPUT...`).")
    f0_name = check_f0_method(cfg.f0_method or default_f0_method(workspace), workspace)
    encoder_name = cfg.encoder or default_encoder(workspace)
    progress(0.0, f"loading {encoder_name}")
    encoder = _load_encoder(encoder_name, cfg.version, services)
    settings = {"encoder": encoder.name, "dim": int(encoder.dim), "version": cfg.version, "f0_method": f0_name}
    start = dataclasses.replace(_start_manifest(ds, exp, dataset_manifest, settings),
                                versions=_versions(f0_name, encoder.name))
    writer = _ManifestWriter(exp, start)
    result = FeatureSet(exp, start)
    todo: dict[str, Path] = {}
    for stem, path in sources.items():
        frames = _is_done(exp, stem)
        if frames is None:
            todo[stem] = path
        else:
            writer.clips[stem] = {"frames": frames}
            result.reused += 1
    writer.save()
    if todo:
        _run(todo, exp, encoder, f0_name, device, workspace, cfg, result, writer, progress, cancel, len(sources),
             services.cache)
    writer.clips = dict(sorted(writer.clips.items()))
    result.manifest = writer.save(f0_stats=_f0_stats(exp, list(writer.clips)), complete=True,
                                  updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
    result.clips = list(result.manifest.clips)
    result.failed = dict(result.manifest.failed)
    result.seconds = time.monotonic() - started
    for stem, reason in result.failed.items():
        log.warning("features: %s", reason)
    if not result.clips:
        raise InputError(f"No clip of dataset {ds.name!r} gave usable features ({len(result.failed)} failed, e.g. "
                         f"{next(iter(result.failed.values()), '?')}). Check the dataset.")
    progress(1.0, f"{len(result.clips)} clips ({result.extracted} new, {result.reused} reused), "
                  f"{len(result.failed)} failed")
    return result


def _f0_stats(exp: ExperimentDir, stems: list[str]) -> dict[str, float]:
    """Pitch range of the dataset's voiced frames (for choosing a transpose later)."""
    voiced, total = [], 0
    for stem in stems:
        f0 = np.load(feature_paths(exp, stem)[1])
        voiced.append(f0[f0 > 0])
        total += len(f0)
    values = np.concatenate(voiced) if voiced else np.zeros(0, np.float32)
    if not len(values):
        return {"voiced_fraction": 0.0}
    low, mid, high = np.percentile(values, [5, 50, 95])
    return {"voiced_fraction": round(len(values) / max(1, total), 3), "median_hz": round(float(mid), 1),
            "p5_hz": round(float(low), 1), "p95_hz": round(float(high), 1)}


def _load_encoder(name: str, version: str, services: Services) -> ContentEncoder:
    device, workspace = services.device, services.workspace
    key = ("content-encoder", name, version, device, str(workspace.root))
    return services.cache.get(key, lambda: load_encoder(name, version, device, workspace))


def _run(todo: dict[str, Path], exp: ExperimentDir, encoder: ContentEncoder, f0_name: str, device: str,
         workspace: Workspace, cfg: FeatureConfig, result: FeatureSet, writer: _ManifestWriter, progress: Progress,
         cancel: CancelToken, total: int, cache: Any = None) -> None:
    import torch

    in_process = getattr(F0_METHODS.get(f0_name), "in_process", False)
    pooled = not device.startswith("cuda") and not in_process and len(todo) >= cfg.pool_min_clips
    runner = _F0Runner(f0_name, device, workspace, cfg.workers if pooled else 0, cache)
    threads = torch.get_num_threads()
    last_save = time.monotonic()
    try:
        runner.start(todo)
        result.f0_workers = runner.n_workers
        if runner.pool is not None:
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - runner.n_workers))
        began = time.monotonic()
        for n, (stem, path) in enumerate(todo.items()):
            cancel.raise_if_set()
            left = time_left(time.monotonic() - began, n, len(todo) - n)
            progress((result.reused + n) / total, f"features: clip {result.reused + n + 1} of {total} ({stem})"
                                                  + (f", {left}" if left else ""))
            try:
                audio = _load_16k(path)
                content = encoder.encode(audio)
                f0 = runner.result(stem, audio)
            except Cancelled:
                raise
            except InputError as err:
                writer.failed[stem] = f"{stem}: {err}"
                continue
            reason = _check_clip(stem, len(audio) / SAMPLE_RATE, content, f0)
            if reason:
                writer.failed[stem] = reason
                continue
            content_path, f0_path, coarse_path = feature_paths(exp, stem)
            _save_npy(f0_path, f0.astype(np.float32))
            _save_npy(coarse_path, coarse_f0(f0))
            _save_npy(content_path, content.astype(np.float32))  # last: its presence marks the clip done
            writer.clips[stem] = {"frames": int(len(f0))}
            writer.failed.pop(stem, None)
            result.extracted += 1
            if time.monotonic() - last_save > cfg.save_every_s:
                writer.save()
                last_save = time.monotonic()
    finally:
        runner.close()
        torch.set_num_threads(threads)
        writer.save()
