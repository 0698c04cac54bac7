"""Device choice, made once in the entry point and passed down."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

from voiceapp.errors import ConfigError

log = logging.getLogger(__name__)

DeviceChoice = Literal["auto", "cpu", "cuda"]
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def pick_device(choice: str = "auto") -> str:
    """Return a torch device string ("cpu", "cuda", "cuda:1", ...) for the user's choice.

    `auto` takes the first CUDA GPU when torch sees one, else the CPU. Asking for CUDA where none is
    usable falls back to the CPU with a warning, because the app still works there, only slower.
    """
    choice = (choice or "auto").strip().lower()
    if choice not in DEVICE_CHOICES and not choice.startswith("cuda:"):
        raise ConfigError(f"Unknown device {choice!r}; choose one of {list(DEVICE_CHOICES)} or cuda:N.")
    if choice == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda" if choice == "auto" else choice
    if choice != "auto":
        warnings.warn("CUDA was asked for but torch sees no usable NVIDIA GPU; running on the CPU (slow). "
                      "Install the CUDA build of torch (see README) to use the GPU.", stacklevel=2)
    return "cpu"


def describe_device(device: str) -> str:
    """A one-line description for logs and reports."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    import os
    import platform

    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def torch_device(device: str) -> Any:
    """`torch.device(device)`, or the CPU when CUDA is asked for and not available."""
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(device)
