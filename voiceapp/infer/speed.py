"""CPU speed-ups for conversion that keep the output within the model's own noise (bench/infer.py measures it).

The HiFi-GAN decoder is ~95% of the synthesis time. On the CPU we run a copy of it in which

- weight norm is fused (the product `g * v / |v|` computed once, not on every call);
- every 1-D conv is the equivalent (1, k) 2-D conv on (batch, channels, 1, time) tensors kept in channels-last
  memory: oneDNN then runs the convolutions without reordering the activations before and after each one
  (in float32 the same numbers within 1e-6, ~1.4x faster on the decoder);
- with `bf16` the weights and activations are bfloat16, which oneDNN runs on AMX/AVX-512 BF16 units
  (~4-5x faster than float32 on CPUs that have them). The prior, flow and pitch source stay float32, and
  so does the content encoder. The change of the output (log-mel) is smaller than the change from another
  noise seed (tests/test_infer_convert.py).

On CUDA the model runs as loaded (float32).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

log = logging.getLogger(__name__)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX-512 BF16 (where bfloat16 convolutions are faster than float32)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _conv_weight(conv: Any) -> Any:
    """The weight a conv uses: the fused product for weight-normed convs, else `.weight`."""
    return conv.normed_weight() if hasattr(conv, "normed_weight") else conv.weight


def convs_to_2d(module: Any) -> Any:
    """Replace every Conv1d/ConvTranspose1d under `module` (weight-normed or not) by the equivalent 2-D conv
    with a (1, k) kernel holding the (fused) weight, in place. The module then takes (batch, C, 1, time)."""
    import torch
    from torch import nn

    for name, child in list(module.named_children()):
        if not isinstance(child, (nn.Conv1d, nn.ConvTranspose1d)):
            convs_to_2d(child)
            continue
        args = dict(in_channels=child.in_channels, out_channels=child.out_channels,
                    kernel_size=(1, child.kernel_size[0]), stride=(1, child.stride[0]),
                    padding=(0, child.padding[0]), dilation=(1, child.dilation[0]), groups=child.groups,
                    bias=child.bias is not None)
        if isinstance(child, nn.ConvTranspose1d):
            plain = nn.ConvTranspose2d(output_padding=(0, child.output_padding[0]), **args)
        else:
            plain = nn.Conv2d(**args)
        weight = _conv_weight(child)
        with torch.no_grad():
            plain.weight.copy_(weight.unsqueeze(2))
            if child.bias is not None:
                plain.bias.copy_(child.bias)
        setattr(module, name, plain.to(weight.device))
    return module


def resolve_precision(precision: str, device: str) -> str:
    """"auto" -> "bf16" on a CPU with fast bfloat16, else "fp32"; explicit values are kept."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cpu" and cpu_has_fast_bf16() else "fp32"


TILE_FRAMES = 200    # the decoder runs on tiles of this many frames (2 s) ...
TILE_CONTEXT = 16    # ... plus this many frames of context per side (its receptive field is ~12 frames)
TILE_BUCKET = 50     # shorter inputs: one tile rounded up to this many frames


def channels_last_decoder(dec: Any, dtype: Any, tile_frames: int = TILE_FRAMES, context: int = TILE_CONTEXT) -> Any:
    """A copy of the HiFi-GAN decoder `dec` (NSF or plain) that computes in `dtype` with channels-last 2-D
    convolutions on fixed-size tiles; same call signature as `dec`, float32 audio out.

    Tiles: the latent is cut into tiles of `tile_frames` plus `context` frames of borrowed context on each side
    (zeros beyond the ends), each tile is decoded and its centre kept. Because the context covers the decoder's
    receptive field, the result equals decoding the whole input except within `context` frames of its two ends
    (where the zero padding differs; the pipeline crops more than that there). The NSF source is computed once
    for the whole input (phase and seeded noise as without tiles) and cut the same way. Fixed shapes let oneDNN
    reuse its kernels (building them costs ~0.5 s per second of a new input length with AMX), and small tiles
    stay in the cache.
    """
    import torch
    import torch.nn.functional as F

    class ChannelsLastDecoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            inner = convs_to_2d(copy.deepcopy(inner)).to(dtype=dtype, memory_format=torch.channels_last)
            self.nsf = hasattr(inner, "m_source")
            if self.nsf:
                inner.m_source.float()
            self.inner = inner.eval()

        def _4d(self, x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(2).to(dtype).contiguous(memory_format=torch.channels_last)

        def forward(self, x: torch.Tensor, f0_hz: torch.Tensor | None = None, g: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
            hop, frames = self.inner.upsample, x.shape[-1]
            core = min(tile_frames, -(-frames // TILE_BUCKET) * TILE_BUCKET)
            tiles = -(-frames // core)
            extra = tiles * core - frames
            x = F.pad(x, (context, extra + context))
            source = None
            if self.nsf:
                source = self.inner.m_source(f0_hz, hop, generator)  # (batch, 1, frames*hop), float32
                source = F.pad(source, (context * hop, (extra + context) * hop))
            g = g.unsqueeze(2).to(dtype) if g is not None else None
            out = []
            for i in range(tiles):
                a, b = i * core, (i + 1) * core + 2 * context
                if self.nsf:
                    y = self.inner.filter(self._4d(x[..., a:b]), self._4d(source[..., a * hop:b * hop]), g)
                else:
                    y = self.inner(self._4d(x[..., a:b]), g=g)
                out.append(y[..., context * hop:(context + core) * hop].float())
            return torch.cat(out, dim=-1)[..., :frames * hop].squeeze(2)

    return ChannelsLastDecoder(dec)


def for_precision(voice: Any, precision: str) -> Any:
    """A copy of `voice` whose decoder runs channels-last in `precision` ("fp32" or "bf16") on the CPU;
    `voice` itself on other devices with "fp32". The original is untouched."""
    import torch

    if precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}")
    device = next(voice.net.parameters()).device
    if not isinstance(getattr(voice.net, "dec", None), torch.nn.Module) or (device.type != "cpu" and precision == "fp32"):
        return voice
    fast = copy.copy(voice)
    fast.net = copy.copy(voice.net)  # shares enc_p, flow, emb_g with `voice`; only the decoder is new
    fast.net._modules = dict(voice.net._modules)
    fast.net.dec = channels_last_decoder(voice.net.dec, torch.bfloat16 if precision == "bf16" else torch.float32)
    log.info("decoder of %s: channels-last %s", getattr(voice, "path", "?"), precision)
    return fast
