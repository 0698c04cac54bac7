"""`logs/<exp>/events.jsonl`: what a training run reports, one JSON object per line.

Every line has `type` and `time` (unix seconds). Types:
    start      config, device, precision, pretrained (which files, or why none), clips, validation clips
    resume     step, epoch the run continues from (and the checkpoint files)
    step       step, epoch, losses {d, g, fm, mel, kl, total}, lr, grad_norm_g, grad_norm_d, steps_per_s, eta_s
    epoch      epoch, step, seconds, lr
    save       epoch, step, files [...], voice (path or null)
    validation epoch, step, mel_l1, best_epoch, best_mel_l1
    export     paths of the final voice models
    done       epoch, step
    stopped    epoch, step (the user stopped it)
    error      message, kind ("oom", "user", "crash"), advice
The UI reads this file; it never parses free-text logs. A half-written last line (a killed process) is skipped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator


class EventLog:
    """Appends events; a no-op writer when `enabled` is False (DDP ranks other than 0)."""

    def __init__(self, path: Path | str, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def write(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type_, "time": round(time.time(), 3), **fields}
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = (json.dumps(event, ensure_ascii=False, default=_jsonable) + "\n").encode("utf-8")
            with open(self.path, "a+b") as handle:
                if handle.seek(0, os.SEEK_END) > 0:
                    handle.seek(-1, os.SEEK_END)
                    if handle.read(1) != b"\n":     # a killed writer left half a line: end it first
                        line = b"\n" + line
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return event


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def read_events(path: Path | str, types: set[str] | None = None, since_line: int = 0) -> list[dict[str, Any]]:
    """All complete events (optionally only some types); tolerates a torn or garbled line."""
    return [e for e in iter_events(path, since_line) if types is None or e.get("type") in types]


def iter_events(path: Path | str, since_line: int = 0) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            if number < since_line or not line.endswith("\n"):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield event


def last_run(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the most recent run (from its last `start`)."""
    starts = [i for i, e in enumerate(events) if e.get("type") == "start"]
    return events[starts[-1]:] if starts else events
