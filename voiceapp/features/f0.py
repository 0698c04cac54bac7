"""Pitch (f0) methods behind one registry, all with the same contract.

Every method takes mono float32 audio at 16 kHz and returns f0 in Hz, float32, one value per 10 ms
(`len(audio) // 160 + 1` values, frame i centred at i * 10 ms), 0 where unvoiced, voiced values in 50..1100 Hz.
`coarse_f0` turns Hz into RVC's 1..255 mel-scale pitch tokens (rvc-facts §2.9).

    method = load_f0_method("fcpe")          # "pm", "harvest", "dio", "crepe", "crepe-tiny", "fcpe", "rmvpe"
    f0_hz = method(audio_16k)                # (len // 160 + 1,) float32
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.workspace import Workspace

log = logging.getLogger(__name__)

F0_HOP = 160
F0_MIN_HZ = 50.0
F0_MAX_HZ = 1100.0
F0_RATE_HZ = 100
SAMPLE_RATE = 16000
_MIN_SAMPLES = 2048  # shorter input is zero-padded for the analysis, then the output is cut back


def n_f0_frames(n_samples: int) -> int:
    """Number of f0 frames for `n_samples` of 16 kHz audio (the length contract of every method)."""
    return int(n_samples) // F0_HOP + 1


def f0_times(n_frames: int) -> np.ndarray:
    """Centre time in seconds of each f0 frame."""
    return np.arange(n_frames, dtype=np.float64) / F0_RATE_HZ


def coarse_f0(f0_hz: np.ndarray) -> np.ndarray:
    """f0 in Hz -> RVC's pitch tokens, int64 in 1..255 (1 = unvoiced), on the mel scale between 50 and 1100 Hz."""
    f0 = np.nan_to_num(np.asarray(f0_hz, dtype=np.float64), nan=0.0)
    mel_min = 1127.0 * np.log(1.0 + F0_MIN_HZ / 700.0)
    mel_max = 1127.0 * np.log(1.0 + F0_MAX_HZ / 700.0)
    mel = 1127.0 * np.log(1.0 + np.maximum(f0, 0.0) / 700.0)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - mel_min) * 254.0 / (mel_max - mel_min) + 1.0
    mel = np.clip(mel, 1.0, 255.0)
    return np.rint(mel).astype(np.int64)


def _as_audio(audio: Any) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"f0 extraction needs mono audio (samples,), got shape {x.shape}; mix it down first.")
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _fit(f0: np.ndarray, n_frames: int) -> np.ndarray:
    """Crop or zero-pad to `n_frames`; NaN and values outside 50..1100 Hz become 0 (unvoiced)."""
    f0 = np.nan_to_num(np.asarray(f0, dtype=np.float64).reshape(-1), nan=0.0)
    out = np.zeros(n_frames, dtype=np.float32)
    n = min(n_frames, len(f0))
    out[:n] = f0[:n]
    out[(out < F0_MIN_HZ * 0.999) | (out > F0_MAX_HZ * 1.001)] = 0.0
    return out


@contextlib.contextmanager
def _quiet() -> Any:
    """Some pitch packages print banners on stdout; keep the CLI's output clean."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class F0Method:
    """Base class: `method(audio_16k) -> f0_hz` with the shared length contract and range."""

    name: str = ""
    description: str = ""
    needs_weights: bool = False
    packages: tuple[str, ...] = ()   # distributions whose versions a feature manifest records
    uses_torch: bool = False         # a worker process limits torch to one thread
    in_process: bool = False         # cheap enough that a worker process would cost more than it saves

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def __call__(self, audio_16k: np.ndarray) -> np.ndarray:
        audio = _as_audio(audio_16k)
        n_frames = n_f0_frames(len(audio))
        if len(audio) < _MIN_SAMPLES:
            audio = np.pad(audio, (0, _MIN_SAMPLES - len(audio)))
        if not np.any(audio):
            return np.zeros(n_frames, dtype=np.float32)
        return _fit(self.compute(audio), n_frames)

    def compute(self, audio: np.ndarray) -> np.ndarray:
        """f0 for (padded) audio; frame i at i * 10 ms. Subclasses implement this."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r})"


class PmF0(F0Method):
    name = "pm"
    packages = ("praat-parselmouth",)
    in_process = True
    description = "Praat autocorrelation (parselmouth): fast, good on clean speech"

    def compute(self, audio: np.ndarray) -> np.ndarray:
        import parselmouth

        pitch = parselmouth.Sound(audio.astype(np.float64), SAMPLE_RATE).to_pitch_ac(
            time_step=1.0 / F0_RATE_HZ, voicing_threshold=0.6, pitch_floor=F0_MIN_HZ, pitch_ceiling=F0_MAX_HZ)
        values, times = pitch.selected_array["frequency"], pitch.xs()
        # Praat's frames start later (its window is 3 / pitch_floor long): place them on our 10 ms grid.
        n_frames = n_f0_frames(len(audio))
        if len(times) == 0:
            return np.zeros(n_frames)
        step = times[1] - times[0] if len(times) > 1 else 1.0 / F0_RATE_HZ
        nearest = np.floor((f0_times(n_frames) - times[0]) / step + 0.5).astype(int)
        inside = (nearest >= 0) & (nearest < len(values))
        return np.where(inside, values[np.clip(nearest, 0, len(values) - 1)], 0.0)


