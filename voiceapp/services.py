"""App-wide objects: the workspace, the device and the cache of loaded models.

The app and the CLI build one `Services` in their entry point and pass it down; nothing is kept in
module globals.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable

from voiceapp.progress import CancelToken
from voiceapp.workspace import Workspace

log = logging.getLogger(__name__)


class ModelCache:
    """A small thread-safe LRU of loaded models keyed by (kind, path, device, ...).

    One conversion uses five entries (voice, its fast CPU copy, content encoder, f0 method, index): the cache
    must hold more than that, or each conversion evicts what the next one needs and everything is loaded
    again every time (memory then grows with every conversion: bench/soak.py).
    """

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Job:
    """One job the web app runs or holds in its queue, as the job panel shows it."""

    id: int
    kind: str                        # the Stop key (services.start_job(kind)): "dataset", "infer", ...
    label: str                       # what a person reads: "Convert (Inference)"
    session: str = ""                # the browser session that asked for it
    state: str = "waiting"           # waiting | running | cancelled
    fraction: float = 0.0
    message: str = ""
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None


class JobBoard:
    """What runs and what waits, for the job panel: a job is added when its button is pressed (before the
    queue admits it), marked running when it starts, and removed when it ends. Thread-safe."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, kind: str, label: str, session: str = "") -> int:
        with self._lock:
            job = Job(next(self._ids), kind, label, session)
            self._jobs[job.id] = job
            return job.id

    def begin(self, job_id: int | None) -> bool:
        """Mark a job running; False when it was cancelled while it waited (it must not run)."""
        with self._lock:
            job = self._jobs.get(job_id) if job_id is not None else None
            if job is None:
                return True       # not on the board (e.g. called directly): run it
            if job.state == "cancelled":
                del self._jobs[job.id]
                return False
            job.state, job.started_at = "running", time.time()
            return True

    def report(self, job_id: int | None, fraction: float, message: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id) if job_id is not None else None
            if job is not None:
                job.fraction, job.message = float(fraction), str(message)

    def end(self, job_id: int | None) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def cancel(self, job_id: int) -> Job | None:
        """Cancel a waiting job (it will not start) or mark a running one; returns it (None if gone)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                job.state = "cancelled" if job.state == "waiting" else job.state
            return job

    def of_session(self, session: str) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if session and j.session == session]

    def list(self) -> list[Job]:
        """Running jobs first, then the waiting ones in the order they will run."""
        with self._lock:
            jobs = list(self._jobs.values())
        return sorted(jobs, key=lambda j: (j.state != "running", j.queued_at))


@dataclass
class Services:
    """What every stage run from the app or the CLI needs besides its own inputs."""

    workspace: Workspace
    device: str = "cpu"
    cache: ModelCache = field(default_factory=ModelCache)
    cancel: CancelToken = field(default_factory=CancelToken)
    shared: bool = False  # the web app is reachable by others (--share, a non-loopback --host): no server paths
    board: JobBoard = field(default_factory=JobBoard, repr=False)   # what the web app runs and queues
    _jobs: dict[str, CancelToken] = field(default_factory=dict, repr=False)

    def start_job(self, kind: str) -> CancelToken:
        """A fresh cancel token for a job of `kind` (e.g. "dataset"); a Stop button calls `cancel_job(kind)`."""
        token = CancelToken()
        self._jobs[kind] = token
        return token

    def cancel_job(self, kind: str) -> bool:
        token = self._jobs.get(kind)
        if token is None:
            return False
        token.set()
        return True

    @classmethod
    def create(cls, root: Path | str, device: str = "auto", shared: bool = False) -> "Services":
        from voiceapp.devices import pick_device
        from voiceapp.errors import StorageError

        workspace = Workspace(Path(root))
        try:
            workspace.ensure()
        except StorageError as err:  # reading still works; whatever writes there says so when it fails
            log.warning("%s Commands that write into the workspace will fail.", err)
        return cls(workspace=workspace, device=pick_device(device), shared=shared)
