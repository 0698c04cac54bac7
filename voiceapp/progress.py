"""Progress callbacks and cancellation tokens shared by every stage.

A stage takes `progress: Progress` (fraction in [0, 1], short message) and `cancel: CancelToken`.
The UI adapts the callback to `gr.Progress`, the CLI to tqdm; the stage does not know which.
"""

from __future__ import annotations

import threading
from typing import Callable

from voiceapp.errors import Cancelled

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores everything."""


def sub_progress(progress: Progress, start: float, end: float) -> Progress:
    """Map a child stage's [0, 1] onto [start, end] of the parent's progress."""

    def report(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


def time_left(elapsed_s: float, done: int, remaining: int) -> str:
    """"about 3 min left" from the time the `done` items took; "" before the first is done."""
    if done <= 0 or remaining <= 0:
        return ""
    seconds = int(round(elapsed_s / done * remaining))
    if seconds >= 3600:
        return f"about {seconds // 3600} h {seconds % 3600 // 60} min left"
    if seconds >= 60:
        return f"about {round(seconds / 60)} min left"
    return f"about {max(seconds, 1)} s left"


class CancelToken:
    """Set by the UI or a signal handler; checked by long loops through `raise_if_set`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def raise_if_set(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class _NeverCancelled(CancelToken):
    def set(self) -> None:
        raise RuntimeError("NEVER cannot be set; create a CancelToken()")


NEVER: CancelToken = _NeverCancelled()


class TqdmProgress:
    """A `Progress` that drives one tqdm bar (used by the CLI)."""

    def __init__(self, desc: str = "", disable: bool | None = None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=1000, desc=desc, disable=disable, leave=True,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        target = int(round(1000 * min(max(fraction, 0.0), 1.0)))
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)
        self._bar.set_postfix_str(message[:60], refresh=True)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
