"""The only module that knows folder and file names on disk, and how to write them safely.

    <root>/models/base/...                 downloaded base assets (ContentVec, RMVPE, pretrained G/D)
    <root>/models/voices/<name>/<name>.pth voice models (+ .index)
    <root>/datasets/<name>/                raw/, clips/, clips_16k/, manifest.json, report.json
    <root>/logs/<exp>/                     features, checkpoints, TensorBoard events, events.jsonl
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from voiceapp.errors import InputError, StorageError, VoiceAppError, storage_error
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress

_MAX_NAME = 64
_CHUNK = 4 * 1024 * 1024
_NEARLY_FULL_BYTES = 1 << 20   # a write that fails with less free space than this failed because the disk is full


def sanitize_name(name: str, what: str = "name") -> str:
    """Turn a user-supplied name into a safe folder name, or raise `InputError`.

    Keeps letters (any script), digits, `-`, `_` and `.`; spaces become `_`; path separators,
    quotes, control and bidi characters are removed. Leading dots are stripped.
    """
    text = unicodedata.normalize("NFC", str(name or "")).strip()
    text = re.sub(r"\s+", "_", text)
    kept = [c for c in text if c in "-_." or unicodedata.category(c)[0] in "LN"]
    cleaned = "".join(kept).lstrip(".")[:_MAX_NAME].rstrip(".")
    if not cleaned:
        raise InputError(f"The {what} {name!r} has no usable characters; use letters, digits, '-' or '_'.")
    if cleaned.upper() in {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                           *(f"LPT{i}" for i in range(10))}:
        cleaned = f"_{cleaned}"
    return cleaned


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` only on success.

    A crash or kill at any moment leaves either the old file or the new one, never half of one.
    The temporary name keeps the target's suffix so that writers that pick a format from it work.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    except OSError as err:
        raise (write_failure(err, target) or err) from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except Exception as err:  # noqa: BLE001 - a full or read-only disk becomes a message; the rest passes on
        problem = write_failure(err, target)
        if problem is None:
            raise
        raise problem from err
    finally:
        if tmp.exists():
            tmp.unlink()


def write_failure(err: BaseException, target: Path | str) -> StorageError | None:
    """The `StorageError` behind a failed write of `target`, or None when the disk is not the problem.

    OSErrors carry their reason; writers that hide it (libsndfile's "System error", torch's "file write
    failed") are diagnosed from the folder: almost no free space means a full disk, no write access a
    read-only or forbidden folder.
    """
    if isinstance(err, VoiceAppError):
        return err if isinstance(err, StorageError) else None
    if isinstance(err, OSError) and err.filename is not None and is_temporary(Path(os.fsdecode(err.filename))):
        err = OSError(err.errno, err.strerror, str(target))  # name the file the user asked for, not our temp name
    found = storage_error(err, target)
    if found is not None or not isinstance(err, (OSError, RuntimeError)):
        return found
    folder = Path(target).parent
    try:
        if shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES:
            return storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)))
        if not os.access(folder, os.W_OK):
            return storage_error(OSError(errno.EACCES, os.strerror(errno.EACCES), str(folder)))
    except OSError:
        return None
    return None


def is_inside(path: Path | str, folder: Path | str) -> bool:
    """True when `path` is `folder` or lies below it (both taken as given; resolve them first)."""
    path, folder = Path(os.path.normcase(os.path.abspath(path))), Path(os.path.normcase(os.path.abspath(folder)))
    return path == folder or folder in path.parents


def same_file(a: Path | str, b: Path | str) -> bool:
    """True when `a` and `b` name one file: the same path, or the same inode (hard or symbolic links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def write_bytes_atomic(target: Path | str, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: Path | str, text: str) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: Path | str, data: Any) -> Path:
    return write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path | str, default: Any = None) -> Any:
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def user_path(text: str | Path) -> Path:
    """A path the user typed or pasted: surrounding whitespace and quotes removed, `~` expanded."""
    return Path(str(text).strip().strip('"').strip("'")).expanduser()


def file_sha256(path: Path | str, progress: Progress = no_progress, cancel: CancelToken = NEVER) -> str:
    """The sha256 hex digest of a file, read in 4 MB blocks (progress per block; `cancel` stops it)."""
    path = Path(path)
    digest = hashlib.sha256()
    total = max(path.stat().st_size, 1)
    done = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            cancel.raise_if_set()
            digest.update(chunk)
            done += len(chunk)
            progress(done / total, f"checking {path.name}")
    return digest.hexdigest()


