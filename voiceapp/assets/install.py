"""Putting base assets into the workspace: `download_asset(s)` through the one downloader (`assets/download.py`),
`import_asset` for files the user already has.

Downloads come from `<endpoint>/<repo>/resolve/<revision>/<path>` (endpoint: the argument, else $HF_ENDPOINT, a
mirror, else huggingface.co; HF_HUB_OFFLINE=1 refuses) into `models/.downloads/<asset>/`, resume when the
connection breaks, are checked (size and sha256), downloaded again once when the file is corrupt, and only then
renamed into place. `import_asset` places a file the user already has after the same checks. Nothing downloads at
import time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from voiceapp.assets.download import CHUNK, DownloadError, fetch, hub_offline
from voiceapp.assets.registry import ASSETS, Asset, AssetFile, expand_names, file_problem, get_asset, sha256_matches
from voiceapp.errors import InputError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import Workspace, user_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadConfig:
    endpoint: str | None = None         # None: $HF_ENDPOINT, else https://huggingface.co
    retries_on_bad_file: int = 1        # a corrupt or truncated file is downloaded again this many times
    timeout_s: float = 20.0             # seconds without data before a request gives up (then resumes)


def download_assets(ws: Workspace, names: list[str] | tuple[str, ...], cfg: DownloadConfig = DownloadConfig(),
                    progress: Progress = no_progress, cancel: CancelToken = NEVER) -> list[Path]:
    """Download several assets (groups allowed); returns the usable path of each."""
    names = expand_names(names)
    total = max(sum(ASSETS[n].size for n in names), 1)
    done, paths = 0, []
    for name in names:
        size = max(ASSETS[name].size, 1)
        step = sub_progress(progress, done / total, (done + size) / total)
        paths.append(download_asset(ws, name, cfg, step, cancel))
        done += size
    progress(1.0, "done")
    return paths


def download_asset(ws: Workspace, name: str, cfg: DownloadConfig = DownloadConfig(),
                   progress: Progress = no_progress, cancel: CancelToken = NEVER) -> Path:
    """Download the files of one asset that are missing or wrong, verify them, and move them into place.

    Reads nothing but the network and writes `models/.downloads/<name>/` (removed afterwards) and the
    asset's destination. Files already present with the right size and sha256 are kept.
    """
    asset = get_asset(name)
    staging = ws.downloads_dir / asset.name
    total = max(asset.size, 1)
    done = 0
    try:
        for f in asset.files:
            share = max(f.size or 0, 1) / total
            step = sub_progress(progress, done / total, done / total + share)
            _download_file(ws, asset, f, cfg, step, cancel, staging)
            done += f.size or 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(1.0, f"{asset.title}: ready")
    return asset.path(ws)


def _download_file(ws: Workspace, asset: Asset, f: AssetFile, cfg: DownloadConfig, progress: Progress,
                   cancel: CancelToken, staging: Path) -> Path:
    dest = asset.dest_dir(ws) / f.name
    if dest.is_file() and file_problem(dest, f) is None:
        progress(1.0, f"{f.name}: already present")
        return dest
    url = asset.url(f, cfg.endpoint)
    try:
        if hub_offline():
            raise DownloadError("offline mode is on: HF_HUB_OFFLINE is set", retry=False)
        fetch(url, dest, size=f.size, check=lambda path, sha256: file_problem(path, f, sha256=sha256),
              attempts=1 + max(cfg.retries_on_bad_file, 0), part=staging / f"{f.name}.part", timeout_s=cfg.timeout_s,
              label=f.name, progress=progress, cancel=cancel)
    except DownloadError as err:
        raise VoiceAppError(
            f"Could not download {f.remote_path} of {asset.title} from {url} ({err.reason}). Check the connection "
            f"(or point HF_ENDPOINT at a mirror) and try again, or download the file by hand and run "
            f"`python -m voiceapp assets import FILE`.") from err
    return dest


# --- offline import ---------------------------------------------------------------------------------------


def import_asset(ws: Workspace, path: Path | str, as_name: str | None = None,
                 progress: Progress = no_progress, cancel: CancelToken = NEVER) -> list[Path]:
    """Place asset files the user already has: a file, or a folder of files (e.g. a `hubert_base/` folder).

    Each file is copied into `models/.downloads/` while its sha256 is computed, recognised by its sha256
    (or, with `as_name`, by its file name within that asset), checked, and renamed into place.
    Raises InputError when a file is not a known asset file or fails the check; nothing is placed then.
    """
    path = user_path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist; give the path of a downloaded asset file or folder.")
    asset = get_asset(as_name) if as_name else None
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    if asset is not None and path.is_dir():
        files = [p for p in files if any(p.name == f.name for f in asset.files)]
    if not files:
        raise InputError(f"{path} holds no files of {asset.title if asset else 'a known asset'}.")
    placed = []
    for i, file in enumerate(files):
        sub = sub_progress(progress, i / len(files), (i + 1) / len(files))
        dest = _import_file(ws, file, asset, sub, cancel, quiet=path.is_dir() and asset is None)
        if dest is not None:
            placed.append(dest)
    if not placed:
        raise InputError(f"No file in {path} is a known base asset (compared by sha256). "
                         f"See `python -m voiceapp assets list` for what each asset contains.")
    progress(1.0, f"placed {len(placed)} file(s)")
    return placed


def _import_file(ws: Workspace, file: Path, asset: Asset | None, progress: Progress, cancel: CancelToken,
                 quiet: bool) -> Path | None:
    ws.downloads_dir.mkdir(parents=True, exist_ok=True)
    tmp = ws.downloads_dir / f".import-{uuid.uuid4().hex[:8]}-{file.name}"
    try:
        digest = _copy_hashing(file, tmp, progress, cancel)
        match = _identify(digest, tmp.stat().st_size, file.name, asset)
        if match is None:
            if quiet:
                return None
            where = f" of {asset.title}" if asset else ""
            raise InputError(f"{file} is not a known file{where} (sha256 {digest[:12]}…, "
                             f"{tmp.stat().st_size:,} bytes). Check that the download finished and that it is "
                             f"the file named in `python -m voiceapp assets list`.")
        found, spec = match
        problem = file_problem(tmp, spec, sha256=digest)
        if problem:
            raise InputError(f"{file} does not match {found.title}'s {spec.name}: {problem}. "
                             f"Download it again (it may be truncated or a different version).")
        dest = found.dest_dir(ws) / spec.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        log.info("placed %s as %s", file, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _copy_hashing(src: Path, dst: Path, progress: Progress, cancel: CancelToken) -> str:
    digest = hashlib.sha256()
    total = max(src.stat().st_size, 1)
    done = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            cancel.raise_if_set()
            digest.update(chunk)
            fout.write(chunk)
            done += len(chunk)
            progress(done / total, f"copying {src.name}")
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()


def _identify(digest: str, size: int, filename: str, asset: Asset | None) -> tuple[Asset, AssetFile] | None:
    """Which asset file this is: by sha256 (or a known alternative version), else by name within `asset`."""
    candidates = [asset] if asset is not None else list(ASSETS.values())
    for a in candidates:
        for f in a.files:
            versions = [(f.size, f.sha256), *f.also_accept]
            if any(h is not None and s in (None, size) and sha256_matches(digest, h) for s, h in versions):
                return a, f
    if asset is not None:
        named = [f for f in asset.files if f.name == filename or f.remote_path.endswith("/" + filename)]
        if len(named) == 1:
            return asset, named[0]
        if len(asset.files) == 1:
            return asset, asset.files[0]
    return None
