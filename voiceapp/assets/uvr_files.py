"""UVR model files: checks, downloads and offline import for the catalogue in `assets/uvr.py`.

Checks: size, sha256 and UVR's own file hash (md5 of the last 10,000 KiB, the key of UVR's model data) when on
record (a Demucs file: the sha256 prefix in its name), and always a structural check (the ONNX graph opens and has
the input the model data expects; a checkpoint loads with `torch.load(weights_only=True)`; a Demucs `.th` loads
through the allow-list of `assets/demucs_checkpoint.py`; a yaml config parses and has `audio`, `model` and `training`).

Downloads go through the one downloader (`assets/download.py`: progress, resume, atomic placement). The mirror
setting ($VOICEAPP_UVR_MIRROR, or `mirror=`) is a base address under which every file is found by its file name
(`<mirror>/<file name>`), e.g. a copy of the UVR release on a LAN server or a Hugging Face repository.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from voiceapp.assets.download import CHUNK, DownloadError, fetch
from voiceapp.assets.uvr import MIRROR_ENV, UVR_HASH_TAIL_BYTES, UVR_MODELS, UvrFile, UvrModel, get_uvr_model
from voiceapp.errors import InputError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import Workspace, user_path

log = logging.getLogger(__name__)


def uvr_hash(path: Path) -> str:
    """UVR's file hash: md5 of the last 10,000 KiB (the whole file when smaller)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(max(0, size - UVR_HASH_TAIL_BYTES))
        return hashlib.md5(fh.read(), usedforsecurity=False).hexdigest()


class _ConfigLoader:
    """yaml.SafeLoader that also reads `!!python/tuple` (as a list): the UVR configs use it; nothing executes."""

    _cls: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._cls is None:
            import yaml

            class Loader(yaml.SafeLoader):
                pass

            Loader.add_constructor("tag:yaml.org,2002:python/tuple",
                                   lambda loader, node: loader.construct_sequence(node))
            cls._cls = Loader
        return cls._cls


def read_uvr_config(path: Path) -> dict:
    """The model config of an MDX23C / RoFormer checkpoint (yaml, read safely); InputError when unusable."""
    import yaml

    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_ConfigLoader.get())  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: not a readable model config ({type(err).__name__}: {str(err)[:200]}). "
                         f"Delete it and download or import it again.") from err
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("audio", "model", "training")):
        raise InputError(f"{path}: not an MDX23C / RoFormer config (it needs audio, model and training sections). "
                         f"Delete it and download or import the config that belongs to the checkpoint.")
    return data


def structural_problem(path: Path, f: UvrFile, model: UvrModel | None = None) -> str | None:
    """What is wrong with the file's content for its kind (None: it opens as it should). Loads the file."""
    try:
        if f.kind == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            shape = session.get_inputs()[0].shape
            if model is not None and model.mdx is not None and len(shape) == 4:
                want = [4, model.mdx.dim_f, 2 ** model.mdx.dim_t_exp]
                got = [d if isinstance(d, int) else None for d in shape[1:]]
                if any(g is not None and g != w for g, w in zip(got, want)):
                    return f"the ONNX input is {shape}, but {model.title} needs [batch, {want[0]}, {want[1]}, {want[2]}]"
        elif f.kind == "checkpoint":
            import torch

            torch.load(str(path), map_location="cpu", weights_only=True)
        elif f.kind == "demucs":
            from voiceapp.assets.demucs_checkpoint import load_demucs_package

            load_demucs_package(path)
        elif f.kind == "yaml":
            read_uvr_config(path)
    except InputError as err:
        return str(err)
    except Exception as err:  # onnxruntime, torch and pickle raise many types for a bad file
        return f"it does not open as {'an ONNX model' if f.kind == 'onnx' else 'a ' + f.kind} " \
               f"({type(err).__name__}: {str(err)[:160]})"
    return None