def index_filename(name: str, n_lists: int, version: str) -> str:
    """RVC's file name for a usable retrieval index; RVC WebUI and Applio find it next to the model."""
    return f"added_IVF{int(n_lists)}_Flat_nprobe_1_{name}_{version}.index"


def distinct_names(names: list[str]) -> list[str]:
    """The file names as a user sees them in a list, with a repeated name numbered as a file manager does:
    ["mixture.flac", "mixture.flac"] -> ["mixture.flac", "mixture (2).flac"] (two uploads of the same name)."""
    given, used, out = set(names), set(), []
    for name in names:
        label, n = name, 1
        while label in used or (n > 1 and label in given):
            n += 1
            stem, dot, suffix = name.rpartition(".")
            label = f"{stem} ({n}).{suffix}" if dot and stem else f"{name} ({n})"
        used.add(label)
        out.append(label)
    return out


def is_temporary(path: Path) -> bool:
    """True for the leftovers of an interrupted atomic write."""
    return path.name.startswith(".") and ".tmp" in path.name


@dataclass(frozen=True)
class DatasetDir:
    """Paths of one dataset: `datasets/<name>/`."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def clips_dir(self) -> Path:
        return self.root / "clips"

    @property
    def clips_16k_dir(self) -> Path:
        return self.root / "clips_16k"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report_path(self) -> Path:
        return self.root / "report.json"

    def exists(self) -> bool:
        return self.manifest_path.exists()


@dataclass(frozen=True)
class ExperimentDir:
    """Paths of one training experiment: `logs/<name>/`."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    # Feature files (voiceapp/features/extract.py): one .npy per clip stem in each folder.
    @property
    def content_dir(self) -> Path:
        """`features/content/<stem>.npy`: float32 (frames_50Hz, dim)."""
        return self.features_dir / "content"

    @property
    def f0_dir(self) -> Path:
        """`features/f0/<stem>.npy`: float32 f0 in Hz at 100 frames/s (0 = unvoiced)."""
        return self.features_dir / "f0"

    @property
    def f0_coarse_dir(self) -> Path:
        """`features/f0_coarse/<stem>.npy`: int64 pitch tokens 1..255."""
        return self.features_dir / "f0_coarse"

    @property
    def features_manifest_path(self) -> Path:
        return self.features_dir / "manifest.json"

    @property
    def train_config_path(self) -> Path:
        return self.root / "train.json"

    @property
    def pending_train_config_path(self) -> Path:
        """The settings of a Start whose child has not yet built its model: moved to `train.json` once it has
        (a Start that fails before that leaves the saved settings as they were)."""
        return self.root / "train.pending.json"

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root

    @property
    def tensorboard_dir(self) -> Path:
        return self.root

    @property
    def train_log_path(self) -> Path:
        """stdout/stderr of the training child process."""
        return self.root / "train.log"

    @property
    def train_pid_path(self) -> Path:
        """JSON {pid, started, command} of the running training child process."""
        return self.root / "train.pid"

    def index_path(self, n_lists: int, version: str) -> Path:
        """`logs/<exp>/added_IVF<n>_Flat_nprobe_1_<exp>_<v>.index` (its JSON sidecar: the same name + `.json`)."""
        return self.root / index_filename(self.name, n_lists, version)


