"""Train a U-Net vocal separator on stems: `python -m voiceapp separator-train NAME --stems DIR`.

Recipe (Jansson et al. 2017, adapted): random remixes of vocals and accompaniment (voiceapp.separate.stems),
mono segments of `patch_frames` STFT frames on the rate-independent grid, network input = log-compressed
magnitude of bins 0..n_bins-1, loss = mean |mask * X - Y| on magnitudes (X mixture, Y vocals), Adam.
Validation: fixed remixes of held-out songs after every epoch; the best validation loss is exported to
`models/separators/<name>/` (model.safetensors + separator.json). Training state (weights, optimizer, step, RNG
seed, best loss) goes to `models/separators/<name>/training/last.pt` atomically after every epoch, so a stopped
or crashed run resumes where it was. TensorBoard: `tensorboard --logdir models/separators/<name>/training`
(train/loss, val/loss, mask/std, mask and spectrogram images).

Reproducing a shippable model on a GPU (the recipe we could not afford on the team's shared 2 CPU cores):
MUSDB18-HQ train split (or any stems folders), `--size full --epochs 200 --steps-per-epoch 500 --batch-size 16`
(about 1.6 M remixed 1.5 s segments); then `python bench/separate.py --models dsp,NAME` on songs outside the
training set, and ship it only if its vocals SDR beats "dsp".
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voiceapp.errors import ConfigError, InputError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import Workspace, atomic_path

if TYPE_CHECKING:
    from voiceapp.separate.model import MaskModelConfig

log = logging.getLogger(__name__)

TRAIN_RATE = 44100


@dataclass(frozen=True)
class SeparatorTrainConfig:
    size: str = "small"            # U-Net preset: full (paper, 9.8 M params), small (1.6 M), tiny (tests)
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 8
    learning_rate: float = 1e-3
    val_fraction: float = 0.1      # songs held out for validation (at least one when there are two or more)
    val_songs: tuple[str, ...] = ()  # explicit held-out song folder names (overrides val_fraction)
    val_items: int = 32            # fixed validation remixes
    same_song_prob: float = 0.25
    seed: int = 0
    resume: bool = True
    sample_rate: int = TRAIN_RATE
    model: MaskModelConfig | None = None  # None: preset `size` with default STFT/patch settings

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs, steps_per_epoch and batch_size must be >= 1, got {self}")
        if not 0 <= self.val_fraction < 1 or self.learning_rate <= 0:
            raise ConfigError(f"val_fraction must be in [0, 1) and learning_rate > 0, got {self}")

    def model_config(self) -> MaskModelConfig:
        from voiceapp.separate.model import MaskModelConfig

        if self.model is not None:
            return self.model
        if self.size == "tiny":
            return MaskModelConfig.tiny()
        from voiceapp.nets.unet import UNetConfig

        return MaskModelConfig(unet=UNetConfig.preset(self.size))


@dataclass
class TrainResult:
    folder: Path
    epochs_done: int
    steps_done: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)


def split_songs(songs: list, cfg: SeparatorTrainConfig) -> tuple[list, list]:
    """(train, validation) by song: explicit names, else every k-th song in name order."""
    if cfg.val_songs:
        wanted = set(cfg.val_songs)
        val = [s for s in songs if s.name in wanted]
        missing = wanted - {s.name for s in val}
        if missing:
            raise InputError(f"Validation songs not found in the stems folder: {sorted(missing)}.")
        return [s for s in songs if s.name not in wanted], val
    if len(songs) < 2 or cfg.val_fraction == 0:
        return songs, []
    n_val = max(1, int(round(len(songs) * cfg.val_fraction)))
    step = len(songs) / n_val
    idx = {int(i * step + step / 2) for i in range(n_val)}
    return [s for i, s in enumerate(songs) if i not in idx], [s for i, s in enumerate(songs) if i in idx]


def _pools_for_validation(train: list, val: list) -> list:
    """Validation remixes use held-out stems; a missing kind (no held-out vocals, say) is borrowed from train."""
    if not val:
        return train
    has_vocals = any(s.vocals is not None for s in val)
    has_acc = any(s.accompaniment is not None for s in val)
    borrowed = [s for s in train if (not has_vocals and s.vocals is not None)
                or (not has_acc and s.accompaniment is not None)]
    return val + borrowed


class _Spectra:
    """Mono segments -> (network input, |X|, |Y|) tensors on the model's bins, with torch.stft."""

    def __init__(self, mcfg: MaskModelConfig, sample_rate: int, device: str) -> None:
        import torch

        self.mcfg, self.device = mcfg, device
        self.n_fft, self.hop = mcfg.stft.for_rate(sample_rate)
        self.window = torch.hann_window(self.n_fft, periodic=True, device=device)
        self.segment = (mcfg.patch_frames - 1) * self.hop + self.n_fft

    def magnitude(self, batch: np.ndarray):
        import torch

        x = torch.from_numpy(batch).to(self.device)
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        mag = spec.abs() / self.window.sum()  # (B, F, frames), the scale of voiceapp.separate.stft
        n = self.mcfg.n_bins
        mag = mag[:, :n]
        if mag.shape[1] < n:
            mag = torch.nn.functional.pad(mag, (0, 0, 0, n - mag.shape[1]))
        return mag[:, None, :, : self.mcfg.patch_frames]  # (B, 1, n_bins, patch_frames)

    def inputs(self, mix: np.ndarray, vocals: np.ndarray):
        import torch

        from voiceapp.separate.model import network_input

        x, y = self.magnitude(mix), self.magnitude(vocals)
        net_in = torch.from_numpy(network_input(x.cpu().numpy(), self.mcfg)).to(self.device)
        return net_in, x, y


