"""HiFi-GAN decoders: the NSF one (sine excitation from f0, for pitch models) and the plain one (no-f0 models).

Names follow RVC: `m_source.l_linear`, `noise_convs.N`, `ups.N` (weight-normed transposed convs),
`resblocks.N` (len(upsample_rates) x len(resblock_kernel_sizes)), `conv_pre`, `conv_post` (no bias), `cond`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from voiceapp.nets.commons import LRELU_SLOPE, WNConvTranspose1d, randn
from voiceapp.nets.modules import ResBlock1, ResBlock2


def sine_excitation(f0_hz: torch.Tensor, upsample: int, sample_rate: int, sine_amp: float = 0.1,
                    noise_std: float = 0.003, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frame-rate f0 (batch, frames) in Hz (0 = unvoiced) -> (batch, frames*upsample, 1) sine source.

    Within a frame the phase advances by f0/sample_rate per sample; the phase at each frame start is carried
    in float64 so long inputs stay precise. Voiced samples: sine_amp*sin + N(0, noise_std); unvoiced samples:
    noise of std sine_amp/3 (RVC's SineGen with harmonic_num=0, voiced threshold 0).
    """
    with torch.no_grad():
        f0 = f0_hz.float()
        step = (f0 / sample_rate) % 1.0  # phase increment per sample, (batch, frames)
        frame_advance = (step.double() * upsample).cumsum(dim=1) % 1.0
        frame_start = torch.cat([torch.zeros_like(frame_advance[:, :1]), frame_advance[:, :-1]], dim=1).float()
        ramp = torch.arange(1, upsample + 1, device=f0.device, dtype=f0.dtype)
        phase = frame_start.unsqueeze(-1) + step.unsqueeze(-1) * ramp  # (batch, frames, upsample)
        sine = sine_amp * torch.sin(2 * math.pi * phase).flatten(1)
        voiced = (f0 > 0).float().repeat_interleave(upsample, dim=1)
        noise_amp = voiced * noise_std + (1 - voiced) * (sine_amp / 3)
        noise = randn(sine.shape, sine, generator)
        return (sine * voiced + noise_amp * noise).unsqueeze(-1)


class SourceModuleHnNSF(nn.Module):
    """Sine source merged by `l_linear` (1 harmonic -> 1) and tanh."""

    def __init__(self, sample_rate: int, harmonic_num: int = 0, sine_amp: float = 0.1, noise_std: float = 0.003):
        super().__init__()
        if harmonic_num != 0:
            raise ValueError("only harmonic_num=0 (RVC's setting) is implemented")
        self.sample_rate = sample_rate
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0_hz: torch.Tensor, upsample: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch, frames) Hz -> (batch, 1, frames*upsample)."""
        sine = sine_excitation(f0_hz, upsample, self.sample_rate, self.sine_amp, self.noise_std, generator)
        merged = torch.tanh(self.l_linear(sine.to(self.l_linear.weight.dtype)))
        return merged.transpose(1, 2)


class Generator(nn.Module):
    """HiFi-GAN generator: conv_pre (+cond(g)) -> [lrelu -> ups.i -> mean of resblocks] x n -> conv_post -> tanh."""

    def __init__(self, initial_channel: int, resblock: str, resblock_kernel_sizes: list[int],
                 resblock_dilation_sizes: list[list[int]], upsample_rates: list[int], upsample_initial_channel: int,
                 upsample_kernel_sizes: list[int], gin_channels: int = 0) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upsample = math.prod(upsample_rates)
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            channels = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(WNConvTranspose1d(upsample_initial_channel // (2 ** i), channels, kernel, rate,
                                              padding=(kernel - rate) // 2))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(channels, k, tuple(d)))
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def _stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
        return sum(block(x) for block in blocks) / self.num_kernels

    def _head(self, x: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x = self.conv_pre(x)
        return x + self.cond(g) if g is not None else x

    @staticmethod
    def _tail(conv_post: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(conv_post(F.leaky_relu(x)))  # default slope 0.01 here, as in HiFi-GAN

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, inter, frames), g (batch, gin, 1) -> (batch, 1, frames*hop)."""
        x = self._head(x, g)
        for i, up in enumerate(self.ups):
            x = self._stage(i, up(F.leaky_relu(x, LRELU_SLOPE)))
        return self._tail(self.conv_post, x)


class GeneratorNSF(Generator):
    """Neural-source-filter HiFi-GAN: after each upsampling the sine source, downsampled by `noise_convs.i`, is added."""

    def __init__(self, initial_channel: int, resblock: str, resblock_kernel_sizes: list[int],
                 resblock_dilation_sizes: list[list[int]], upsample_rates: list[int], upsample_initial_channel: int,
                 upsample_kernel_sizes: list[int], gin_channels: int, sample_rate: int) -> None:
        super().__init__(initial_channel, resblock, resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates,
                         upsample_initial_channel, upsample_kernel_sizes, gin_channels)
        self.m_source = SourceModuleHnNSF(sample_rate)
        self.noise_convs = nn.ModuleList()
        for i in range(len(upsample_rates)):
            channels = upsample_initial_channel // (2 ** (i + 1))
            if i + 1 < len(upsample_rates):
                stride = math.prod(upsample_rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(1, channels, kernel_size=stride * 2, stride=stride,
                                                  padding=stride // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, channels, kernel_size=1))

    def forward(self, x: torch.Tensor, f0_hz: torch.Tensor, g: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x (batch, inter, frames), f0_hz (batch, frames), g (batch, gin, 1) -> (batch, 1, frames*hop)."""
        return self.filter(x, self.m_source(f0_hz, self.upsample, generator), g)

    def filter(self, x: torch.Tensor, source: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """The conv stack given the source (batch, 1, frames*hop): the decoder after `m_source`."""
        x = self._head(x, g)
        for i, (up, noise_conv) in enumerate(zip(self.ups, self.noise_convs)):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = self._stage(i, x + noise_conv(source))
        return self._tail(self.conv_post, x)
