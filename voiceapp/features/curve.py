"""The "F0 curve" tool: f0 of an audio file drawn over its spectrogram, and exported as `time_s,f0_hz` CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError
from voiceapp.features.f0 import SAMPLE_RATE, f0_csv, f0_times, load_f0_method
from voiceapp.services import Services


@dataclass
class F0Curve:
    f0_hz: np.ndarray          # (frames,) at 100 frames/s, 0 = unvoiced
    method: str
    csv_path: Path
    figure: Any                # matplotlib Figure

    @property
    def summary(self) -> str:
        voiced = self.f0_hz[self.f0_hz > 0]
        if not len(voiced):
            return f"{self.method}: no voiced frames ({len(self.f0_hz) / 100:.1f} s)."
        low, mid, high = np.percentile(voiced, [5, 50, 95])
        return (f"{self.method}: {100 * len(voiced) / len(self.f0_hz):.0f}% voiced, median {mid:.0f} Hz "
                f"(5-95%: {low:.0f}-{high:.0f} Hz), {len(self.f0_hz) / 100:.1f} s.")


def f0_figure(audio_16k: np.ndarray, f0_hz: np.ndarray, title: str = "", max_hz: float = 1100.0) -> Any:
    """Log spectrogram (0..max_hz, 10 ms hop) with the f0 track drawn over it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n_fft, hop = 2048, 160
    padded = np.pad(np.asarray(audio_16k, np.float32), (n_fft // 2, n_fft // 2))
    n_frames = max(1, 1 + (len(padded) - n_fft) // hop)
    index = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(padded[index] * np.hanning(n_fft), axis=1)).T     # (freq, frames)
    freqs = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    keep = freqs <= max_hz
    db = 20 * np.log10(spec[keep] + 1e-6)
    fig, ax = plt.subplots(figsize=(9.0, 3.2), dpi=100)
    fig.set_layout_engine("tight")
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
              extent=(0, n_frames / 100, 0, freqs[keep][-1]))
    times = f0_times(len(f0_hz))
    track = np.where(f0_hz > 0, f0_hz, np.nan)
    ax.plot(times, track, color="#4fc3f7", linewidth=1.6, label="f0")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Hz")
    ax.set_ylim(0, max_hz)
    ax.set_title(title, fontsize=9)
    return fig


def f0_curve(path: Path | str, method_name: str, services: Services, max_seconds: float = 600.0) -> F0Curve:
    """f0 of the audio file at `path` with `method_name` (loaded once through `services.cache`); writes
    `outputs/f0/<stem>_<method>.csv`."""
    from voiceapp.audio import load_audio
    from voiceapp.workspace import sanitize_name, write_text_atomic

    path = Path(path)
    audio, _ = load_audio(path, SAMPLE_RATE, mono=True)
    if len(audio) > max_seconds * SAMPLE_RATE:
        raise InputError(f"{path.name} is {len(audio) / SAMPLE_RATE / 60:.0f} min long; the F0 curve view takes "
                         f"up to {max_seconds / 60:.0f} min. Use `python -m voiceapp f0` for long files.")
    workspace, device = services.workspace, services.device
    key = ("f0-method", method_name, device, str(workspace.root))
    method = services.cache.get(key, lambda: load_f0_method(method_name, device, workspace))
    f0 = method(audio)
    stem = sanitize_name(path.stem, "file name") if any(c.isalnum() for c in path.stem) else "audio"
    target = workspace.f0_curves_dir / f"{stem}_{method.name}.csv"
    write_text_atomic(target, f0_csv(f0))
    voiced = f0[f0 > 0]
    top = float(np.clip(1.6 * np.percentile(voiced, 95), 400, 1100)) if len(voiced) else 1100.0
    figure = f0_figure(audio, f0, title=f"{path.name}: f0 ({method.name}) over the spectrogram", max_hz=top)
    return F0Curve(f0, method.name, target, figure)
