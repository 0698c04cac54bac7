"""What the web server exposes: which files Gradio may serve, where uploads go, who may log in.

Gradio serves a file through `/gradio_api/file=` when it is in `allowed_paths`, in its upload folder or in
its example cache, and never when it is in `blocked_paths`. The app allows only what it makes (the
workspace's `outputs/` and the dataset clips the Dataset tab plays) and blocks the app's own folder
(source, `.env`, `.git`, the venv) and the workspace's `logs/` and `models/`. Each instance gets its own
upload folder, so two instances on one computer never serve each other's uploads.

No Gradio import here: `instance_upload_dir` must run before Gradio reads `GRADIO_TEMP_DIR`.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import sys
import tempfile
from pathlib import Path

from voiceapp.errors import InputError
from voiceapp.workspace import Workspace, is_inside

APP_DIR = Path(__file__).resolve().parents[2]   # the folder holding app.py and voiceapp/
_SECRET_NAMES = (".env", ".git", ".venv", "venv", ".netrc", ".ssh")


def is_loopback(host: str | None) -> bool:
    """True for addresses only this computer can reach (127.0.0.0/8, ::1, localhost)."""
    name = str(host or "127.0.0.1").strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_shared(host: str | None, share: bool) -> bool:
    """The app is reachable by other people: a public share link, or a non-loopback bind address."""
    return bool(share) or not is_loopback(host)


def parse_login(text: str, where: str = "--auth") -> tuple[str, str]:
    """`user:password` -> (user, password); the password may contain ':'."""
    user, sep, password = str(text).strip().partition(":")
    if not sep or not user.strip() or not password:
        raise InputError(f"{where}: expected USER:PASSWORD (both non-empty), got {text.strip()[:40]!r}.")
    return user.strip(), password


def read_logins(values: list[str] | None, auth_file: Path | str | None) -> list[tuple[str, str]] | None:
    """Logins from `--auth USER:PASSWORD` (repeatable) and `--auth-file FILE` (one USER:PASSWORD a line;
    blank lines and `#` comments skipped). None when neither is given: no login."""
    logins = [parse_login(v) for v in values or []]
    if auth_file is not None:
        path = Path(auth_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"Cannot read the login file {path} ({err}); give a UTF-8 text file with one "
                             f"USER:PASSWORD a line.") from err
        for n, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                logins.append(parse_login(line, f"{path.name} line {n}"))
        if not logins:
            raise InputError(f"The login file {path} holds no USER:PASSWORD line; add one.")
    return logins or None


def exposure_warnings(host: str, share: bool, logins: list | None) -> list[str]:
    """One warning per way the app is reachable by others; empty on 127.0.0.1 without --share."""
    lock = ("A login is required (--auth)." if logins else
            "Anyone who reaches it can use it; require a login with --auth USER:PASSWORD or --auth-file FILE.")
    found = []
    if not is_loopback(host):
        found.append(f"warning: --host {host} makes the app reachable from other computers on the network. {lock} "
                     f"Typed server folders are turned off; files are uploaded instead.")
    if share:
        found.append(f"warning: --share publishes the app on a public gradio.live link: whoever has the link can "
                     f"open it. {lock} Typed server folders are turned off; files are uploaded instead.")
    return found


def instance_upload_dir() -> Path:
    """A fresh upload folder for this server process, set as `GRADIO_TEMP_DIR` (inside the folder the user set
    there, if any); it is removed at exit. Call it before building the app."""
    parent = os.environ.get("GRADIO_TEMP_DIR") or None
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="voiceapp-uploads-", dir=parent)).resolve()
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def file_access(workspace: Workspace, app_dir: Path | str | None = None) -> dict[str, list[str]]:
    """`allowed_paths` and `blocked_paths` for `launch()` (absolute paths, as Gradio wants them);
    `app_dir`: the folder of app.py (default: this installation's)."""
    allowed = [workspace.outputs_dir, workspace.datasets_dir]
    blocked = {workspace.logs_dir, workspace.models_dir, *(workspace.root / n for n in _SECRET_NAMES)}
    served = [*allowed, *([os.environ["GRADIO_TEMP_DIR"]] if os.environ.get("GRADIO_TEMP_DIR") else [])]
    app_dir = Path(app_dir if app_dir is not None else APP_DIR).resolve()
    blocked |= {app_dir / n for n in _SECRET_NAMES}
    if app_dir.is_dir():
        for entry in app_dir.iterdir():  # the app's source and files, but not a workspace kept inside it
            if not any(is_inside(a, entry) for a in served):
                blocked.add(entry)
    if sys.prefix != sys.base_prefix and not any(is_inside(a, sys.prefix) for a in served):
        blocked.add(Path(sys.prefix))  # the virtual environment
    return {"allowed_paths": [str(p) for p in allowed], "blocked_paths": sorted(str(p) for p in blocked)}
