"""Building blocks: the WaveNet stack (posterior encoder, flow), HiFi-GAN residual blocks, coupling layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voiceapp.nets.commons import LRELU_SLOPE, WNConv1d, fused_add_tanh_sigmoid_multiply, get_padding


class WN(nn.Module):
    """Non-causal gated WaveNet: `in_layers.N`, `res_skip_layers.N`, one shared `cond_layer` for the speaker."""

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, p_dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            self.cond_layer = WNConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate ** i
            self.in_layers.append(WNConv1d(hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation,
                                           padding=get_padding(kernel_size, dilation)))
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WNConv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, hidden, time), x_mask (batch, 1, time), g (batch, gin, 1) -> (batch, hidden, time)."""
        hidden = self.hidden_channels
        output = torch.zeros_like(x)
        cond = self.cond_layer(g) if g is not None else None
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)
            g_l = cond[:, 2 * hidden * i: 2 * hidden * (i + 1)] if cond is not None else torch.zeros_like(x_in)
            acts = self.drop(fused_add_tanh_sigmoid_multiply(x_in, g_l, hidden))
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :hidden]) * x_mask
                output = output + res_skip[:, hidden:]
            else:
                output = output + res_skip
        return output * x_mask


class ResBlock1(nn.Module):
    """HiFi-GAN ResBlock1: per dilation, lrelu -> dilated conv (`convs1.N`) -> lrelu -> conv (`convs2.N`) + skip."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d))
            for d in dilation)
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, 1)) for _ in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            xt = conv1(F.leaky_relu(x, LRELU_SLOPE))
            x = x + conv2(F.leaky_relu(xt, LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN ResBlock2 (config resblock "2"): lrelu -> dilated conv (`convs.N`) + skip."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d))
            for d in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a WaveNet of the first half."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half, 1)
        nn.init.zeros_(self.post.weight)  # starts as the identity map
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half, self.half], dim=1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        mean = self.post(h) * x_mask
        x1 = (x1 - mean) * x_mask if reverse else mean + x1 * x_mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    """Reverse the channel order (no parameters), so the next coupling layer transforms the other half."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return torch.flip(x, [1])
