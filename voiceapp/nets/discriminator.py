"""HiFi-GAN discriminators as RVC uses them: one scale discriminator + period discriminators.

`discriminators.0` is DiscriminatorS; `discriminators.1..N` are DiscriminatorP for RVC's periods
(v1: 2,3,5,7,11,17; v2: 2,3,5,7,11,17,23,37). All convs are weight-normed (weight_g/weight_v). `width` scales
every channel count (1.0 = RVC's, which is what the pretrained f0D*.pth files need).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voiceapp.errors import ConfigError
from voiceapp.nets.commons import LRELU_SLOPE, WNConv1d, WNConv2d, get_padding

PERIODS = {"v1": (2, 3, 5, 7, 11, 17), "v2": (2, 3, 5, 7, 11, 17, 23, 37)}
# Channel multiplier per size preset ("light": see synthesizer.LIGHT_WIDTHS and bench/nets.py).
DISCRIMINATOR_WIDTHS = {"full": 1.0, "light": 0.125, "tiny": 1 / 32}


def _scaled(channels: int, width: float) -> int:
    return max(4, int(round(channels * width / 4)) * 4)


class DiscriminatorS(nn.Module):
    """Waveform discriminator: strided grouped 1-d convs (`convs.0..5`) and `conv_post`."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = [_scaled(n, width) for n in (16, 64, 256, 1024, 1024, 1024)]
        # (in, out, kernel, stride, grouped, padding); grouped convs keep 4 input channels per group
        layers = [(1, c[0], 15, 1, False, 7), (c[0], c[1], 41, 4, True, 20), (c[1], c[2], 41, 4, True, 20),
                  (c[2], c[3], 41, 4, True, 20), (c[3], c[4], 41, 4, True, 20), (c[4], c[5], 5, 1, False, 2)]
        self.convs = nn.ModuleList(
            WNConv1d(i, o, k, s, groups=max(1, i // 4) if grouped else 1, padding=p)
            for i, o, k, s, grouped, p in layers)
        self.conv_post = WNConv1d(c[5], 1, 3, 1, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (batch, 1, samples) -> (scores (batch, n), feature maps)."""
        return _conv_stack(self.convs, self.conv_post, x)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """LeakyReLU conv layers, then the output conv: (flattened scores, every layer's feature map)."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap


class DiscriminatorP(nn.Module):
    """Period discriminator: the waveform folded into (samples/period, period), 2-d convs over the first axis."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.period = period
        c = [_scaled(n, width) for n in (32, 128, 512, 1024, 1024)]
        pad = (get_padding(kernel_size, 1), 0)
        ins = [1, *c[:-1]]
        strides = [stride, stride, stride, stride, 1]
        self.convs = nn.ModuleList(
            WNConv2d(i, o, (kernel_size, 1), (s, 1), padding=pad) for i, o, s in zip(ins, c, strides))
        self.conv_post = WNConv2d(c[-1], 1, (3, 1), 1, padding=(1, 0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, channels, time = x.shape
        if time % self.period:
            pad = self.period - time % self.period
            x = F.pad(x, (0, pad), "reflect")
            time += pad
        x = x.view(batch, channels, time // self.period, self.period)
        return _conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """RVC's MultiPeriodDiscriminator (v1) / MultiPeriodDiscriminatorV2 (v2).

    `size` "full" is RVC's (loads f0D*.pth); "light"/"tiny" narrow every layer (see SynthConfig presets);
    `width` overrides the multiplier.
    """

    def __init__(self, version: str = "v2", size: str = "full", width: float | None = None) -> None:
        super().__init__()
        if version not in PERIODS:
            raise ConfigError(f"Unknown discriminator version {version!r}; choose one of {sorted(PERIODS)}.")
        if width is None:
            width = discriminator_width(size)
        self.version = version
        self.width = width
        self.discriminators = nn.ModuleList(
            [DiscriminatorS(width), *(DiscriminatorP(p, width=width) for p in PERIODS[version])])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor):
        """Real y and generated y_hat (batch, 1, samples) -> (y_d_rs, y_d_gs, fmap_rs, fmap_gs), one entry per
        discriminator. Both go through each discriminator as one batch (same result, faster)."""
        batch = y.shape[0]
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = [], [], [], []
        both = torch.cat([y, y_hat.to(y.dtype)], dim=0)
        for disc in self.discriminators:
            scores, fmap = disc(both)
            y_d_rs.append(scores[:batch])
            y_d_gs.append(scores[batch:])
            fmap_rs.append([f[:batch] for f in fmap])
            fmap_gs.append([f[batch:] for f in fmap])
        return y_d_rs, y_d_gs, fmap_rs, fmap_gs


def discriminator_width(size: str) -> float:
    """Channel multiplier of the discriminator that goes with a synthesizer size preset."""
    if size not in DISCRIMINATOR_WIDTHS:
        raise ConfigError(f"Unknown model size {size!r}; choose one of {sorted(DISCRIMINATOR_WIDTHS)}.")
    return DISCRIMINATOR_WIDTHS[size]