@dataclass(frozen=True)
class Workspace:
    """The folder that holds `models/`, `datasets/` and `logs/`."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def base_dir(self) -> Path:
        return self.models_dir / "base"

    @property
    def voices_dir(self) -> Path:
        return self.models_dir / "voices"

    @property
    def separators_dir(self) -> Path:
        return self.models_dir / "separators"

    @property
    def uvr_models_dir(self) -> Path:
        """UVR / audio-separator model files (catalogue: voiceapp/assets/uvr.py), under their published names."""
        return self.models_dir / "uvr"

    # Base assets (registry: voiceapp/assets/registry.py; `python -m voiceapp assets list`).
    @property
    def contentvec_dir(self) -> Path:
        """RVC's HF `hubert_base` folder (ContentVec): config.json, preprocessor_config.json, pytorch_model.bin."""
        return self.base_dir / "contentvec"

    @property
    def rmvpe_path(self) -> Path:
        return self.base_dir / "rmvpe.pt"

    @property
    def pretrained_v2_dir(self) -> Path:
        """RVC's pretrained v2 generators/discriminators: f0G40k.pth, f0D40k.pth, ..."""
        return self.base_dir / "pretrained_v2"

    def pretrained_path(self, part: str, version: str, sample_rate: int, use_f0: bool = True) -> Path:
        """RVC's pretrained G or D (`part`): models/base/pretrained_v2/f0G40k.pth (v1: models/base/pretrained/)."""
        folder = self.pretrained_v2_dir if version == "v2" else self.base_dir / "pretrained"
        return folder / f"{'f0' if use_f0 else ''}{part}{int(sample_rate) // 1000}k.pth"

    def voice_model_path(self, name: str, suffix: str = "") -> Path:
        """models/voices/<name>/<name><suffix>.pth; suffix "" (final), "_best", "_e<epoch>_s<step>"."""
        clean = sanitize_name(name, "model name")
        return self.voices_dir / clean / f"{clean}{suffix}.pth"

    @property
    def whisper_tiny_dir(self) -> Path:
        """Whisper tiny.en in CTranslate2 format (faster-whisper): model.bin, config.json, tokenizer.json, ..."""
        return self.base_dir / "whisper-tiny.en"

    @property
    def piper_dir(self) -> Path:
        """Piper TTS voices: <voice>.onnx + <voice>.onnx.json (used when the piper-tts package is installed)."""
        return self.base_dir / "piper"

    @property
    def tts_outputs_dir(self) -> Path:
        """Speech made in the TTS tab: <stamp>_base.wav and <stamp>_<model>.wav."""
        return self.outputs_dir / "tts"

    @property
    def downloads_dir(self) -> Path:
        """Partial downloads and imports, on the same disk as their destination so the final move is a rename."""
        return self.models_dir / ".downloads"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def f0_curves_dir(self) -> Path:
        """`outputs/f0/`: f0 curves exported from the UI as `<stem>_<method>.csv`."""
        return self.outputs_dir / "f0"

    def conversions_dir(self, model_name: str) -> Path:
        """outputs/converted/<model>/: where the Inference tab writes converted audio."""
        return self.outputs_dir / "converted" / sanitize_name(model_name, "model name")

    def covers_dir(self, model_name: str) -> Path:
        """outputs/covers/<model>/: the Inference tab's song covers, `<song>.<fmt>` + `<song>_stems/`."""
        return self.outputs_dir / "covers" / sanitize_name(model_name, "model name")

    def dataset(self, name: str) -> DatasetDir:
        return DatasetDir(self.datasets_dir / sanitize_name(name, "dataset name"))

    def experiment(self, name: str) -> ExperimentDir:
        return ExperimentDir(self.logs_dir / sanitize_name(name, "experiment name"))

    def voice_dir(self, name: str) -> Path:
        return self.voices_dir / sanitize_name(name, "model name")

    def separator_dir(self, name: str) -> Path:
        """`models/separators/<name>/`: model.safetensors + separator.json; training state in `training/`."""
        return self.separators_dir / sanitize_name(name, "separator name")

    @property
    def separated_dir(self) -> Path:
        """`outputs/separated/`: the Separate tab writes `<song>/vocals.wav` and `instrumental.wav` here."""
        return self.outputs_dir / "separated"

    def server_path(self, text: str, what: str = "folder", inside: Path | None = None) -> Path:
        """A path typed into the web app, resolved (relative paths start at the workspace root).

        Raises `InputError` when it (after following links) lies outside the workspace, or outside
        `inside` when given: the web app reads and writes no other folder of the server.
        """
        raw = str(text or "").strip().strip('"').strip("'")
        path = user_path(raw)
        resolved = (path if path.is_absolute() else self.root / path).resolve()
        limit = Path(inside).resolve() if inside is not None else self.root
        if not is_inside(resolved, limit):
            todo = (f"Leave it empty for the default, or give a folder inside {limit}" if inside is not None else
                    f"Copy the files into {limit} (or upload them)")
            raise InputError(f"The {what} {raw!r} is outside {limit}; the web app only uses folders inside it. "
                             f"{todo}, or use the command line (`python -m voiceapp ...`) for other folders.")
        return resolved

    def list_datasets(self) -> list[str]:
        if not self.datasets_dir.is_dir():
            return []
        return sorted(p.name for p in self.datasets_dir.iterdir() if (p / "manifest.json").exists())

    def list_experiments(self) -> list[str]:
        if not self.logs_dir.is_dir():
            return []
        return sorted(p.name for p in self.logs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def ensure(self) -> "Workspace":
        """Create the workspace folders; `StorageError` when the disk refuses (read-only, no permission, full)."""
        for folder in (self.base_dir, self.voices_dir, self.datasets_dir, self.logs_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise (storage_error(err, folder) or StorageError(
                    f"Cannot create the folder {folder} ({err.strerror or err}). Check that the workspace "
                    f"{self.root} is a writable folder, or choose another with --root.")) from err
        return self
