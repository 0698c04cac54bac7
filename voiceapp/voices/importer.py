"""Importing voice models into the store: `.pth` / `.index` / `.zip`, from disk or an http(s) URL.

Every `.pth` is opened with `torch.load(weights_only=True)` (`voices.file.read_checkpoint`), so a pickle that
needs code is refused before anything is written; zips are checked member by member (no `..`, no absolute
paths, no links, caps on count and unpacked size, no zip bombs) and refused as a whole when one member is bad.

Everything is unpacked and checked in a private folder under `models/.downloads/`; the store is touched
only at the end, by renaming a finished folder into `models/voices/<name>/`. A refused import writes nothing
into the store.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import urllib.parse
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from voiceapp.assets.download import DownloadError, fetch
from voiceapp.errors import InputError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.voices.file import UnsafeFileError, check_rvc_voice, read_checkpoint
from voiceapp.voices.store import INDEX_SUFFIX, find_index, get_model
from voiceapp.workspace import Workspace, atomic_path, sanitize_name, user_path

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pth", ".pt")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoreLimits:
    """Caps that keep a hostile or broken archive or download from filling the disk."""

    max_zip_members: int = 200
    max_unpacked_bytes: int = 4 * 1024**3       # all members together, as declared and as actually read
    max_compression_ratio: float = 200.0        # a member above 1 MB that unpacks more than this: a zip bomb
    max_download_bytes: int = 4 * 1024**3
    timeout_s: float = 60.0


@dataclass
class ImportResult:
    name: str
    pth: Path | None
    index: Path | None
    replaced: bool = False
    notes: list[str] = field(default_factory=list)
_SKIP_MEMBER = re.compile(r"(^|/)(__MACOSX/|\._)")


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.strip().lower().startswith(("http://", "https://"))


def import_model(ws: Workspace, sources: str | Path | list[str | Path], name: str | None = None,
                 overwrite: bool = False, limits: StoreLimits = StoreLimits(),
                 progress: Progress = no_progress, cancel: CancelToken = NEVER) -> ImportResult:
    """Import a voice model from `.pth` / `.index` / `.zip` files or http(s) URLs.

    - a `.pth` (with or without an `.index`, or a zip holding them) becomes `models/voices/<name>/<name>.pth`
      (+ `<name>.index`); `name` defaults to the `.pth` file's name;
    - an `.index` alone is added to the existing model `name`;
    - an existing model is replaced only with `overwrite=True`.
    Raises InputError (nothing written to the store) for unsafe zips, code-carrying pickles, non-models.
    """
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not items:
        raise InputError("Nothing to import: give a .pth, .index or .zip file, or an http(s) URL.")
    if name is not None and not str(name).strip():
        name = None
    adds_index = any(str(i).split("?")[0].lower().endswith(INDEX_SUFFIX) for i in items)
    if name and not adds_index and (ws.voice_dir(name) / f"{ws.voice_dir(name).name}.pth").exists():
        _refuse_existing(ws, sanitize_name(name, "model name"), overwrite)  # fail before any download
    ws.downloads_dir.mkdir(parents=True, exist_ok=True)
    staging = ws.downloads_dir / f".model-{uuid.uuid4().hex[:10]}"
    staging.mkdir()
    try:
        pths, indexes, notes = _gather(items, staging, limits, progress, cancel)
        return _place(ws, pths, indexes, notes, name, overwrite, staging, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _gather(items: list, staging: Path, limits: StoreLimits, progress: Progress,
            cancel: CancelToken) -> tuple[list[Path], list[Path], list[str]]:
    """Local copies of every `.pth` and `.index` in the sources (zips unpacked), in `staging`."""
    pths: list[Path] = []
    indexes: list[Path] = []
    notes: list[str] = []
    for i, item in enumerate(items):
        step = sub_progress(progress, 0.8 * i / len(items), 0.8 * (i + 1) / len(items))
        if is_url(item):
            local = download_url(str(item).strip(), staging / "downloads", limits, step, cancel)
        else:
            local = user_path(item)
            if not local.is_file():
                raise InputError(f"{local} is not a file; give a .pth, .index or .zip file, or an http(s) URL.")
        kind = _kind(local)
        if kind == "zip":
            found = unpack_zip(local, staging / f"zip{i}", limits, step, cancel)
            notes += [f"ignored {m} in {local.name}" for m in found["ignored"]]
            pths += found["pth"]
            indexes += found["index"]
        elif kind == "pth":
            pths.append(local)
        elif kind == "index":
            indexes.append(local)
        else:
            raise InputError(f"{local.name} is not a .pth, .index or .zip file; a voice model is a .pth "
                             f"(often zipped with an added_*.index).")
    return pths, indexes, notes


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return "zip"
    if suffix in MODEL_SUFFIXES:
        return "pth"
    if suffix == INDEX_SUFFIX:
        return "index"
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK"):  # a zip, or a torch file (itself a zip holding <name>/data.pkl)
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        return "pth" if any(n.endswith("/data.pkl") for n in names) and len({n.split("/")[0] for n in names}) == 1 \
            else "zip"
    if head[:1] == b"I" and head[1:4].isalpha():  # faiss fourcc, e.g. IwFl / IxF2
        return "index"
    return "pth" if head[:1] == b"\x80" else "unknown"  # legacy pickle-format torch file


def _place(ws: Workspace, pths: list[Path], indexes: list[Path], notes: list[str], name: str | None,
           overwrite: bool, staging: Path, progress: Progress) -> ImportResult:
    models = _voice_models(pths, notes)
    if not models:
        if not indexes:
            raise InputError("No voice model (.pth) or index found to import.")
        if not name:
            raise InputError("An index alone is added to an existing model: give the model's name.")
        return _attach_index(ws, sanitize_name(name, "model name"), _pick_index(indexes, name, notes), overwrite,
                             notes)
    if len(models) > 1:
        wanted = [p for p in models if name and sanitize_name(p.stem, "model name") == sanitize_name(name)]
        if len(wanted) != 1:
            raise InputError(f"Found {len(models)} voice models ({', '.join(p.name for p in models)}); import them "
                             f"one at a time (unzip first), or give the name of the one you want.")
        models = wanted
    pth = models[0]
    final = sanitize_name(name or pth.stem, "model name")
    index = _pick_index(indexes, pth.stem, notes) if indexes else None
    if index is not None:
        check_index_width(index, model_content_dim(pth), pth.name)
    replaced = _refuse_existing(ws, final, overwrite)
    dest = ws.voices_dir / final
    progress(0.85, f"placing {final}")
    if replaced:  # only the files this import brings are swapped; the rest of the folder stays
        _replace_files(dest, final, pth, index, staging, notes)
    else:
        folder = staging / "out" / final
        folder.mkdir(parents=True)
        _copy_or_move(pth, folder / f"{final}.pth", staging)
        if index is not None:
            _copy_or_move(index, folder / f"{final}{INDEX_SUFFIX}", staging)
        _swap_into_place(folder, dest, staging)
    progress(1.0, f"imported {final}")
    log.info("imported voice model %s (index: %s)", final, index is not None)
    return ImportResult(final, dest / f"{final}.pth", find_index(dest / f"{final}.pth"), replaced, notes)


def _replace_files(dest: Path, name: str, pth: Path, index: Path | None, staging: Path, notes: list[str]) -> None:
    """Swap `<name>.pth` (and the index, when one comes) in the existing folder `dest`, atomically.

    The new files are first written under temporary names in `dest`; the old versions are kept (as hard links,
    else copies) until every new file is renamed into place, and put back if a rename fails. The folder's other
    files (`<name>_best.pth`, per-epoch models, another index when none comes, sidecars) are not touched,
    except the old index and its JSON sidecar that the new index supersedes.
    """
    old_index = find_index(dest / f"{name}.pth")
    incoming = {f"{name}.pth": pth, **({f"{name}{INDEX_SUFFIX}": index} if index is not None else {})}
    tag = uuid.uuid4().hex[:8]
    temps: dict[str, Path] = {}
    backups: dict[str, Path] = {}
    try:
        for final, src in incoming.items():
            with atomic_path(dest / f".{final}.import-{tag}") as tmp:  # fsynced, removed if the copy fails
                _copy_or_move(src, tmp, staging)
                temps[final] = dest / f".{final}.import-{tag}"
        for final in incoming:
            if (dest / final).exists():
                backups[final] = _keep_old(dest / final, dest / f".{final}.old-{tag}")
        done: list[str] = []
        try:
            for final, tmp in temps.items():
                os.replace(tmp, dest / final)
                done.append(final)
        except OSError:
            for final in done:  # put the old versions back
                if final in backups:
                    os.replace(backups.pop(final), dest / final)
            raise
    finally:
        for leftover in [*temps.values(), *backups.values()]:
            leftover.unlink(missing_ok=True)
    if index is not None:
        stale = [dest / f"{name}{INDEX_SUFFIX}.json"]  # the sidecar described the old index
        if old_index is not None and old_index.name != f"{name}{INDEX_SUFFIX}":
            stale += [old_index, old_index.with_name(old_index.name + ".json")]
            notes.append(f"the new index replaces {old_index.name}")
        for path in stale:
            path.unlink(missing_ok=True)
    elif old_index is not None:
        notes.append(f"kept the existing index {old_index.name}; if it belongs to the old model, import the new "
                     f"one's index with `models import FILE.index --name {name} --overwrite`")
    kept = sorted(p.name for p in dest.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name not in incoming and p != old_index)
    if kept:
        notes.append(f"kept {', '.join(kept[:6])}{' ...' if len(kept) > 6 else ''}")


def _keep_old(path: Path, backup: Path) -> Path:
    try:
        os.link(path, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(path, backup)
    return backup


def model_content_dim(pth: Path) -> int | None:
    """The content feature width a voice model expects (768 for v2, 256 for v1, or what its weights say)."""
    from voiceapp.nets.presets import CONTENT_DIMS
    from voiceapp.voices.file import read_voice_info

    try:
        info = read_voice_info(pth)
    except VoiceAppError:
        return None
    return info.content_dim or CONTENT_DIMS.get(str(info.version))


def check_index_width(index: Path, dim: int | None, model_label: str) -> None:
    """InputError when the faiss index holds vectors of another width than the model's content features."""
    _check_index(index)
    with open(index, "rb") as handle:
        head = handle.read(8)
    width = int.from_bytes(head[4:8], "little", signed=True) if len(head) == 8 else -1
    if width <= 0 or width > 65536:
        raise InputError(f"{index.name} is not a faiss index (its header gives no vector width); it was refused "
                         f"and nothing was written.")
    if dim is not None and width != dim:
        raise InputError(f"{index.name} holds {width}-d vectors but {model_label} expects {dim}-d content "
                         f"features: the index belongs to another model (or encoder). It was refused and nothing "
                         f"was written; import the model with its own index, or without one.")


