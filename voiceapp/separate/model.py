"""A trained U-Net vocal separator: its config, its files on disk, and its mask estimator.

Files (`models/separators/<name>/`): `model.safetensors` (U-Net weights, the best validation checkpoint) and
`separator.json` (format, version, U-Net config, STFT grid, band and patch sizes, training summary).

Full band: the U-Net sees bins 0..n_bins-1 (0 to ~11 kHz) of the rate-independent STFT grid (voiceapp.separate.stft:
the same 21.5 Hz bin spacing at every sample rate), so its mask applies bin-for-bin to the full-rate STFT of each
channel; no frequency resampling is needed. Above the modelled band each frame's mask is the mean mask of the
top `high_band_bins` modelled bins (the upper vocal band: sibilants and breath continue above 11 kHz the way they
behave at 8-11 kHz). Inputs with fewer bins (rates below 22 kHz) are zero-padded to n_bins for the network.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from voiceapp.errors import ConfigError, MissingArtifactError
from voiceapp.nets.unet import UNetConfig
from voiceapp.separate.stft import StftConfig
from voiceapp.workspace import atomic_path, read_json, write_json_atomic

log = logging.getLogger(__name__)

FORMAT = "voiceapp-separator"
WEIGHTS_NAME = "model.safetensors"   # files of a trained separator in models/separators/<name>/
SIDECAR_NAME = "separator.json"
FORMAT_VERSION = 1
HIGH_BAND_MODES = ("extend", "dsp")


@dataclass(frozen=True)
class MaskModelConfig:
    unet: UNetConfig = field(default_factory=UNetConfig)
    stft: StftConfig = field(default_factory=StftConfig)
    n_bins: int = 512            # modelled bins: 0 .. n_bins * 21.5 Hz (~11 kHz)
    patch_frames: int = 128      # frames per network input (~1.5 s)
    high_band_bins: int = 32     # above the modelled band: mean mask of this many top modelled bins
    log_floor: float = 1e-5      # network input = (log10(magnitude + floor) - log10(floor)) / -log10(floor)
    high_band: str = "extend"    # above the modelled band: "extend" (mean of the top bins) or "dsp" (the DSP mask)
    centre_power: float = 0.0    # stereo: multiply the mask by the inter-channel similarity ** power (0: off)
    dsp_mix: float = 0.0         # modelled band: mask = unet ** (1 - dsp_mix) * dsp ** dsp_mix (0: the U-Net alone)
    mask_power: float = 1.0      # U-Net mask ** power before blending (< 1 lifts a mask that is too cautious)

    def __post_init__(self) -> None:
        multiple = 2 ** self.unet.depth
        if self.n_bins % multiple or self.patch_frames % multiple:
            raise ConfigError(f"MaskModelConfig: n_bins ({self.n_bins}) and patch_frames ({self.patch_frames}) "
                              f"must be multiples of 2**depth = {multiple}.")
        if not 1 <= self.high_band_bins <= self.n_bins:
            raise ConfigError(f"MaskModelConfig.high_band_bins must be in 1..n_bins, got {self.high_band_bins}")
        if self.high_band not in HIGH_BAND_MODES or self.centre_power < 0 or not 0 <= self.dsp_mix <= 1 \
                or self.mask_power <= 0:
            raise ConfigError(f"MaskModelConfig: high_band must be one of {HIGH_BAND_MODES}, centre_power >= 0, "
                              f"dsp_mix in [0, 1] and mask_power > 0, got {self.high_band!r}, {self.centre_power}, "
                              f"{self.dsp_mix}, {self.mask_power}")

    @classmethod
    def tiny(cls) -> "MaskModelConfig":
        return cls(unet=UNetConfig.tiny(), n_bins=128, patch_frames=32, high_band_bins=8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MaskModelConfig":
        names = {"n_bins", "patch_frames", "high_band_bins", "log_floor", "high_band", "centre_power", "dsp_mix",
                 "mask_power"}
        known = {k: v for k, v in data.items() if k in names}
        return cls(unet=UNetConfig(**data.get("unet", {})), stft=StftConfig(**data.get("stft", {})), **known)


def network_input(magnitude: np.ndarray, cfg: MaskModelConfig) -> np.ndarray:
    """Magnitudes (any shape, 1/sum(window) scaled) -> log-compressed network input in about [0, 1]."""
    floor = cfg.log_floor
    return ((np.log10(magnitude + floor) - np.log10(floor)) / -np.log10(floor)).astype(np.float32)


def extend_high_band(mask_low: np.ndarray, n_bins_full: int, cfg: MaskModelConfig) -> np.ndarray:
    """(..., n_modelled, T) -> (..., n_bins_full, T): above the modelled band use the mean of its top bins."""
    modelled = mask_low.shape[-2]
    if n_bins_full <= modelled:
        return mask_low[..., :n_bins_full, :]
    top = mask_low[..., modelled - cfg.high_band_bins:, :].mean(axis=-2, keepdims=True)
    high = np.broadcast_to(top, (*mask_low.shape[:-2], n_bins_full - modelled, mask_low.shape[-1]))
    return np.concatenate([mask_low, high], axis=-2)


class UNetSeparator:
    """A `MaskEstimator` backed by a U-Net; each audio channel gets its own mask."""

    def __init__(self, name: str, net: object, cfg: MaskModelConfig, device: str = "cpu",
                 batch_items: int = 8) -> None:
        self.name = name
        self.net = net
        self.cfg = cfg
        self.device = device
        self.patch_frames = cfg.patch_frames
        self.batch_items = batch_items
        from voiceapp.separate.dsp import DspConfig, DspSeparator

        self._dsp = DspSeparator("dsp", DspConfig(patch_frames=cfg.patch_frames))  # high band when asked

    def estimate(self, patches: np.ndarray, sample_rate: int, bin_hz: float) -> np.ndarray:
        import torch

        k, c, f, t = patches.shape
        n = self.cfg.n_bins
        mag = np.zeros((k * c, 1, n, t), dtype=np.float32)
        used = min(f, n)
        mag[:, 0, :used] = np.abs(patches[:, :, :used]).reshape(k * c, used, t)
        x = torch.from_numpy(network_input(mag, self.cfg))
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], self.batch_items):
                outs.append(self.net(x[i:i + self.batch_items].to(self.device)).float().cpu())
        mask = torch.cat(outs).numpy()[:, 0, :used].reshape(k, c, used, t)
        if self.cfg.mask_power != 1.0:
            mask = mask ** np.float32(self.cfg.mask_power)
        dsp = None
        if self.cfg.dsp_mix > 0 or (f > n and self.cfg.high_band == "dsp"):
            dsp = self._dsp.estimate(patches, sample_rate, bin_hz)  # (k, c, f, t)
        if self.cfg.dsp_mix > 0:
            w = np.float32(self.cfg.dsp_mix)
            mask = mask ** (1 - w) * dsp[:, :, :used] ** w
        if f > n and self.cfg.high_band == "dsp":
            mask = np.concatenate([mask, dsp[:, :, n:]], axis=2)
        elif f > n:
            mask = extend_high_band(mask, f, self.cfg)
        if c == 2 and self.cfg.centre_power > 0:
            from voiceapp.separate.dsp import centre_mask

            mask = mask * centre_mask(patches, self.cfg.centre_power)
        return mask


def save_separator(folder: Path, state_dict: dict, cfg: MaskModelConfig, info: dict) -> Path:
    """Write `model.safetensors` and `separator.json` atomically into `folder`; returns the sidecar path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp))
    sidecar = {"format": FORMAT, "version": FORMAT_VERSION, "kind": "unet", "config": cfg.to_dict(), "info": info}
    return write_json_atomic(folder / SIDECAR_NAME, sidecar)


