"""Nearest target frames by cosine similarity: what the `instant` and `quick` engines match content on.

`FrameMatcher` searches the target's content frames with faiss (exact inner product on unit vectors);
`neighbours_elsewhere` gives every target frame its k nearest frames from *other* recordings: the quick network
learns from their averages, so that it sees at training what it sees at conversion (kNN-VC's "prematched"
training).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


class FrameMatcher:
    """k nearest target frames of query frames (cosine).

    `approximate=True` (a live session: a few query frames per block) also builds an inverted-file index (faiss
    IVF, ~2 sqrt(n) lists, 1/8 of them probed) that searches a few queries ~15x faster than the exact scan, whose
    cost is reading every target frame once per query; on LJ Speech it returned 99.6 % of the exact 4 nearest
    frames. Many queries at once (a whole file) always use the exact search (one matrix product).
    """

    FEW_QUERIES = 64              # at most this many queries go to the inverted file
    MIN_FRAMES_FOR_IVF = 4096     # smaller targets are scanned exactly (already fast)

    def __init__(self, target: np.ndarray, approximate: bool = False) -> None:
        import faiss

        self.size, self.dim = target.shape
        unit = np.ascontiguousarray(unit_rows(target))
        self.index = faiss.IndexFlatIP(self.dim)
        self.index.add(unit)
        self.coarse = _inverted_file(unit) if approximate and self.size >= self.MIN_FRAMES_FOR_IVF else None

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(n, k) int64 indices of the target frames nearest to each query row."""
        if len(queries) == 0:
            return np.zeros((0, k), dtype=np.int64)
        k = max(1, min(int(k), self.size))
        index = self.coarse if self.coarse is not None and len(queries) <= self.FEW_QUERIES else self.index
        _, idx = index.search(np.ascontiguousarray(unit_rows(queries)), k)
        if index is self.coarse and (idx < 0).any():      # a probe found fewer than k frames: scan exactly
            _, idx = self.index.search(np.ascontiguousarray(unit_rows(queries)), k)
        return idx


def _inverted_file(unit: np.ndarray) -> Any:
    """faiss IVF (inner product) over unit rows: 2 sqrt(n) lists from k-means (8 iterations, fixed seed, on at most
    64 rows per list), n/8 of the lists probed per query."""
    import faiss

    n, dim = unit.shape
    lists = max(16, int(2 * np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter, ivf.cp.seed, ivf.cp.min_points_per_centroid = 8, 1234, 1
    ivf.cp.max_points_per_centroid = 64
    step = max(1, n // (64 * lists))
    ivf.train(np.ascontiguousarray(unit[::step]))
    ivf.add(unit)
    ivf.nprobe = max(1, lists // 8)
    return ivf


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