def _voice_models(pths: list[Path], notes: list[str]) -> list[Path]:
    """The `.pth` files that are voice models. Code-carrying pickles abort the whole import."""
    models = []
    for pth in pths:
        try:
            check_rvc_voice(read_checkpoint(pth, mmap=True), pth)
        except InputError as err:
            if isinstance(err, UnsafeFileError) or len(pths) == 1:
                raise
            notes.append(f"skipped {pth.name}: {err}")
            continue
        models.append(pth)
    return models


def _pick_index(indexes: list[Path], stem: str, notes: list[str]) -> Path | None:
    """RVC's `added_*.index` that names the model, else the only usable index (never `trained_*`)."""
    usable = [p for p in indexes if not p.name.startswith("trained_")]
    for p in indexes:
        if p not in usable:
            notes.append(f"ignored {p.name} (an empty trained index; the usable one is added_*.index)")
    for candidates in ([p for p in usable if stem and stem.lower() in p.name.lower()],
                       [p for p in usable if p.name.startswith("added_")], usable):
        if len(candidates) == 1:
            _check_index(candidates[0])
            return candidates[0]
        if len(candidates) > 1:
            break
    if usable:
        notes.append(f"several indexes ({', '.join(p.name for p in usable)}); none imported — add the right one "
                     f"with `models import FILE.index --name NAME`")
    return None


