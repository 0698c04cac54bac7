"""TensorBoard output of a run (rank 0): scalars, mel images real vs generated, audio samples.

Tags follow RVC where it has them: loss/g/total, loss/d/total, loss/g/{fm,mel,kl,gen}, learning_rate,
grad_norm_g, grad_norm_d, slice/mel_org, slice/mel_gen; plus validation/mel_l1, validation/mel_{org,gen}_<i>
and validation/audio_{org,gen}_<i>. View with `tensorboard --logdir logs/<exp>` (the Train tab has a button).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def mel_image(mel: np.ndarray) -> np.ndarray:
    """(n_mels, frames) log-mel -> (H, W, 3) uint8 image, low frequencies at the bottom."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.5), dpi=80)
    ax.imshow(mel, aspect="auto", origin="lower", interpolation="none")
    ax.set_xlabel("frames")
    ax.set_ylabel("mel")
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


class Board:
    """A SummaryWriter that does nothing when disabled (other DDP ranks) or when tensorboard is missing."""

    def __init__(self, log_dir: Path, enabled: bool = True) -> None:
        self._writer: Any = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # the app still trains; events.jsonl has the numbers
            log.warning("TensorBoard output disabled (%s)", err)
            return
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self._writer is not None:
            for tag, value in values.items():
                if value is not None and np.isfinite(value):
                    self._writer.add_scalar(tag, float(value), step)

    def mel(self, tag: str, mel: np.ndarray, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, mel_image(mel), step, dataformats="HWC")

    def audio(self, tag: str, audio: np.ndarray, sample_rate: int, step: int) -> None:
        if self._writer is not None:
            clipped = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
            self._writer.add_audio(tag, clipped, step, sample_rate=sample_rate)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