class HarvestF0(F0Method):
    name = "harvest"
    packages = ("pyworld",)
    description = "WORLD Harvest (pyworld): robust on speech, slow, weak on pure tones"
    _algorithm = "harvest"

    def compute(self, audio: np.ndarray) -> np.ndarray:
        import pyworld

        x = audio.astype(np.float64)
        estimate = getattr(pyworld, self._algorithm)
        f0, times = estimate(x, SAMPLE_RATE, f0_floor=F0_MIN_HZ, f0_ceil=F0_MAX_HZ, frame_period=1000 / F0_RATE_HZ)
        return pyworld.stonemask(x, f0, times, SAMPLE_RATE)


class DioF0(HarvestF0):
    name = "dio"
    in_process = True
    description = "WORLD DIO + StoneMask (pyworld): very fast, less accurate"
    _algorithm = "dio"


class CrepeF0(F0Method):
    name = "crepe"
    packages = ("torchcrepe",)
    uses_torch = True
    description = "CREPE full (torchcrepe): accurate, slow on CPU"
    _capacity = "full"
    periodicity_threshold = 0.1

    def compute(self, audio: np.ndarray) -> np.ndarray:
        import torch
        import torchcrepe

        x = torch.from_numpy(np.ascontiguousarray(audio))[None]
        with torch.inference_mode():
            f0, periodicity = torchcrepe.predict(x, SAMPLE_RATE, F0_HOP, F0_MIN_HZ, F0_MAX_HZ, self._capacity,
                                                 decoder=_viterbi_local_average, return_periodicity=True,
                                                 batch_size=512, device=self.device, pad=True)
            periodicity = torchcrepe.filter.median(periodicity, 3)
            f0 = torchcrepe.filter.mean(f0, 3)
            f0 = torch.where(periodicity < self.periodicity_threshold, torch.zeros_like(f0), f0)
        return f0[0].float().cpu().numpy()


def _viterbi_local_average(logits: Any) -> tuple[Any, Any]:
    """torchcrepe decoder: Viterbi path (smooth, no octave jumps), then the salience-weighted mean of the 9 bins
    around each path bin, so the pitch is not quantised to CREPE's 20-cent bins."""
    import torch
    import torchcrepe

    bins, _ = torchcrepe.decode.viterbi(logits)                    # (batch, frames)
    salience = torch.nan_to_num(logits, neginf=0.0).clamp(min=0)   # (batch, 360, frames)
    offsets = torch.arange(-4, 5, device=bins.device)
    index = (bins[:, None, :] + offsets[None, :, None]).clamp(0, salience.shape[1] - 1)
    weights = torch.gather(salience, 1, index)                     # (batch, 9, frames)
    cents = torchcrepe.convert.bins_to_cents(index.float())
    mean_cents = (weights * cents).sum(1) / weights.sum(1).clamp(min=1e-9)
    fallback = torchcrepe.convert.bins_to_cents(bins.float())
    mean_cents = torch.where(weights.sum(1) > 1e-9, mean_cents, fallback)
    return bins, torchcrepe.convert.cents_to_frequency(mean_cents)


class CrepeTinyF0(CrepeF0):
    name = "crepe-tiny"
    description = "CREPE tiny (torchcrepe): fast neural tracker"
    _capacity = "tiny"


class FcpeF0(F0Method):
    name = "fcpe"
    packages = ("torchfcpe",)
    uses_torch = True
    in_process = True
    description = "FCPE (torchfcpe): fast and accurate neural tracker, weights ship with the package"
    threshold = 0.006

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(device)
        from torchfcpe import spawn_bundled_infer_model

        with _quiet():
            self.model = spawn_bundled_infer_model(device=device)

    def compute(self, audio: np.ndarray) -> np.ndarray:
        import torch

        top = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if top > 1.0:  # FCPE's mel front end expects [-1, 1]; pitch does not depend on the level
            audio = audio / top
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :, None].to(self.device)
        with torch.inference_mode():
            f0 = self.model.infer(x, sr=SAMPLE_RATE, decoder_mode="local_argmax", threshold=self.threshold,
                                  f0_min=F0_MIN_HZ, f0_max=F0_MAX_HZ, interp_uv=False,
                                  output_interp_target_length=n_f0_frames(len(audio)))
        return f0[0, :, 0].float().cpu().numpy()


def rmvpe_candidates(workspace: Workspace | None) -> list[Path]:
    """Where `rmvpe.pt` may be: `models/base/rmvpe.pt`, then `models/base/rmvpe/rmvpe.pt`."""
    if workspace is None:
        return []
    return [workspace.rmvpe_path, workspace.base_dir / "rmvpe" / "rmvpe.pt"]


def find_rmvpe(workspace: Workspace | None) -> Path | None:
    return next((p for p in rmvpe_candidates(workspace) if p.is_file()), None)


