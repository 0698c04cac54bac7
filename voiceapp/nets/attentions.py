"""The text (content) encoder's transformer: relative-position multi-head self-attention + conv FFN.

Parameter names follow RVC (VITS): `attn_layers.N.conv_{q,k,v,o}`, `attn_layers.N.emb_rel_{k,v}`
(shape (1, 2*window+1, channels/heads), shared by all heads), `norm_layers_{1,2}.N.{gamma,beta}`,
`ffn_layers.N.conv_{1,2}`. Relative positions farther than `window_size` contribute nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of (batch, channels, time), parameters named gamma/beta."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


def _band_index(length: int, window: int, device: torch.device) -> torch.Tensor:
    """(length, 2*window+1) index i + r into a row padded by `window` on both sides: column r <-> offset r - window."""
    return torch.arange(length, device=device).unsqueeze(1) + torch.arange(2 * window + 1, device=device)


class MultiHeadAttention(nn.Module):
    """Self-attention with learned relative-position embeddings for keys and values (window +-window_size)."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0,
                 window_size: int = 10) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        std = self.k_channels ** -0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x (batch, channels, time), attn_mask (batch, 1, time, time) -> (batch, out_channels, time)."""
        batch, channels, time = x.shape
        heads, width, window = self.n_heads, self.k_channels, self.window_size

        def split_heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, heads, width, time).transpose(2, 3)  # (batch, heads, time, width)

        q = split_heads(self.conv_q(x)) / math.sqrt(width)
        k = split_heads(self.conv_k(x))
        v = split_heads(self.conv_v(x))
        scores = q @ k.transpose(-2, -1)  # (batch, heads, time, time)

        band = _band_index(time, window, x.device).expand(batch, heads, time, 2 * window + 1)
        rel_logits = q @ self.emb_rel_k[0].transpose(0, 1)  # (batch, heads, time, 2w+1): offset r - w
        padded = torch.zeros(batch, heads, time, time + 2 * window, dtype=scores.dtype, device=x.device)
        scores = scores + padded.scatter(-1, band, rel_logits)[..., window:window + time]

        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = self.drop(torch.softmax(scores, dim=-1))
        out = p_attn @ v  # (batch, heads, time, width)
        rel_weights = torch.gather(F.pad(p_attn, (window, window)), -1, band)  # (batch, heads, time, 2w+1)
        out = out + rel_weights @ self.emb_rel_v[0]
        out = out.transpose(2, 3).reshape(batch, channels, time)
        return self.conv_o(out)


class FFN(nn.Module):
    """Two 'same'-padded convs with ReLU, masked before each conv."""

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int,
                 p_dropout: float = 0.0) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = self.conv_1(F.pad(x * x_mask, self.pad))
        x = self.drop(torch.relu(x))
        x = self.conv_2(F.pad(x * x_mask, self.pad))
        return x * x_mask


class Encoder(nn.Module):
    """n_layers x (attention -> add & norm -> FFN -> add & norm), post-norm as in VITS."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int = 1, p_dropout: float = 0.0, window_size: int = 10) -> None:
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout,
                                                       window_size))
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout))
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """x (batch, hidden, time), x_mask (batch, 1, time)."""
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # (batch, 1, time, time)
        x = x * x_mask
        for attn, norm_1, ffn, norm_2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                              self.norm_layers_2):
            x = norm_1(x + self.drop(attn(x, attn_mask)))
            x = norm_2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask
