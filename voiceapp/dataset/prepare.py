"""The Dataset stage: a pile of recordings -> training clips at the model rate and at 16 kHz.

    inputs (files/folders) -> decode (any format, streamed) -> 48 Hz high-pass -> silence slicer
      -> 3.7 s chunks with 0.3 s overlap -> RVC normalisation -> datasets/<name>/clips{,_16k}/*.wav

Long files are processed in windows, so memory stays bounded. Each input is identified by the
sha256 of its bytes: running the stage again with the same name skips what is already done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from voiceapp.audio.dsp import db, highpass, peak, resample, rvc_normalize
from voiceapp.audio.io import AUDIO_EXTENSIONS, audio_info, find_audio_files, iter_blocks, save_audio
from voiceapp.dataset.report import FileStats, build_report
from voiceapp.dataset.slicer import ChunkConfig, SlicerConfig, chunk_spans, slice_audio
from voiceapp.errors import Cancelled, ConfigError, InputError, StorageError, VoiceAppError
from voiceapp.manifests import DATASET_MANIFEST_VERSION, DatasetManifest
from voiceapp.nets.presets import SAMPLE_RATES
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress
from voiceapp.services import Services
from voiceapp.workspace import (DatasetDir, atomic_path, file_sha256, is_temporary, sanitize_name, write_failure,
                                write_json_atomic)

log = logging.getLogger(__name__)

MANIFEST_VERSION = DATASET_MANIFEST_VERSION
CLIP_RATE_16K = 16000


@dataclass(frozen=True)
class DatasetConfig:
    sample_rate: int = 40000          # the model's rate: 32000, 40000 or 48000
    highpass: bool = True             # 48 Hz Butterworth high-pass (RVC)
    slicer: SlicerConfig = field(default_factory=SlicerConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    normalize_peak: float = 0.9       # RVC normalisation target peak
    normalize_alpha: float = 0.75     # blend of normalised and original clip
    drop_peak_above: float = 2.5      # a clip whose peak exceeds this is dropped (RVC)
    min_clip_s: float = 0.5           # shorter clips cannot fill a training segment
    window_s: float = 60.0            # long files are sliced in windows of this length
    copy_raw: bool = False            # copy each input into datasets/<name>/raw/ (the UI does)
    isolate_vocals: str | None = None  # separator name ("dsp", a trained U-Net): remove music before slicing

    def __post_init__(self) -> None:
        if self.sample_rate not in SAMPLE_RATES:
            raise ConfigError(f"Sample rate {self.sample_rate} is not one RVC models use; choose one of {SAMPLE_RATES}.")
        if not 0 < self.min_clip_s < 30:
            raise ConfigError(f"min_clip_s must be in (0, 30), got {self.min_clip_s}.")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class DatasetResult:
    """What `prepare_dataset` made: where the clips are, and the report."""

    dataset: DatasetDir
    clips: list[str]
    report: dict
    processed: list[Path]
    skipped_known: list[Path]
    rejected: list[tuple[Path, str]]
    own_files: list[Path] = field(default_factory=list)  # inputs inside the dataset's folder (its clips): left out


class _ClipWriter:
    """Chunks, normalises and writes the clips of one source file."""

    def __init__(self, ds: DatasetDir, key: str, start_index: int, cfg: DatasetConfig) -> None:
        self.ds, self.key, self.cfg = ds, key, cfg
        self.index = start_index
        self.clips: list[dict] = []
        self.dropped_short = 0
        self.dropped_loud = 0
        self.dropped_silent = 0

    def write_span(self, audio: np.ndarray, offset_samples: int) -> None:
        sr = self.cfg.sample_rate
        for start, end in chunk_spans(len(audio), sr, self.cfg.chunk):
            piece = audio[start:end]
            if len(piece) < self.cfg.min_clip_s * sr:
                self.dropped_short += 1
                continue
            top = peak(piece)
            if db(top) < self.cfg.slicer.threshold_db:
                self.dropped_silent += 1
                continue
            if top > self.cfg.drop_peak_above:
                self.dropped_loud += 1
                continue
            piece = rvc_normalize(piece, self.cfg.normalize_peak, self.cfg.normalize_alpha)
            name = f"{self.key}_{self.index:05d}.wav"
            self.index += 1
            save_audio(self.ds.clips_dir / name, piece, sr, "wav")
            save_audio(self.ds.clips_16k_dir / name, resample(piece, sr, CLIP_RATE_16K), CLIP_RATE_16K, "wav")
            self.clips.append({"name": name, "start_s": round((offset_samples + start) / sr, 3),
                               "end_s": round((offset_samples + end) / sr, 3),
                               "duration_s": round(len(piece) / sr, 3)})


def _process_file(path: Path, ds: DatasetDir, key: str, cfg: DatasetConfig, progress: Progress,
                  cancel: CancelToken) -> tuple[list[dict], FileStats, list[tuple[float, float]]]:
    """Slice one file into clips. Returns (clips, stats, cut spans in seconds)."""
    sr = cfg.sample_rate
    info = audio_info(path)
    stats = FileStats(duration_s=0.0, source_rate=info.sample_rate, channels=info.channels)
    writer = _ClipWriter(ds, key, 0, cfg)
    spans_s: list[tuple[float, float]] = []
    state = None
    buffer = np.zeros(0, dtype=np.float32)
    buffer_offset = 0
    window = int(cfg.window_s * sr)
    total_s = max(info.duration_s, 1e-6)

    def flush(final: bool) -> None:
        nonlocal buffer, buffer_offset
        spans = slice_audio(buffer, sr, cfg.slicer)
        keep_from = len(buffer)
        settled = len(buffer) - int(2 * cfg.slicer.max_sil_kept_ms * sr / 1000)
        if not final and spans and spans[-1][1] < settled:
            pass  # the last passage ended well before the buffer's end: everything is settled
        elif not final and len(spans) > 1:
            keep_from, spans = spans[-1][0], spans[:-1]  # the last span may go on in the next block
        elif not final and spans and len(buffer) < 2 * window:
            return  # one sounding passage still growing: wait for more audio
        for start, end in spans:
            writer.write_span(buffer[start:end], buffer_offset + start)
            spans_s.append(((buffer_offset + start) / sr, (buffer_offset + end) / sr))
        buffer = buffer[keep_from:]
        buffer_offset += keep_from

    for block in iter_blocks(path, sr, mono=True, block_s=30.0):
        cancel.raise_if_set()
        stats.add_block(block, sr)
        if cfg.highpass:
            block, state = highpass(block, sr, state=state)
        buffer = np.concatenate([buffer, block])
        if len(buffer) >= window:
            flush(final=False)
        progress(min(stats.duration_s / total_s, 1.0), f"{path.name}: {stats.duration_s / 60:.1f} min read")
    flush(final=True)
    stats.dropped_short = writer.dropped_short
    stats.dropped_loud = writer.dropped_loud
    stats.dropped_silent = writer.dropped_silent
    if stats.duration_s == 0:
        raise InputError(f"{path.name}: contains no audio samples. Export it again from its source.")
    return writer.clips, stats, spans_s


def _check_usable(path: Path, clips: list[dict], stats: FileStats, cfg: DatasetConfig) -> None:
    if clips:
        return
    if stats.duration_s < cfg.min_clip_s:
        raise InputError(f"{path.name}: too short ({stats.duration_s:.2f} s); a clip needs at least "
                         f"{cfg.min_clip_s} s of sound. Use longer recordings.")
    if stats.peak_db < cfg.slicer.threshold_db:
        raise InputError(f"{path.name}: silent (peak {stats.peak_db:.0f} dBFS, below the {cfg.slicer.threshold_db:.0f} dB "
                         "threshold). Check the recording, or lower the silence threshold.")
    raise InputError(f"{path.name}: no usable clip (all pieces were shorter than {cfg.min_clip_s} s or louder than "
                     f"peak {cfg.drop_peak_above}). Lower the silence threshold or check the levels.")


def _copy_raw(path: Path, ds: DatasetDir, key: str) -> Path:
    ds.raw_dir.mkdir(parents=True, exist_ok=True)
    if ds.raw_dir.resolve() in path.resolve().parents:
        return path
    stem = sanitize_name(path.stem, "file name") if any(c.isalnum() for c in path.stem) else "audio"
    target = ds.raw_dir / f"{stem}_{key[:8]}{path.suffix.lower()}"
    if not target.exists():
        with atomic_path(target) as tmp:  # removed on failure; a killed copy is cleaned by the next run
            shutil.copyfile(path, tmp)
    return target


def _save_manifest_now(ds: DatasetDir, manifest: DatasetManifest, sources: dict[str, dict], last_save: float,
                       every_s: float = 2.0) -> float:
    """Save the manifest at most every few seconds (a killed run redoes at most those files)."""
    now = time.monotonic()
    if now - last_save < every_s:
        return last_save
    write_json_atomic(ds.manifest_path, dataclasses.replace(manifest, sources=dict(sources)).to_json())
    return now


def load_manifest(ds: DatasetDir) -> DatasetManifest | None:
    """The dataset's manifest, or None when it has not been prepared."""
    return DatasetManifest.read(ds)


def _isolate(path: Path, ds: DatasetDir, key: str, cfg: DatasetConfig, services: Services, progress: Progress,
             cancel: CancelToken) -> Path:
    """The vocals of `path` under datasets/<name>/vocals/<key>/ (made once; the input is only read)."""
    from voiceapp.separate.separator import isolate_vocals_file

    out_dir = ds.root / "vocals" / key
    done = out_dir / f"{path.stem}.wav"
    if done.exists():
        return done
    return isolate_vocals_file(path, out_dir, cfg.isolate_vocals, services, progress=progress, cancel=cancel)


def _own_files(files: list[Path], ds: DatasetDir) -> tuple[list[Path], list[Path]]:
    """(inputs to process, inputs that are the dataset's own files): its clips, 16 kHz clips and isolated vocals
    would be sliced again. Its raw/ copies are kept (their content is already known and skipped)."""
    root, raw = ds.root.resolve(), ds.raw_dir.resolve()
    keep, own = [], []
    for path in files:
        where = path.resolve()
        (own if root in where.parents and raw not in where.parents else keep).append(path)
    return keep, own


def remove_temporaries(ds: DatasetDir) -> int:
    """Delete the leftovers of writes a killed run interrupted (`.<name>.<random>.tmp.wav`, `.<raw>.tmp`)."""
    removed = 0
    for path in ds.root.rglob(".*") if ds.root.is_dir() else []:
        if path.is_file() and is_temporary(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _remove_clips(ds: DatasetDir, key: str) -> None:
    """The clips of one source, written before it failed (they would be trained on without being in the report)."""
    for folder in (ds.clips_dir, ds.clips_16k_dir):
        for path in folder.glob(f"{key}_*.wav") if folder.is_dir() else []:
            path.unlink(missing_ok=True)


def prepare_dataset(inputs: list[Path | str], ds: DatasetDir, cfg: DatasetConfig = DatasetConfig(),
                    progress: Progress = no_progress, cancel: CancelToken = NEVER, *,
                    services: Services) -> DatasetResult:
    """Turn audio files and folders (recursive) into a training set under `ds`.

    Writes `clips/<key>_<n>.wav` (float32 at `cfg.sample_rate`), `clips_16k/` (16 kHz), `manifest.json`
    and `report.json`. Bad files are rejected with a reason and the rest is processed. Inputs whose
    content was processed before (same sha256) are skipped, and so are the dataset's own clips. The inputs
    are only read. A new dataset that gets no clip leaves no folder behind.
    """
    is_new = not ds.root.exists()
    try:
        return _prepare(inputs, ds, cfg, progress, cancel, services)
    finally:
        manifest = load_manifest(ds) if is_new and ds.root.is_dir() else None
        if is_new and ds.root.is_dir() and not (manifest and manifest.ok_sources()):
            shutil.rmtree(ds.root, ignore_errors=True)


def _prepare(inputs: list[Path | str], ds: DatasetDir, cfg: DatasetConfig, progress: Progress,
             cancel: CancelToken, services: Services) -> DatasetResult:
    files, missing = find_audio_files(list(inputs))
    files, own = _own_files(files, ds)
    if own and not files:
        raise InputError(f"All {len(own)} input file(s) are dataset {ds.name!r}'s own clips ({ds.root}); slicing "
                         f"them again would duplicate them. Give the original recordings instead.")
    remove_temporaries(ds)
    manifest = load_manifest(ds)
    if manifest and manifest.sample_rate != cfg.sample_rate:
        raise InputError(f"Dataset {ds.name!r} was prepared at {manifest.sample_rate} Hz; use the same rate "
                         f"or another dataset name.")
    if not files:
        where = f" (not found: {', '.join(str(p) for p, _ in missing[:3])})" if missing else ""
        raise InputError(f"No audio files found{where}. Choose files or folders with recordings "
                         f"({', '.join(AUDIO_EXTENSIONS[:6])}, ...).")
    manifest = manifest or DatasetManifest(name=ds.name, sample_rate=cfg.sample_rate,
                                           created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    manifest = dataclasses.replace(manifest, config=cfg.to_json())
    sources: dict[str, dict] = dict(manifest.sources)
    ds.clips_dir.mkdir(parents=True, exist_ok=True)
    ds.clips_16k_dir.mkdir(parents=True, exist_ok=True)
    processed, known, rejected = [], [], [(p, f"{p}: not found") for p, _ in missing]
    last_save = 0.0
    for n, path in enumerate(files):
        cancel.raise_if_set()
        step = lambda f, m, n=n: progress((n + f) / len(files), m)  # noqa: E731
        step(0.0, f"{path.name}")
        try:
            key = file_sha256(path)[:12]
            if cfg.isolate_vocals:
                key = hashlib.sha256(f"{key}:{cfg.isolate_vocals}".encode()).hexdigest()[:12]
        except OSError as err:
            rejected.append((path, f"{path.name}: cannot read ({err.strerror})."))
            continue
        if sources.get(key, {}).get("status") == "ok":
            known.append(path)
            continue
        try:
            source = path
            if cfg.isolate_vocals:
                step(0.0, f"{path.name}: isolating vocals ({cfg.isolate_vocals})")
                source = _isolate(path, ds, key, cfg, services, lambda f, m: step(0.5 * f, m), cancel)
            clips, stats, spans = _process_file(source, ds, key, cfg, step, cancel)
            _check_usable(path, clips, stats, cfg)
        except BaseException as err:
            _remove_clips(ds, key)  # half a file's clips are not kept
            problem = write_failure(err, ds.clips_dir) if not isinstance(err, VoiceAppError) else err
            if not isinstance(problem, VoiceAppError) or isinstance(problem, (Cancelled, StorageError)):
                if problem is not None and problem is not err:
                    raise problem from err
                raise  # a stop, a full or read-only disk, or a bug: the other files would not fare better
            rejected.append((path, str(err)))
            sources[key] = {"path": str(path), "status": "rejected", "reason": str(err)}
            last_save = _save_manifest_now(ds, manifest, sources, last_save)
            continue
        raw = _copy_raw(path, ds, key) if cfg.copy_raw else path
        sources[key] = {"path": str(path), "raw": str(source if cfg.isolate_vocals else raw), "status": "ok",
                        "stats": stats.to_json(), "isolated_with": cfg.isolate_vocals,
                        "cuts_s": [[round(a, 3), round(b, 3)] for a, b in spans], "clips": clips}
        last_save = _save_manifest_now(ds, manifest, sources, last_save)
        processed.append(path)
        log.info("%s: %d clips", path.name, len(clips))
    for path, reason in rejected:
        log.warning("rejected %s", reason)
    manifest = dataclasses.replace(manifest, sources=sources)
    report = build_report(manifest, cfg, extra_rejected=[(str(p), r) for p, r in rejected])
    write_json_atomic(ds.manifest_path, manifest.to_json())
    write_json_atomic(ds.report_path, report)
    progress(1.0, f"{report['clip_count']} clips, {report['kept_minutes']:.1f} min")
    clips = [c["name"] for s in sources.values() if s.get("status") == "ok" for c in s["clips"]]
    if not clips:
        reasons = "; ".join(reason for _, reason in rejected[:3])
        raise InputError(f"No training clips could be made from the {len(files)} file(s) given: {reasons}")
    return DatasetResult(ds, clips, report, processed, known, rejected, own)
