"""The exceptions a user can act on. Their message is shown verbatim in the UI and the CLI."""

from __future__ import annotations


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
