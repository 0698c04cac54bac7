"""The `quick` voice engine's network: matched content + matched frames + pitch -> the target's coded WORLD frames.

A stack of dilated residual 1-D convolutions at the content rate (50 frames/s) that corrects, for each content
frame, the average of its k nearest target frames (what the instant engine outputs) into the two 10 ms
acoustic frames the target would have said there (spectral-envelope code and band aperiodicity): the output is
the matched average plus a learned residual, so an untrained network already sounds like `instant`. Small
enough to train on the target alone in CPU minutes and to run far faster than real time; ±0.6 s of context.
Inputs and outputs are normalised with statistics of the target stored as buffers, so the module alone
(with `QuickConfig`) is the whole model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

FRAMES_PER_CONTENT = 2       # 100 Hz acoustic frames per 50 Hz content frame
PITCH_CHANNELS = 2 * FRAMES_PER_CONTENT   # per acoustic frame: log(f0 / target median) (0 unvoiced), voiced


@dataclass(frozen=True)
class QuickConfig:
    content_dim: int = 384
    sp_dims: int = 60
    ap_dims: int = 1
    hidden: int = 256
    blocks: int = 8
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4)   # cycled over the blocks
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))

    @classmethod
    def tiny(cls, content_dim: int = 16, sp_dims: int = 60, ap_dims: int = 1) -> "QuickConfig":
        return cls(content_dim=content_dim, sp_dims=sp_dims, ap_dims=ap_dims, hidden=16, blocks=2, kernel=3)

    @property
    def out_dims(self) -> int:
        return self.sp_dims + self.ap_dims

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "dilations": list(self.dilations)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "QuickConfig":
        types = {"dilations": tuple, "dropout": float}
        return cls(**{k: types.get(k, int)(v) for k, v in data.items()})


class _Block(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.drop(self.act(self.conv(x))))


class QuickNet(nn.Module):
    def __init__(self, cfg: QuickConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("content_mean", torch.zeros(cfg.content_dim))
        self.register_buffer("content_std", torch.ones(cfg.content_dim))
        self.register_buffer("out_mean", torch.zeros(cfg.out_dims))
        self.register_buffer("out_std", torch.ones(cfg.out_dims))
        frames = cfg.out_dims * FRAMES_PER_CONTENT
        self.inp = nn.Conv1d(cfg.content_dim + PITCH_CHANNELS + frames, cfg.hidden, 3, padding=1)
        self.body = nn.Sequential(*[_Block(cfg.hidden, cfg.kernel, cfg.dilations[i % len(cfg.dilations)], cfg.dropout)
                                    for i in range(cfg.blocks)])
        self.out = nn.Conv1d(cfg.hidden, frames, 1)
        nn.init.zeros_(self.out.weight)   # starts as the matched average (the instant engine's output)
        nn.init.zeros_(self.out.bias)

    def set_statistics(self, content: torch.Tensor, outputs: torch.Tensor) -> None:
        """Normalisation from the target's frames: content (n, content_dim), outputs (m, out_dims)."""
        self.content_mean.copy_(content.mean(0))
        self.content_std.copy_(content.std(0).clamp_min(1e-4))
        self.out_mean.copy_(outputs.mean(0))
        self.out_std.copy_(outputs.std(0).clamp_min(1e-4))

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.out_mean) / self.out_std

    def forward_normalized(self, content: torch.Tensor, pitch: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
        """content (B, T, content_dim) raw, pitch (B, T, PITCH_CHANNELS), matched (B, T, 2, out_dims) coded frames
        -> normalised (B, T, 2, out_dims)."""
        b, t = content.shape[:2]
        base = self.normalize(matched)
        x = torch.cat([(content - self.content_mean) / self.content_std, pitch, base.reshape(b, t, -1)], dim=-1)
        x = self.out(self.body(self.inp(x.transpose(1, 2))))           # (B, 2 * out_dims, T)
        return base + x.transpose(1, 2).reshape(b, t, FRAMES_PER_CONTENT, self.cfg.out_dims)

    def forward(self, content: torch.Tensor, pitch: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
        """(B, T, 2, out_dims) coded frames in their own units (sp code, then ap code)."""
        return self.forward_normalized(content, pitch, matched) * self.out_std + self.out_mean

    def forward_span(self, content: torch.Tensor, pitch: torch.Tensor, matched: torch.Tensor, start: int,
                     stop: int) -> torch.Tensor:
        """`forward(...)[:, start:stop]`, each layer computed only on the frames those outputs depend on (a live
        block needs a few frames but feeds ±0.7 s of context: about half the work of the whole window). The same
        numbers: the zero padding at the sequence's own edges is kept, crops are not padded."""
        b, t = content.shape[:2]
        start, stop = max(0, int(start)), min(t, int(stop))
        base = self.normalize(matched)
        x = torch.cat([(content - self.content_mean) / self.content_std, pitch, base.reshape(b, t, -1)], dim=-1)
        x = x.transpose(1, 2)                                                            # (B, C, T)
        reaches = [_reach(block.conv) for block in self.body]
        spans = [(start, stop)]                                   # frames each block must output, last first
        for reach in reversed(reaches[1:]):
            lo, hi = spans[0]
            spans.insert(0, (max(0, lo - reach), min(t, hi + reach)))
        first_lo, first_hi = spans[0]
        lo, hi = max(0, first_lo - reaches[0]), min(t, first_hi + reaches[0])   # what the input conv outputs
        a, z = max(0, lo - _reach(self.inp)), min(t, hi + _reach(self.inp))
        h = _conv_span(self.inp, x[:, :, a:z], a, z, lo, hi)
        for block, (out_lo, out_hi) in zip(self.body, spans):
            y = block.mix(block.drop(block.act(_conv_span(block.conv, h, lo, hi, out_lo, out_hi))))
            h, lo, hi = h[:, :, out_lo - lo:out_hi - lo] + y, out_lo, out_hi
        h = self.out(h)
        frames = base[:, start:stop] + h.transpose(1, 2).reshape(b, stop - start, FRAMES_PER_CONTENT,
                                                                 self.cfg.out_dims)
        return frames * self.out_std + self.out_mean


def _reach(conv: nn.Conv1d) -> int:
    """Frames each side an output frame of a 'same'-padded conv reads."""
    return conv.dilation[0] * (conv.kernel_size[0] - 1) // 2


def _conv_span(conv: nn.Conv1d, x: torch.Tensor, a: int, z: int, lo: int, hi: int) -> torch.Tensor:
    """`conv` (zero 'same' padding over the whole sequence) at frames [lo, hi), from its input at frames [a, z):
    zeros are added only where the span reaches past the sequence (a crop inside it already holds the frames)."""
    import torch.nn.functional as F

    reach = _reach(conv)
    x = F.pad(x, (reach - (lo - a), reach - (z - hi)))
    return F.conv1d(x, conv.weight, conv.bias, dilation=conv.dilation)


def pitch_features(f0_hz: torch.Tensor, median_f0_hz: float) -> torch.Tensor:
    """(..., T, 2) f0 in Hz per acoustic frame -> (..., T, PITCH_CHANNELS) network pitch input."""
    voiced = (f0_hz > 0).to(torch.float32)
    log_ratio = torch.log(f0_hz.clamp_min(1.0) / max(float(median_f0_hz), 1.0)) * voiced
    return torch.stack([log_ratio, voiced], dim=-1).flatten(-2)
