"""The exceptions a user can act on. Their message is shown verbatim in the UI and the CLI."""

from __future__ import annotations

import errno


class VoiceAppError(Exception):
    """An expected failure the user can fix. The message says what failed and what to do next."""


class InputError(VoiceAppError):
    """The user's input (a file, a name, a value) cannot be used."""


class ConfigError(VoiceAppError):
    """A configuration value is out of range or inconsistent."""


class MissingArtifactError(VoiceAppError):
    """A stage needs the output of an earlier stage, or a weights file, that is not there."""


class Cancelled(VoiceAppError):
    """The user cancelled a running job."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)


class StorageError(VoiceAppError):
    """A file or folder cannot be written: read-only disk, no permission, or the disk is full."""


_STORAGE_ERRNOS = {
    errno.ENOSPC: ("the disk is full", "free some space there (or choose another folder) and run it again"),
    errno.EDQUOT: ("the disk quota is used up", "free some space there (or choose another folder) and run it again"),
    errno.EROFS: ("the folder is on a read-only disk", "choose a writable folder (another --root or output folder)"),
    errno.EACCES: ("permission denied", "choose a folder you can write to, or fix its permissions"),
    errno.EPERM: ("permission denied", "choose a folder you can write to, or fix its permissions"),
}


def storage_error(err: BaseException, path: object = None) -> StorageError | None:
    """The `StorageError` (what, where, what to do) for an OSError of a full, read-only or forbidden disk; else None.

    `path` names the place when the error does not (e.g. the file being written).
    """
    if isinstance(err, StorageError):
        return err
    if not isinstance(err, OSError) or err.errno not in _STORAGE_ERRNOS:
        return None
    what, todo = _STORAGE_ERRNOS[err.errno]
    where = err.filename if err.filename is not None else path
    return StorageError(f"Cannot write {where if where is not None else 'a file'}: {what}. "
                        f"{todo[0].upper()}{todo[1:]}.")