def _fixed_validation(songs: list, cfg: SeparatorTrainConfig, segment: int) -> tuple[np.ndarray, np.ndarray]:
    from voiceapp.separate.stems import Remixer

    remixer = Remixer(songs, segment, seed=cfg.seed + 12345, same_song_prob=1.0, vocals_gain_db=(0.0, 0.0),
                      accomp_gain_db=(0.0, 0.0), silent_vocals_prob=0.0)
    return remixer.batch(cfg.val_items)


def _network_keys(model_config: dict) -> dict:
    """The parts of a MaskModelConfig that shape the network and its input (inference-only options may change)."""
    keys = ("unet", "stft", "n_bins", "patch_frames", "log_floor")
    return {k: model_config.get(k) for k in keys}


def _save_state(path: Path, net, optimizer, epoch: int, step: int, best: float, history: list[dict],
                cfg: SeparatorTrainConfig, mcfg: MaskModelConfig) -> None:
    import torch

    state = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step,
             "best_val_loss": best, "history": history, "model_config": mcfg.to_dict(),
             "train_config": {k: v for k, v in asdict(cfg).items() if k != "model"}}
    with atomic_path(path) as tmp:
        torch.save(state, str(tmp))


def train_separator(name: str, stems_dir: Path | str, workspace: Workspace,
                    cfg: SeparatorTrainConfig = SeparatorTrainConfig(), device: str = "cpu",
                    progress: Progress = no_progress, cancel: CancelToken = NEVER) -> TrainResult:
    """Train (or resume) separator `name` on the songs in `stems_dir`; see the module docstring."""
    import torch

    from voiceapp.nets.unet import UNet
    from voiceapp.separate.model import save_separator
    from voiceapp.separate.stems import Remixer, load_stem_songs

    folder = workspace.separator_dir(name)
    state_path = folder / "training" / "last.pt"
    mcfg = cfg.model_config()
    songs = load_stem_songs(Path(stems_dir), cfg.sample_rate, sub_progress(progress, 0.0, 0.05), cancel)
    train_songs, val_songs = split_songs(songs, cfg)
    spectra = _Spectra(mcfg, cfg.sample_rate, device)
    remixer = Remixer(train_songs, spectra.segment, seed=cfg.seed, same_song_prob=cfg.same_song_prob)
    val_mix, val_voc = _fixed_validation(_pools_for_validation(train_songs, val_songs), cfg, spectra.segment)
    torch.manual_seed(cfg.seed)
    net = UNet(mcfg.unet).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    epoch, step, best, history = 0, 0, math.inf, []
    if cfg.resume and state_path.exists():
        state = torch.load(str(state_path), map_location=device, weights_only=True)
        if _network_keys(state.get("model_config") or {}) != _network_keys(mcfg.to_dict()):
            raise ConfigError(f"{state_path} was trained with another network config; pick another name or delete "
                              f"{folder / 'training'} to start over.")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, best, history = state["epoch"], state["step"], state["best_val_loss"], state["history"]
        remixer.rng = np.random.default_rng(cfg.seed + step)
        log.info("resuming %s at epoch %d (step %d)", name, epoch, step)
    writer = _tensorboard(folder / "training" / "tensorboard")
    info = {"name": name, "stems": str(stems_dir), "train_songs": [s.name for s in train_songs],
            "val_songs": [s.name for s in val_songs], "sample_rate": cfg.sample_rate, "size": cfg.size}
    total_steps = cfg.epochs * cfg.steps_per_epoch
    try:
        while epoch < cfg.epochs:
            start = time.perf_counter()
            losses = []
            net.train()
            for _ in range(cfg.steps_per_epoch):
                cancel.raise_if_set()
                net_in, x, y = spectra.inputs(*remixer.batch(cfg.batch_size))
                mask = net(net_in)
                loss = torch.mean(torch.abs(mask * x - y))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                losses.append(loss.item())
                if writer is not None and step % 10 == 0:
                    writer.add_scalar("train/loss", losses[-1], step)
                    writer.add_scalar("mask/std", float(mask.detach().std()), step)
                progress(0.05 + 0.95 * step / total_steps,
                         f"epoch {epoch + 1}/{cfg.epochs} step {step}: loss {np.mean(losses[-20:]):.2e}")
            epoch += 1
            val_loss, val_mask, val_x = _validate(net, spectra, val_mix, val_voc)
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                      "seconds": round(time.perf_counter() - start, 2)}
            history.append(record)
            log.info("separator %s epoch %d: %s", name, epoch, record)
            if writer is not None:
                _write_epoch(writer, step, val_loss, val_mask, val_x)
            if val_loss < best:
                best = val_loss
                save_separator(folder, net.state_dict(), mcfg, {**info, "epoch": epoch, "step": step,
                                                                "val_loss": val_loss, "history": history})
            _save_state(state_path, net, optimizer, epoch, step, best, history, cfg, mcfg)
    finally:
        if writer is not None:
            writer.close()
    progress(1.0, f"trained {name}: best validation loss {best:.3e}")
    return TrainResult(folder, epoch, step, best, history)


def _validate(net, spectra: _Spectra, val_mix: np.ndarray, val_voc: np.ndarray) -> tuple[float, object, object]:
    import torch

    net.eval()
    total, count, first_mask, first_x = 0.0, 0, None, None
    with torch.inference_mode():
        for i in range(0, len(val_mix), 8):
            net_in, x, y = spectra.inputs(val_mix[i:i + 8], val_voc[i:i + 8])
            mask = net(net_in)
            total += float(torch.sum(torch.abs(mask * x - y)))
            count += y.numel()
            if first_mask is None:
                first_mask, first_x = mask[0].cpu(), net_in[0].cpu()
    return total / max(count, 1), first_mask, first_x


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in requirements.txt; keep training without it
        log.warning("tensorboard is not installed; training runs without TensorBoard logs")
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(log_dir))


def _write_epoch(writer, step: int, val_loss: float, mask, net_in) -> None:
    writer.add_scalar("val/loss", val_loss, step)
    if mask is not None:
        writer.add_scalar("val/mask_std", float(mask.std()), step)
        writer.add_image("val/mask", mask.flip(-2), step)  # (1, bins, frames), low frequencies at the bottom
        writer.add_image("val/input", net_in.clamp(0, 1).flip(-2), step)
    writer.flush()
