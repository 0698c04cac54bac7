"""Small helpers shared by the synthesizer and discriminator: masks, segment slicing, weight-normed convs.

Weight norm: RVC files store every weight-normed conv as `<name>.weight_g` (magnitude, one value per output
channel; per *input* channel for transposed convs, PyTorch's dim 0) and `<name>.weight_v` (direction, full weight
shape). The convs below hold exactly these two parameters, so `state_dict()` has RVC's names with no key
rewriting, and `named_parameters()` agrees with the file. Applio keeps the same tensors under
`<name>.parametrizations.weight.original0/1` (torch's newer parametrization API); `_load_from_state_dict`
accepts that spelling too, and `to_rvc_keys` rewrites a whole state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1
_PARAM_G = ".parametrizations.weight.original0"
_PARAM_V = ".parametrizations.weight.original1"


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with dilation."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """(batch,) lengths -> (batch, max_length) bool mask, True inside each sequence."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Cut `length` steps from the last axis of x (batch, ..., time), starting at starts[b] for row b."""
    offsets = starts.to(x.device).long().view(-1, *([1] * (x.dim() - 1))) + torch.arange(length, device=x.device)
    index = offsets.expand(*x.shape[:-1], length)
    return torch.gather(x, -1, index)


def rand_slice_segments(x: torch.Tensor, lengths: torch.Tensor | None, length: int,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random `length`-step window per row of x (batch, channels, time) inside each row's valid length.

    Returns (slices (batch, channels, length), start frames (batch,) long). Rows shorter than `length`
    start at 0 (the caller filters clips shorter than the segment; the slice then reads padding).
    """
    batch, _, time = x.shape
    if lengths is None:
        lengths = torch.full((batch,), time, device=x.device)
    max_start = (lengths.to(x.device) - length + 1).clamp(min=1)
    if time < length:
        raise ValueError(f"sequence of {time} frames is shorter than the training segment of {length} frames")
    rand = torch.rand(batch, generator=generator, device="cpu" if generator is None else generator.device)
    starts = (rand.to(x.device) * max_start).long().clamp(max=time - length)
    return slice_segments(x, starts, length), starts


def randn(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped `shape` on like's device/dtype, drawn from `generator` (any device) if given."""
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    noise = torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return noise.to(like.device)


def fused_add_tanh_sigmoid_multiply(a: torch.Tensor, b: torch.Tensor, n_channels: int) -> torch.Tensor:
    """WaveNet gate: tanh(first half of a+b) * sigmoid(second half)."""
    total = a + b
    return torch.tanh(total[:, :n_channels]) * torch.sigmoid(total[:, n_channels:])


def to_rvc_keys(state_dict: dict) -> dict:
    """Rename `parametrizations.weight.original0/1` keys (Applio, in-memory) to `weight_g/weight_v` (files)."""
    out = {}
    for key, value in state_dict.items():
        if key.endswith(_PARAM_G):
            key = key[: -len(_PARAM_G)] + ".weight_g"
        elif key.endswith(_PARAM_V):
            key = key[: -len(_PARAM_V)] + ".weight_v"
        out[key] = value
    return out


class _WeightNorm:
    """Mixin: replace the module's `weight` parameter by `weight_g` * `weight_v` / |weight_v|."""

    def _init_weight_norm(self) -> None:
        weight = self.weight.detach()
        del self.weight
        self.weight_v = nn.Parameter(weight.clone())
        self.weight_g = nn.Parameter(self._norm(weight))

    @staticmethod
    def _norm(v: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)

    def normed_weight(self) -> torch.Tensor:
        return torch._weight_norm(self.weight_v, self.weight_g, 0)  # fused g * v / |v| (torch's weight_norm kernel)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001 - torch hook signature
        for new, old in (("weight_g", _PARAM_G), ("weight_v", _PARAM_V)):
            old_key = prefix + old[1:]
            if old_key in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(old_key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class WNConv1d(_WeightNorm, nn.Conv1d):
    """Conv1d with weight norm stored as weight_g (out, 1, 1) / weight_v (out, in/groups, k)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normed_weight(), self.bias)


class WNConv2d(_WeightNorm, nn.Conv2d):
    """Conv2d with weight norm stored as weight_g (out, 1, 1, 1) / weight_v."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normed_weight(), self.bias)


class WNConvTranspose1d(_WeightNorm, nn.ConvTranspose1d):
    """ConvTranspose1d with weight norm over dim 0 (input channels): weight_g (in, 1, 1), weight_v (in, out, k)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.normed_weight(), self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)
