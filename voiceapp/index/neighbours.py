"""Nearest target frames by cosine similarity: what the `instant` and `quick` engines match content on.

`FrameMatcher` searches the target's content frames with faiss (exact inner product on unit vectors);
`neighbours_elsewhere` gives every target frame its k nearest frames from *other* recordings: the quick network
learns from their averages, so that it sees at training what it sees at conversion (kNN-VC's "prematched"
training).
"""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


class FrameMatcher:
    """k nearest target frames of query frames (cosine)."""

    def __init__(self, target: np.ndarray) -> None:
        import faiss

        self.size, self.dim = target.shape
        self.index = faiss.IndexFlatIP(self.dim)
        self.index.add(np.ascontiguousarray(unit_rows(target)))

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(n, k) int64 indices of the target frames nearest to each query row."""
        if len(queries) == 0:
            return np.zeros((0, k), dtype=np.int64)
        k = max(1, min(int(k), self.size))
        _, idx = self.index.search(np.ascontiguousarray(unit_rows(queries)), k)
        return idx


def neighbours_elsewhere(content: np.ndarray, groups: np.ndarray, k: int, block: int = 2048,
                         queries: np.ndarray | None = None) -> np.ndarray:
    """(n, k) indices of the k rows of `content` (n, dim) most similar to each row (or to each row of `queries`,
    row-aligned with `content`) among rows of other `groups` (n,): a frame never matches its own recording (with a
    single group: any other row)."""
    unit = unit_rows(content)
    asked = unit if queries is None else unit_rows(queries)
    k = max(1, min(int(k), len(content) - 1))
    out = np.empty((len(content), k), dtype=np.int64)
    single = len(np.unique(groups)) < 2
    for start in range(0, len(content), block):
        sims = asked[start:start + block] @ unit.T                           # (block, n)
        rows = np.arange(start, min(start + block, len(content)))
        if single:
            sims[np.arange(len(rows)), rows] = -np.inf
        else:
            sims[groups[rows, None] == groups[None, :]] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)    # nearest first
        out[rows] = np.take_along_axis(top, order, axis=1)
    return out