def read_sidecar(folder: Path) -> dict:
    data = read_json(folder / SIDECAR_NAME)
    if not data or data.get("format") != FORMAT:
        raise MissingArtifactError(f"{folder / SIDECAR_NAME}: not a Voiceapp separator sidecar. Train one with "
                                   f"`python -m voiceapp separator-train NAME --stems DIR`.")
    if int(data.get("version", 0)) > FORMAT_VERSION:
        raise MissingArtifactError(f"{folder.name}: separator format v{data.get('version')} is newer than this "
                                   f"Voiceapp understands (v{FORMAT_VERSION}); update Voiceapp.")
    return data


def load_unet_separator(folder: Path, device: str = "cpu") -> UNetSeparator:
    """Build the U-Net from `folder`'s sidecar and load its weights (safetensors, no pickle)."""
    from safetensors.torch import load_file

    from voiceapp.nets.unet import UNet

    data = read_sidecar(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.exists():
        raise MissingArtifactError(f"{weights}: weights missing next to the sidecar. Train the separator again "
                                   f"or copy {WEIGHTS_NAME} back.")
    cfg = MaskModelConfig.from_dict(data["config"])
    net = UNet(cfg.unet)
    try:
        net.load_state_dict(load_file(str(weights)))
    except RuntimeError as err:
        raise MissingArtifactError(f"{weights}: weights do not match the config in {SIDECAR_NAME} ({err}).") from err
    net.eval().to(device)
    return UNetSeparator(folder.name, net, cfg, device)
