"""Retrieval at conversion time: pull each content frame towards its nearest training frames.

RVC's recipe: `score, ix = index.search(feats, k=8)` (squared L2), weights `1/score**2` normalised per
row, `retrieved = sum_k big_npy[ix] * w`, `feats = index_rate*retrieved + (1-index_rate)*feats`, where
`big_npy = index.reconstruct_n(0, ntotal)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError

log = logging.getLogger(__name__)

DEFAULT_K = 8
_MIN_DISTANCE = 1e-12  # an exact match gets a huge but finite weight (RVC divides by zero there)


@dataclass
class RetrievalIndex:
    """A loaded faiss index and the matrix of its vectors (rows in index id order)."""

    path: Path
    index: object       # faiss.Index
    big_npy: np.ndarray  # (ntotal, dim) float32

    @property
    def dim(self) -> int:
        return int(self.big_npy.shape[1])

    @property
    def rows(self) -> int:
        return int(self.big_npy.shape[0])


def load_index(path: Path | str) -> RetrievalIndex:
    """Read a faiss index file (ours, RVC's or Applio's) and reconstruct its vectors.

    Raises `MissingArtifactError` when the file is absent and `InputError` when faiss cannot read it.
    """
    import faiss

    path = Path(path)
    if not path.is_file():
        raise MissingArtifactError(f"Index file {path} not found. Build it (`python -m voiceapp index EXP`) or "
                                   "pick another index, or set the index rate to 0.")
    if "trained_" in path.name and path.with_name(path.name.replace("trained_", "added_")).is_file():
        path = path.with_name(path.name.replace("trained_", "added_"))  # RVC users often pick the empty one
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as err:
        raise InputError(f"{path.name}: not a readable faiss index ({str(err).splitlines()[0][:160]}). "
                         "Rebuild it, or use an index written by a matching faiss version.") from err
    if index.ntotal == 0:
        raise InputError(f"{path.name} holds no vectors (a 'trained_' index?). Use the 'added_' index or rebuild it.")
    try:
        faiss.extract_index_ivf(index).nprobe = max(1, faiss.extract_index_ivf(index).nprobe)
    except RuntimeError:
        pass  # a flat index has no lists
    big_npy = np.ascontiguousarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
    return RetrievalIndex(path, index, big_npy)


def search(index: object, features: np.ndarray, k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray]:
    """(squared L2 distances, ids), each (frames, k); ids are -1 where fewer than k neighbours were found."""
    feats = np.ascontiguousarray(features, dtype=np.float32)
    distances, ids = index.search(feats, k)  # type: ignore[attr-defined]
    return distances, ids


def check_dim(retrieval: RetrievalIndex, dim: int) -> None:
    if retrieval.dim != dim:
        hint = {256: "a v1 model", 768: "a v2 model (ContentVec/HuBERT)", 384: "a whisper-tiny model"}
        raise InputError(f"{retrieval.path.name} holds {retrieval.dim}-d vectors ({hint.get(retrieval.dim, 'another encoder')}) "
                         f"but this model's content features are {dim}-d. Pick the index built for this model, "
                         "or set the index rate to 0.")


def blend(features: np.ndarray, index: object, big_npy: np.ndarray, index_rate: float,
          k: int = DEFAULT_K) -> np.ndarray:
    """Mix `features` (frames, dim) with their k nearest index rows, weights 1/d^2, by `index_rate` in [0, 1].

    index_rate 0 returns `features` unchanged (no search); 1 returns the retrieved frames only.
    """
    if index_rate <= 0 or len(features) == 0:
        return features
    feats = np.ascontiguousarray(features, dtype=np.float32)
    distances, ids = search(index, feats, k)
    found = ids >= 0
    weights = np.where(found, 1.0 / np.square(np.maximum(distances.astype(np.float64), _MIN_DISTANCE)), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0  # nothing found for this frame: keep it as it is
    weights = weights / np.where(total > 0, total, 1.0)
    retrieved = np.einsum("fk,fkd->fd", weights.astype(np.float32), big_npy[np.where(found, ids, 0)])
    if empty.any():
        retrieved[empty] = feats[empty]
    rate = float(min(index_rate, 1.0))
    out = rate * retrieved + (1.0 - rate) * feats
    return out.astype(features.dtype if features.dtype in (np.float32, np.float64) else np.float32, copy=False)
