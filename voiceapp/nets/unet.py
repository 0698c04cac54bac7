"""Magnitude-mask U-Net for singing-voice separation (Jansson et al., ISMIR 2017).

Encoder: `depth` strided 5x5 convolutions (stride 2 on frequency and time), each followed by batch norm and
LeakyReLU(0.2); channels double from `base_channels` (16 -> 32 -> ... -> 512 for the paper's depth 6).
Decoder: transposed 5x5 convolutions that double the size back, batch norm + ReLU, dropout 0.5 in the first three
decoder layers, skip connections (concatenation) from the encoder layer of the same size, and a sigmoid on the
last layer, which gives a soft mask in [0, 1] to multiply with the input magnitude.

Input and output: (batch, in_channels, freq_bins, frames); freq_bins and frames must be multiples of
`2 ** depth` (the separator pads patches; see `UNet.size_multiple`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from voiceapp.errors import ConfigError


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 1            # magnitude channels per item (the separator feeds each audio channel alone)
    base_channels: int = 16         # channels of the first encoder layer; doubled per layer
    max_channels: int = 512         # cap on the doubling
    depth: int = 6                  # encoder layers (= decoder layers)
    kernel_size: int = 5
    leaky_slope: float = 0.2
    dropout: float = 0.5
    dropout_layers: int = 3         # the first N decoder layers use dropout

    def __post_init__(self) -> None:
        if self.depth < 1 or self.base_channels < 1 or self.in_channels < 1:
            raise ConfigError(f"UNetConfig needs depth, base_channels, in_channels >= 1, got {self}")
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"UNetConfig.kernel_size must be odd, got {self.kernel_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"UNetConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def tiny(cls) -> "UNetConfig":
        """A few thousand parameters, for tests."""
        return cls(base_channels=4, max_channels=16, depth=3)

    @classmethod
    def small(cls) -> "UNetConfig":
        """Paper layout with a quarter of the channels; trains on a CPU in minutes."""
        return cls(base_channels=8, max_channels=128, depth=6)

    @classmethod
    def preset(cls, name: str) -> "UNetConfig":
        presets = {"full": cls(), "small": cls.small(), "tiny": cls.tiny()}
        if name not in presets:
            raise ConfigError(f"Unknown U-Net size {name!r}; choose one of {sorted(presets)}.")
        return presets[name]

    def encoder_channels(self) -> list[int]:
        return [min(self.base_channels * 2 ** i, self.max_channels) for i in range(self.depth)]

    def to_dict(self) -> dict:
        return asdict(self)


class UNet(nn.Module):
    """Predicts a soft mask (sigmoid) with the input's shape from a magnitude spectrogram."""

    def __init__(self, cfg: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        k, pad = cfg.kernel_size, cfg.kernel_size // 2
        enc = cfg.encoder_channels()
        self.encoder = nn.ModuleList()
        previous = cfg.in_channels
        for channels in enc:
            self.encoder.append(nn.Sequential(
                nn.Conv2d(previous, channels, k, stride=2, padding=pad),
                nn.BatchNorm2d(channels),
                nn.LeakyReLU(cfg.leaky_slope)))
            previous = channels
        self.decoder = nn.ModuleList()
        outs = list(reversed(enc[:-1])) + [cfg.in_channels]  # e.g. 256, 128, 64, 32, 16, 1
        for i, channels in enumerate(outs):
            last = i == len(outs) - 1
            in_ch = enc[-1] if i == 0 else outs[i - 1] * 2  # after the first layer: concat with the skip
            layers: list[nn.Module] = [nn.ConvTranspose2d(in_ch, channels, k, stride=2, padding=pad, output_padding=1)]
            if not last:
                layers += [nn.BatchNorm2d(channels), nn.ReLU()]
                if i < cfg.dropout_layers and cfg.dropout > 0:
                    layers.append(nn.Dropout(cfg.dropout))
            self.decoder.append(nn.Sequential(*layers))

    @property
    def size_multiple(self) -> int:
        return 2 ** self.cfg.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, in_channels, freq, frames) network input -> mask in [0, 1] of the same shape."""
        skips = []
        h = x
        for layer in self.encoder:
            h = layer(h)  # (batch, channels, freq / 2**i, frames / 2**i)
            skips.append(h)
        skips.pop()  # the bottleneck is not a skip
        for i, layer in enumerate(self.decoder):
            if i > 0:
                h = torch.cat([h, skips.pop()], dim=1)  # (batch, 2 * channels, freq', frames')
            h = layer(h)
        return torch.sigmoid(h)  # (batch, in_channels, freq, frames)
