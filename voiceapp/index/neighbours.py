"""Nearest target frames by cosine similarity: what the `instant` and `quick` engines match content on.

`FrameMatcher` searches the target's content frames with faiss (exact inner product on unit vectors);
`prematch` gives every target frame the average of its k nearest frames from *other* recordings, which is
what the quick network learns from, so that it sees at training what it sees at conversion (kNN-VC's
"prematched" training).
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


def prematch(content: np.ndarray, groups: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """For each row of `content` (n, dim) the mean of its k most similar rows of other `groups` (n,) (a frame
    never matches its own recording); a row whose group is everything falls back to all other rows."""
    unit = unit_rows(content)
    out = np.empty_like(content, dtype=np.float32)
    single = len(np.unique(groups)) < 2
    for start in range(0, len(content), block):
        sims = unit[start:start + block] @ unit.T                            # (block, n)
        rows = np.arange(start, min(start + block, len(content)))
        if single:
            sims[np.arange(len(rows)), rows] = -np.inf
        else:
            sims[groups[rows, None] == groups[None, :]] = -np.inf
        kk = max(1, min(k, sims.shape[1] - 1))
        idx = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        out[rows] = content[idx].mean(axis=1)
    return out
