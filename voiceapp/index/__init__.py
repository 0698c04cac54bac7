"""The retrieval index: build a faiss IVF index over training features, blend features with it at conversion."""

from voiceapp.index.build import IndexConfig, build_index, index_summary, n_lists_for, read_index_sidecar
from voiceapp.index.retrieval import RetrievalIndex, blend, load_index

__all__ = ["IndexConfig", "RetrievalIndex", "blend", "build_index", "index_summary", "load_index", "n_lists_for",
           "read_index_sidecar"]
