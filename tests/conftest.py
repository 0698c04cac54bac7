"""Shared fixtures: a temporary workspace, Services, the RVC reference shapes, torch threads. Offline, CPU only.

Plain helper functions (generated audio, fake experiments, voice files) live in `helpers.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

@pytest.fixture
def workspace(tmp_path: Path):
    from voiceapp.workspace import Workspace

    return Workspace(tmp_path / "ws").ensure()


@pytest.fixture
def services(workspace):
    from voiceapp.services import Services

    return Services(workspace=workspace, device="cpu")


REFERENCE = Path(__file__).resolve().parent / "data" / "rvc-state-dict-keys.json"   # copy of shared/reference
RMVPE_KEYS = Path(__file__).resolve().parent / "data" / "rmvpe-state-dict-keys.json"


@pytest.fixture(scope="session")
def reference() -> dict:
    """RVC's parameter names and shapes for the 12 synthesizer variants and the discriminators."""
    import json

    return json.loads(REFERENCE.read_text())


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a busy 2-core machine OpenMP barriers stall the tiny test networks badly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_torch_ops(one_torch_thread):
    """One thread and no oneDNN (it compiles a kernel per new conv shape, more than tiny convs cost)."""
    import torch

    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = mkldnn