def check_uvr_file(path: Path, f: UvrFile, model: UvrModel | None = None, sha256: str | None = None) -> str | None:
    """None when `path` is a good copy of `f`: size, sha256 and UVR hash (when on record), then its content."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if f.size is not None and size != f.size:
        return f"size {size:,} bytes, expected {f.size:,}"
    if f.sha256 is not None or f.sha256_prefix is not None:
        digest = sha256 or _sha256(path)
        if f.sha256 is not None and digest != f.sha256:
            return f"sha256 {digest[:12]}… does not match the published file"
        if f.sha256_prefix is not None and not digest.startswith(f.sha256_prefix):
            return f"sha256 {digest[:12]}… does not start with {f.sha256_prefix}, as the published file's name says"
    if f.uvr_hash is not None and uvr_hash(path) != f.uvr_hash:
        return "its UVR hash does not match the published file (a different or damaged file)"
    return structural_problem(path, f, model)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_mirror(mirror: str | None = None) -> str | None:
    """The mirror base address: the argument, else $VOICEAPP_UVR_MIRROR, else None (the published addresses)."""
    value = (mirror or os.environ.get(MIRROR_ENV) or "").strip()
    return value.rstrip("/") or None


def file_url(f: UvrFile, mirror: str | None = None) -> str:
    base = resolve_mirror(mirror)
    return f"{base}/{f.name}" if base else f.url


def download_uvr_model(ws: Workspace, name: str, mirror: str | None = None, progress: Progress = no_progress,
                       cancel: CancelToken = NEVER, timeout_s: float = 30.0) -> list[Path]:
    """Download the model's missing or bad files into models/uvr/ (checked, then renamed into place).

    Writes `models/.downloads/uvr-<name>/` while downloading (removed afterwards). Files already present and good
    are kept. Raises VoiceAppError naming the file, the address and what to do when a file cannot be had.
    """
    model = get_uvr_model(name)
    staging = ws.downloads_dir / f"uvr-{model.name}"
    weights = [max(f.size or int((model.approx_mb or 1) * 1e6), 1) if f.kind != "yaml" else 1 for f in model.files]
    total, done, placed = sum(weights), 0, []
    try:
        for f, path, weight in zip(model.files, model.paths(ws), weights):
            step = sub_progress(progress, done / total, (done + weight) / total)
            placed.append(_download_file(model, f, path, mirror, staging, timeout_s, step, cancel))
            done += weight
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(1.0, f"{model.title}: ready")
    return placed


def _download_file(model: UvrModel, f: UvrFile, dest: Path, mirror: str | None, staging: Path, timeout_s: float,
                   progress: Progress, cancel: CancelToken) -> Path:
    if dest.is_file() and check_uvr_file(dest, f, model) is None:
        progress(1.0, f"{f.name}: already present")
        return dest
    url = file_url(f, mirror)
    try:
        fetch(url, dest, size=f.size, check=lambda path, sha256: check_uvr_file(path, f, model, sha256), attempts=2,
              part=staging / f"{f.name}.part", timeout_s=timeout_s, label=f.name, progress=progress, cancel=cancel)
    except DownloadError as err:
        raise VoiceAppError(
            f"Could not download {f.name} of {model.title} from {url} ({err.reason}). Check the connection (or set "
            f"{MIRROR_ENV} to a mirror that has the file) and try again, or download it by hand and import it "
            f"(Separate tab > UVR models > Import, or `python -m voiceapp assets import FILE`).") from err
    return dest


def identify_uvr_file(path: Path) -> tuple[UvrModel, UvrFile] | None:
    """The catalogue file `path` is, by sha256, then UVR hash, then file name; None when it is none of them."""
    files = [(m, f) for m in UVR_MODELS.values() for f in m.files]
    size = path.stat().st_size
    candidates = [(m, f) for m, f in files if f.size in (None, size)]
    if any(f.sha256 or f.sha256_prefix for _, f in candidates):
        digest = _sha256(path)
        for m, f in candidates:
            if f.sha256 == digest or (f.sha256 is None and f.sha256_prefix and digest.startswith(f.sha256_prefix)):
                return m, f
    if any(f.uvr_hash for _, f in candidates):
        tail = uvr_hash(path)
        for m, f in candidates:
            if f.uvr_hash == tail:
                return m, f
    named = [(m, f) for m, f in files if f.name.lower() == path.name.lower()]
    return named[0] if named else None


def import_uvr_files(ws: Workspace, paths: list[Path | str], progress: Progress = no_progress,
                     cancel: CancelToken = NEVER) -> list[tuple[UvrModel, Path]]:
    """Place model files the user already has (a UVR .onnx or .pth, a .ckpt and its .yaml, a Demucs .th) into
    models/uvr/.

    Each file is recognised (sha256, UVR hash or its published name), copied next to its destination, checked
    like a download, and renamed into place; the user's file is left as it is. Raises InputError naming the
    file and what to do for a file that is not in the catalogue or fails its check; files before it stay placed.
    """
    files = [user_path(p) for p in paths]
    if not files:
        raise InputError("No files given. Pick the model files (.onnx, .pth, .th, or .ckpt with its .yaml) to import.")
    placed = []
    for i, src in enumerate(files):
        cancel.raise_if_set()
        if not src.is_file():
            raise InputError(f"{src} is not a file; give the path of a downloaded UVR model file.")
        found = identify_uvr_file(src)
        if found is None:
            known = ", ".join(sorted(f.name for m in UVR_MODELS.values() for f in m.files))
            raise InputError(f"{src.name} is not a model file Voiceapp knows (compared by sha256, UVR hash and "
                             f"name). Known files: {known}.")
        model, f = found
        dest = ws.uvr_models_dir / f.name
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.import")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy(src, tmp, sub_progress(progress, i / len(files), (i + 1) / len(files)), cancel)
            problem = check_uvr_file(tmp, f, model)
            if problem:
                raise InputError(f"{src.name} does not match {model.title}'s {f.name}: {problem}. Download it again "
                                 f"(it may be truncated, damaged or another version).")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("imported %s as %s", src, dest)
        placed.append((model, dest))
    progress(1.0, f"imported {len(placed)} file(s)")
    return placed


def _copy(src: Path, dst: Path, progress: Progress, cancel: CancelToken) -> None:
    total = max(src.stat().st_size, 1)
    done = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            cancel.raise_if_set()
            fout.write(chunk)
            done += len(chunk)
            progress(done / total, f"copying {src.name}")
        fout.flush()
        os.fsync(fout.fileno())