def _missing_rmvpe(workspace: Workspace | None) -> MissingArtifactError:
    where = " or ".join(str(p) for p in rmvpe_candidates(workspace)) or "models/base/rmvpe.pt"
    return MissingArtifactError(
        f"The RMVPE weights (rmvpe.pt) are not in {where}. Get them with "
        f"`python -m voiceapp assets download rmvpe` (or the Models tab), or import a copy with "
        f"`python -m voiceapp assets import PATH`; or pick another f0 method such as 'fcpe'.")


class RmvpeF0(F0Method):
    name = "rmvpe"
    uses_torch = True
    description = "RMVPE: robust on singing and noisy material (needs models/base/rmvpe.pt)"
    needs_weights = True
    threshold = 0.03

    def __init__(self, device: str = "cpu", path: Path | str | None = None, workspace: Workspace | None = None) -> None:
        super().__init__(device)
        path = Path(path) if path is not None else find_rmvpe(workspace)
        if path is None or not path.is_file():
            raise _missing_rmvpe(workspace)
        self.path = path
        self.model = load_rmvpe(path, device)

    def compute(self, audio: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(audio)).to(self.device)
        return self.model(x, threshold=self.threshold)


def load_rmvpe(path: Path | str, device: str = "cpu") -> Any:
    """Build the RMVPE network and load `rmvpe.pt` (tensors only; a pickle that needs code is refused)."""
    import torch

    from voiceapp.nets.rmvpe import Rmvpe

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt file, or a pickle that wants to run code
        raise InputError(f"{path.name} cannot be read as RMVPE weights ({type(err).__name__}: {err}). "
                         f"Download it again with `python -m voiceapp assets download rmvpe`.") from err
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model = Rmvpe.from_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as err:
        raise InputError(f"{path.name} does not hold the RMVPE network's parameters ({str(err)[:200]}). "
                         f"Download it again with `python -m voiceapp assets download rmvpe`.") from err
    return model.to(device)


F0_METHODS: dict[str, type[F0Method]] = {
    cls.name: cls for cls in (RmvpeF0, FcpeF0, CrepeF0, CrepeTinyF0, HarvestF0, PmF0, DioF0)
}
OFFLINE_F0_METHODS: tuple[str, ...] = tuple(n for n, c in F0_METHODS.items() if not c.needs_weights)


def check_f0_method(name: str, workspace: Workspace | None = None) -> str:
    """Validate `name` without loading anything: InputError if unknown, MissingArtifactError if weights are absent."""
    key = (name or "").strip().lower()
    if key not in F0_METHODS:
        raise InputError(f"Unknown f0 method {name!r}; choose one of {sorted(F0_METHODS)}.")
    if F0_METHODS[key].needs_weights and find_rmvpe(workspace) is None:
        raise _missing_rmvpe(workspace)
    return key


def load_f0_method(name: str, device: str = "cpu", workspace: Workspace | None = None) -> F0Method:
    """Build the f0 method `name` on `device`. Raises InputError (unknown name), MissingArtifactError (no weights)."""
    key = (name or "").strip().lower()
    if key not in F0_METHODS:
        raise InputError(f"Unknown f0 method {name!r}; choose one of {sorted(F0_METHODS)}.")
    cls = F0_METHODS[key]
    if cls is RmvpeF0:
        return RmvpeF0(device, workspace=workspace)
    return cls(device)


def default_f0_method(workspace: Workspace | None) -> str:
    """'rmvpe' when its weights are in models/base, else 'fcpe' (works offline)."""
    return "rmvpe" if find_rmvpe(workspace) is not None else "fcpe"


def available_f0_methods(workspace: Workspace | None) -> list[str]:
    """Registry names usable now: every method except rmvpe when its weights are absent."""
    return [n for n, c in F0_METHODS.items() if not c.needs_weights or find_rmvpe(workspace) is not None]


def f0_method_choices() -> list[tuple[str, str]]:
    """(label, name) pairs for dropdowns."""
    return [(f"{name} - {cls.description}", name) for name, cls in F0_METHODS.items()]


def f0_csv(f0_hz: np.ndarray) -> str:
    """`time_s,f0_hz` rows, one per 10 ms frame, 0 = unvoiced. No header line, so RVC WebUI's "F0 curve file"
    input (which parses every line as two numbers) reads it too."""
    lines = [f"{t:.2f},{f:.3f}" for t, f in zip(f0_times(len(f0_hz)), np.asarray(f0_hz, dtype=np.float64))]
    return "\n".join(lines) + "\n"


def read_f0_csv(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a `time_s,f0_hz` file (header optional) -> (times_s, f0_hz)."""
    path = Path(path)
    rows: list[tuple[float, float]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        if len(parts) < 2 or not parts[0]:
            continue
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            if n == 0:
                continue  # header
            raise InputError(f"{path.name}: line {n + 1} is not 'time_s,f0_hz': {line[:60]!r}.") from None
    if not rows:
        raise InputError(f"{path.name} has no 'time_s,f0_hz' rows.")
    data = np.asarray(rows, dtype=np.float64)
    return data[:, 0], data[:, 1]


