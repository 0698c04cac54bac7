"""App-wide objects: the workspace, the device and the cache of loaded models.

The app and the CLI build one `Services` in their entry point and pass it down; nothing is kept in
module globals.
"""

from __future__ import annotations

import logging
import threading
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
class Services:
    """What every stage run from the app or the CLI needs besides its own inputs."""

    workspace: Workspace
    device: str = "cpu"
    cache: ModelCache = field(default_factory=ModelCache)
    cancel: CancelToken = field(default_factory=CancelToken)
    shared: bool = False  # the web app is reachable by others (--share, a non-loopback --host): no server paths
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
