"""The one downloader: an http(s) URL to a file, for the base assets and for voice models imported from a URL.

`fetch` streams into a `.part` file while hashing it (sha256), resumes a transfer that breaks off (or comes
back shorter than expected) with an HTTP Range request, checks the length and, through the caller's `check`,
the content; it downloads again from the start when the check fails (`attempts`), and renames the file into
place only when it is whole and good. Progress is reported in bytes; `cancel` stops it between blocks.

Hugging Face addresses go through `resolve_endpoint` (the argument, else $HF_ENDPOINT, a mirror, else
huggingface.co); `hub_offline()` is HF_HUB_OFFLINE as huggingface_hub reads it.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Callable

from voiceapp.errors import InputError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress

log = logging.getLogger(__name__)

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1024 * 1024
Check = Callable[[Path, str], "str | None"]   # (the finished file, its sha256) -> what is wrong, or None


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The Hugging Face address to use: `endpoint`, else $HF_ENDPOINT (a mirror), else huggingface.co."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE, read the way huggingface_hub reads it (its constant when it is installed)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE)


class DownloadError(VoiceAppError):
    """A download failed: no connection, an HTTP error, a transfer that stayed short, or a bad file.

    `retry` says whether a fresh attempt could help (no for 4xx, no connection, offline)."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


@dataclass(frozen=True)
class Fetched:
    path: Path                  # where the file was placed
    size: int                   # bytes
    sha256: str
    server_name: str            # the file name the server gave (Content-Disposition, else the URL's last part)


def fetch(url: str, dest: Path, *, size: int | None = None, check: Check | None = None, attempts: int = 1,
          part: Path | None = None, max_bytes: int | None = None, timeout_s: float = 60.0, resumes: int = 3,
          label: str | None = None, progress: Progress = no_progress, cancel: CancelToken = NEVER) -> Fetched:
    """Download `url` to `dest` (written as `part`, default `<dest>.part`, then renamed onto `dest`).

    `size`: the expected bytes, if known (a shorter transfer is resumed); `check(file, sha256)` returns a
    problem or None; `attempts`: full downloads tried while the check fails or the server errs (5xx);
    `max_bytes`: refuse (InputError) anything larger. Raises DownloadError with every reason when no attempt
    succeeded; nothing is left at `dest` or `part` then.
    """
    part = part or dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for attempt in range(max(attempts, 1)):
        cancel.raise_if_set()
        try:
            got = _transfer(url, part, size, max_bytes, timeout_s, resumes, label, progress, cancel)
            problem = check(part, got.sha256) if check is not None else None
            if problem:
                raise DownloadError(problem)
        except DownloadError as err:
            part.unlink(missing_ok=True)
            problems.append(err.reason)
            log.warning("download of %s failed (attempt %d/%d): %s", url, attempt + 1, attempts, err.reason)
            if not err.retry:
                break
            continue
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, dest)
        return Fetched(dest, got.size, got.sha256, got.server_name)
    raise DownloadError("; ".join(dict.fromkeys(problems)), retry=False)


@dataclass
class _Transfer:
    out: BinaryIO
    size: int | None
    done: int = 0
    total: int | None = None
    server_name: str = ""
    digest: Any = field(default_factory=hashlib.sha256)

    def restart(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.done, self.digest = 0, hashlib.sha256()


def _transfer(url: str, part: Path, size: int | None, max_bytes: int | None, timeout_s: float, resumes: int,
              label: str | None, progress: Progress, cancel: CancelToken) -> Fetched:
    """One download into `part`, resumed with Range requests while it falls short and makes headway."""
    with open(part, "wb") as out:
        t = _Transfer(out, size)
        for _ in range(1 + max(resumes, 0)):
            before = t.done
            broke = _receive(url, t, max_bytes, timeout_s, label, progress, cancel)
            if t.total is None or t.done >= t.total:
                if broke and t.total is None:
                    raise DownloadError(f"the transfer broke off after {t.done / 1e6:,.1f} MB ({broke})")
                break
            if t.done == before:
                break
            log.info("download of %s stopped at %d of %d bytes (%s); resuming", url, t.done, t.total,
                     broke or "short")
        if t.total is not None and t.done < t.total:
            raise DownloadError(f"truncated ({t.done:,} of {t.total:,} bytes)")
        out.flush()
        os.fsync(out.fileno())
    return Fetched(part, t.done, t.digest.hexdigest(), t.server_name)


def _receive(url: str, t: _Transfer, max_bytes: int | None, timeout_s: float, label: str | None,
             progress: Progress, cancel: CancelToken) -> str | None:
    """One request (a Range request from `t.done` when resuming); appends to `t`. Returns why it broke off."""
    response = _open(url, t.done, timeout_s)
    with response:
        if t.done and response.status != 206:   # the server ignored the Range: start again
            t.restart()
        length = response.headers.get("Content-Length")
        length = int(length) + t.done if length and length.isdigit() else None
        if max_bytes is not None and length is not None and length > max_bytes:
            raise InputError(f"{url} is {length / 1e9:.1f} GB, over the {max_bytes / 1e9:.1f} GB limit; refused.")
        t.total = max(t.size or 0, length or 0, t.total or 0) or None
        t.server_name = t.server_name or _server_name(response, url)
        bar = byte_progress_bar(progress, cancel, label or f"downloading {t.server_name}", t.total)(
            total=t.total, initial=t.done)
        try:
            while chunk := response.read(CHUNK):
                cancel.raise_if_set()
                if max_bytes is not None and t.done + len(chunk) > max_bytes:
                    raise InputError(f"{url} is larger than the {max_bytes / 1e9:.1f} GB limit; refused.")
                t.out.write(chunk)
                t.digest.update(chunk)
                t.done += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            return f"{type(err).__name__}: {str(err)[:200]}"
    return None


def _open(url: str, start: int, timeout_s: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "voiceapp", **({"Range": f"bytes={start}-"} if start else {})}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers),  # noqa: S310 - http(s) only
                                      timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416:
            raise DownloadError(f"the server's file ends at {start:,} bytes, shorter than expected",
                                retry=False) from err
        raise DownloadError(f"HTTP {err.code} {err.reason}", retry=err.code >= 500 or err.code in (408, 429)) \
            from err
    except (OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{type(err).__name__}: {str(reason)[:200]}", retry=False) from err


def _server_name(response: http.client.HTTPResponse, url: str) -> str:
    disposition = response.headers.get("Content-Disposition") or ""
    m = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)", disposition)
    raw = urllib.parse.unquote(m.group(1) if m else PurePosixPath(urllib.parse.urlparse(url).path).name)
    return PurePosixPath(raw.replace("\\", "/")).name


def byte_progress_bar(progress: Progress, cancel: CancelToken, label: str, size: int | None) -> type:
    """A tqdm stand-in that reports bytes to `progress` and stops on `cancel` (`fetch` drives it; it also works as
    a `tqdm_class` for huggingface_hub, whose Xet transfer bar, "downloading bytes", it keeps quiet)."""

    class _Bar:
        def __init__(self, *args: object, total: int | None = None, initial: int = 0, desc: str = "",
                     **kwargs: object) -> None:
            self.total = total or size or 0
            self.n = initial
            self.silent = "downloading bytes" in str(desc)

        def update(self, n: int = 1) -> None:
            cancel.raise_if_set()
            self.n += n
            if self.silent:
                return
            if self.total:
                progress(min(self.n / self.total, 1.0), f"{label}: {self.n / 1e6:,.1f} of {self.total / 1e6:,.1f} MB")
            else:
                progress(0.0, f"{label}: {self.n / 1e6:,.1f} MB")

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