def _check_index(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if len(head) < 4 or not (head[:1] == b"I" and head[1:4].isalnum()):
        raise InputError(f"{path.name} is not a faiss index (it does not start with a faiss header).")


def _attach_index(ws: Workspace, name: str, index: Path | None, overwrite: bool, notes: list[str]) -> ImportResult:
    entry = get_model(ws, name)
    if index is None:
        raise InputError("No usable index to add (only trained_*.index, or several candidates).")
    check_index_width(index, model_content_dim(entry.path), entry.path.name)
    target = entry.path.parent / f"{entry.name}{INDEX_SUFFIX}"
    existing = find_index(entry.path)
    if existing is not None and not overwrite:
        raise InputError(f"{entry.name} already has an index ({existing.name}); confirm replacing it "
                         f"(tick 'Replace existing', or pass --overwrite).")
    with atomic_path(target) as tmp:
        shutil.copyfile(index, tmp)
    target.with_name(target.name + ".json").unlink(missing_ok=True)  # a sidecar of the replaced index
    if existing is not None and existing != target:
        existing.unlink()
        existing.with_name(existing.name + ".json").unlink(missing_ok=True)
    return ImportResult(entry.name, entry.path, target, existing is not None, notes)


def _refuse_existing(ws: Workspace, name: str, overwrite: bool) -> bool:
    """True when `models/voices/<name>/` already has files; InputError then unless `overwrite`."""
    dest = ws.voices_dir / name
    exists = dest.is_dir() and any(dest.iterdir())
    if exists and not overwrite:
        raise InputError(f"A voice model named {name!r} already exists in {ws.voices_dir}. Choose another name, "
                         f"or confirm replacing it (tick 'Replace existing', or pass --overwrite).")
    return exists


def _copy_or_move(src: Path, dst: Path, staging: Path) -> None:
    if staging in src.parents:
        os.replace(src, dst)
    else:
        shutil.copyfile(src, dst)


def _swap_into_place(new: Path, dest: Path, staging: Path) -> None:
    """Rename the finished folder onto `dest`; an old folder is moved aside first and removed afterwards."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = staging / "old"
    if dest.exists():
        os.replace(dest, old)
    try:
        os.replace(new, dest)
    except OSError:
        if old.exists():
            os.replace(old, dest)
        raise


# --- zips ---------------------------------------------------------------------------------------------------


def check_zip_members(zf: zipfile.ZipFile, limits: StoreLimits, label: str) -> list[zipfile.ZipInfo]:
    """Every member is checked; the first bad one refuses the whole archive (InputError)."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_members:
        raise InputError(f"{label} has {len(infos)} members (limit {limits.max_zip_members}); refused, nothing "
                         f"written. A voice model zip holds a .pth and an .index.")
    declared = 0
    for info in infos:
        problem = _member_problem(info, limits)
        if problem:
            raise InputError(f"{label} was refused and nothing was written: member {info.filename!r} {problem}.")
        declared += info.file_size
        if declared > limits.max_unpacked_bytes:
            raise InputError(f"{label} unpacks to more than {limits.max_unpacked_bytes / 1e9:.1f} GB; refused, "
                             f"nothing written.")
    return infos


def _member_problem(info: zipfile.ZipInfo, limits: StoreLimits) -> str | None:
    name = info.filename
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "has an absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "points outside the archive ('..')"
    if "\x00" in name:
        return "has a NUL in its name"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.file_size > 1_000_000 and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
        return f"unpacks {info.file_size / max(info.compress_size, 1):.0f}x (a zip bomb)"
    return None


def unpack_zip(path: Path, dest: Path, limits: StoreLimits = StoreLimits(), progress: Progress = no_progress,
               cancel: CancelToken = NEVER) -> dict[str, list]:
    """Check every member, then copy out the `.pth` / `.index` members to flat, generated names in `dest`.

    Returns {"pth": [paths], "index": [paths], "ignored": [member names]}. Sizes are enforced while reading
    (a member that unpacks to more than it declared is refused).
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"{path.name} is not a readable zip ({err}); download it again.") from err
    out: dict[str, list] = {"pth": [], "index": [], "ignored": []}
    with zf:
        infos = check_zip_members(zf, limits, path.name)
        wanted = [i for i in infos if not i.is_dir() and not _SKIP_MEMBER.search(i.filename.replace("\\", "/"))
                  and PurePosixPath(i.filename.replace("\\", "/")).suffix.lower() in (*MODEL_SUFFIXES, INDEX_SUFFIX)]
        out["ignored"] = [i.filename for i in infos if not i.is_dir() and i not in wanted]
        dest.mkdir(parents=True, exist_ok=True)
        total = max(sum(i.file_size for i in wanted), 1)
        done = 0
        for n, info in enumerate(wanted):
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            target = dest / f"{n:03d}_{_safe_file_name(base)}"
            done = _extract_member(zf, info, target, done, total, limits, progress, cancel)
            out["index" if target.suffix.lower() == INDEX_SUFFIX else "pth"].append(target)
    for key in ("pth", "index"):  # generated prefixes keep names unique; drop them for matching by name
        renamed = []
        for p in out[key]:
            final = p.with_name(p.name[4:])
            if final.exists():
                final = p
            else:
                p.rename(final)
            renamed.append(final)
        out[key] = renamed
    return out


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, done: int, total: int,
                    limits: StoreLimits, progress: Progress, cancel: CancelToken) -> int:
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(_CHUNK):
            cancel.raise_if_set()
            written += len(chunk)
            if written > info.file_size or done + written > limits.max_unpacked_bytes:
                raise InputError(f"{info.filename} unpacks to more than it declares; the zip was refused.")
            dst.write(chunk)
            progress((done + written) / total, f"unpacking {info.filename}")
    return done + written


def _safe_file_name(name: str) -> str:
    stem, suffix = os.path.splitext(name)
    try:
        return sanitize_name(stem, "file name") + suffix.lower()
    except InputError:
        return "file" + suffix.lower()


# --- URLs ---------------------------------------------------------------------------------------------------


def download_url(url: str, dest_dir: Path, limits: StoreLimits = StoreLimits(), progress: Progress = no_progress,
                 cancel: CancelToken = NEVER) -> Path:
    """Download an http(s) URL into `dest_dir` with the shared downloader (size-capped, resumed, with progress);
    returns the file, named as the server names it.

    Hugging Face page links (`/blob/`) are turned into download links (`/resolve/`).
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"{url!r} is not an http(s) URL.")
    if "huggingface.co" in parsed.netloc and "/blob/" in parsed.path:
        url = url.replace("/blob/", "/resolve/", 1)
    try:
        got = fetch(url, dest_dir / f".download-{uuid.uuid4().hex[:8]}", max_bytes=limits.max_download_bytes,
                    timeout_s=limits.timeout_s, progress=progress, cancel=cancel)
    except DownloadError as err:
        raise VoiceAppError(f"Could not download {url}: {err.reason}. Check the address and the connection, or "
                            f"download the file in a browser and import it from disk.") from err
    target = dest_dir / _safe_file_name(got.server_name or "download.bin")
    os.replace(got.path, target)
    return target
