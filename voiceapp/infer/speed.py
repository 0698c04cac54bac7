"""CPU speed-ups for conversion that keep the output within the model's own noise (bench/infer.py measures it).

- `bf16`: the HiFi-GAN decoder (about 90% of the synthesis time) runs with fused weight norm and bfloat16
  weights and activations, which oneDNN executes with AMX/AVX-512-BF16 on CPUs that have them; the prior, flow
  and pitch source stay float32 (so does the content encoder: under bf16 autocast its per-length kernels made
  memory grow with the input length). The change of the output (log-mel) is smaller than the change from
  another noise seed (tests/test_infer_convert.py).
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


def fuse_weight_norm(module: Any) -> Any:
    """Replace every weight-normed conv (`weight_g`/`weight_v`) under `module` by a plain conv holding the
    product, in place: the same numbers, without recomputing the weight on every call. Returns `module`."""
    import torch
    from torch import nn

    for name, child in list(module.named_children()):
        if not (hasattr(child, "weight_g") and hasattr(child, "weight_v") and hasattr(child, "normed_weight")):
            fuse_weight_norm(child)
            continue
        kinds = (nn.ConvTranspose1d, nn.Conv1d, nn.Conv2d)
        kind = next(k for k in kinds if isinstance(child, k))
        args = dict(in_channels=child.in_channels, out_channels=child.out_channels, kernel_size=child.kernel_size,
                    stride=child.stride, padding=child.padding, dilation=child.dilation, groups=child.groups,
                    bias=child.bias is not None)
        if kind is nn.ConvTranspose1d:
            args["output_padding"] = child.output_padding
        plain = kind(**args)
        with torch.no_grad():
            plain.weight.copy_(child.normed_weight())
            if child.bias is not None:
                plain.bias.copy_(child.bias)
        setattr(module, name, plain.to(child.weight_v.device))
    return module


def resolve_precision(precision: str, device: str) -> str:
    """"auto" -> "bf16" on a CPU with fast bfloat16, else "fp32"; explicit values are kept."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cpu" and cpu_has_fast_bf16() else "fp32"


def _bf16_decoder(dec: Any) -> Any:
    import torch

    class Bf16Decoder(torch.nn.Module):
        """Runs `dec` in bfloat16: the latent and speaker embedding go in as bf16, audio comes out as float32."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = fuse_weight_norm(inner).to(torch.bfloat16)

        def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            if kwargs.get("g") is not None:
                kwargs["g"] = kwargs["g"].to(torch.bfloat16)
            return self.inner(x.to(torch.bfloat16), *args, **kwargs).float()

    return Bf16Decoder(dec)


def for_precision(voice: Any, precision: str) -> Any:
    """`voice` itself for "fp32"; for "bf16" a copy whose decoder runs in bfloat16 (the original is untouched)."""
    if precision == "fp32":
        return voice
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}")
    fast = copy.copy(voice)
    fast.net = copy.deepcopy(voice.net)
    fast.net.dec = _bf16_decoder(fast.net.dec)
    log.info("decoder of %s in bfloat16", getattr(voice, "path", "?"))
    return fast
