"""CPU speed-ups for conversion that keep the output within the model's own noise (bench/infer.py measures it).

- `bf16`: the HiFi-GAN decoder (about 90% of the synthesis time) runs with bfloat16 weights and activations,
  which oneDNN executes with AMX/AVX-512-BF16 on CPUs that have them; the prior, flow and pitch source stay
  float32. The difference to float32 is smaller than the difference between two noise seeds.
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


def _bf16_decoder(dec: Any) -> Any:
    import torch

    class Bf16Decoder(torch.nn.Module):
        """Runs `dec` in bfloat16: the latent and speaker embedding go in as bf16, audio comes out as float32."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner.to(torch.bfloat16)

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
