"""What the Separate tab shows: spectrograms before and after, and a results summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voiceapp.separate.separator import BatchResult

_PREVIEW_RATE = 22050


def spectrogram_pair(mixture: Path | str, vocals: Path | str, max_s: float = 30.0) -> tuple[Any, Any]:
    """(before, after) figures of the first `max_s` seconds of the mixture and of its vocals, drawn to 11 kHz."""
    import numpy as np

    from voiceapp.audio.io import iter_blocks
    from voiceapp.plots import spectrogram

    def head(path: Path | str) -> np.ndarray:
        parts, total = [], 0
        for block in iter_blocks(path, _PREVIEW_RATE, mono=True, block_s=10.0):
            parts.append(block)
            total += len(block)
            if total >= max_s * _PREVIEW_RATE:
                break
        audio = np.concatenate(parts) if parts else np.zeros(1, np.float32)
        return audio[: int(max_s * _PREVIEW_RATE)]

    before = spectrogram(head(mixture), _PREVIEW_RATE, title=f"{Path(mixture).name}: mixture")
    after = spectrogram(head(vocals), _PREVIEW_RATE, title="vocals")
    return before, after


def batch_markdown(batch: BatchResult) -> str:
    lines = []
    if batch.results:
        lines += ["| song | length | time | output folder |", "|---|---|---|---|"]
        for r in batch.results:
            lines.append(f"| {r.source.name} | {r.duration_s:.1f} s | {r.elapsed_s:.1f} s | `{r.vocals.parent}` |")
    if batch.failed:
        lines += ["", "**Skipped:**"] + [f"- {p.name}: {reason}" for p, reason in batch.failed]
    return "\n".join(lines) or "Nothing was separated."


def training_markdown(name: str, history: list[dict], best: float, folder: Path) -> str:
    rows = ["| epoch | train loss | validation loss |", "|---|---|---|"]
    rows += [f"| {h['epoch']} | {h['train_loss']:.3e} | {h['val_loss']:.3e} |" for h in history[-10:]]
    return (f"Separator **{name}**: {len(history)} epoch(s), best validation loss {best:.3e}. Saved in "
            f"`{folder}`; it is now in the model list. TensorBoard: `tensorboard --logdir {folder / 'training'}`.\n\n"
            + "\n".join(rows))
