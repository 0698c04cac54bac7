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

With `ort` the decoder's conv stack runs in float32 in ONNX Runtime instead (onnx_decoder.py: the graph exported
once per model and cached on disk), 1.35-1.45x faster than the channels-last PyTorch decoder with the same
numbers (within 1e-6). `auto` picks bf16 where fast bf16 exists, ort on AVX2/AVX-512 CPUs without it (where it
was measured faster), else PyTorch float32; `int8` is opt-in.

On CUDA the model runs as loaded (float32).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from voiceapp.infer.tiles import (TILE_CONTEXT, TILE_FRAMES, conv_weight, convs_to_2d, decoder_tiles, deliver,
                                  join_tiles, submit_tiles)

log = logging.getLogger(__name__)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX-512 BF16 (where bfloat16 convolutions are faster than float32)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_isa() -> str:
    """The CPU's instruction-set class for conversion speed: "AMX", "AVX-512 BF16", "AVX-512", "AVX2" or "older"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = set(handle.read().split())
    except OSError:
        return "unknown"
    for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "older"


# CPU classes without fast bf16 on which the float32 ONNX Runtime decoder was measured faster than PyTorch's
# channels-last one: AVX2 (2-core EPYC, issue #17's profile: 0.93 vs 1.33 s per s of audio on the conv stack) and
# AVX-512 kernels on both sides (EPYC Zen 4 or later, bench/decoder_cpu.py: 1.07 vs 1.46 CPU s). Older CPUs were
# not measured: PyTorch float32 there.
ORT_FASTER_ON = ("AVX2", "AVX-512")
PRECISIONS = ("fp32", "bf16", "ort", "int8")


def resolve_precision(precision: str, device: str) -> str:
    """"auto" -> "bf16" on a CPU with fast bfloat16 (AMX / AVX-512 BF16), "ort" (float32 in ONNX Runtime) on an
    AVX2 or AVX-512 CPU without it, else "fp32"; explicit values are kept. Whether ONNX Runtime is installed is
    checked when the decoder is built (`for_precision`: one line, then PyTorch float32).

    "int8" (ONNX Runtime, onnx_decoder.py) is never chosen by "auto": on the full v2 model it is 1.24x faster than
    float32 here but moves the sound further than another noise seed (log-mel L1 0.45 vs 0.30, bench/infer.py
    --quality), so it is the user's choice (`--precision int8`).
    """
    if precision != "auto":
        return precision
    if device != "cpu":
        return "fp32"
    if cpu_has_fast_bf16():
        return "bf16"
    return "ort" if cpu_isa() in ORT_FASTER_ON else "fp32"


def channels_last_decoder(dec: Any, dtype: Any, tile_frames: int = TILE_FRAMES, context: int = TILE_CONTEXT) -> Any:
    """A copy of the HiFi-GAN decoder `dec` (NSF or plain) that computes in `dtype` with channels-last 2-D
    convolutions on fixed-size tiles (`decoder_tiles`); same call signature as `dec`, float32 audio out.

    Because the tiles' context covers the decoder's receptive field (~12 frames), the result equals decoding the
    whole input except within `context` frames of its two ends (where the zero padding differs; the pipeline
    crops more than that there). Fixed shapes let oneDNN reuse its kernels (building them costs ~0.5 s per second
    of a new input length with AMX), and small tiles stay in the cache.
    """
    import torch

    class ChannelsLastDecoder(torch.nn.Module):
        tiles_in_threads = True  # its tiles may be decoded in worker threads (tiles.submit_tiles)

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            inner = convs_to_2d(copy.deepcopy(inner)).to(dtype=dtype, memory_format=torch.channels_last)
            self.nsf = hasattr(inner, "m_source")
            if self.nsf:
                inner.m_source.float()
            self.inner = inner.eval()
            self.upsample = inner.upsample

        def _4d(self, x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(2).to(dtype).contiguous(memory_format=torch.channels_last)

        def forward(self, x: torch.Tensor, f0_hz: torch.Tensor | None = None, g: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
            frames, tiles = decoder_tiles(self.inner, x, f0_hz, g, generator, tile_frames, context)
            g4 = g.unsqueeze(2).to(dtype) if g is not None else None

            def decode(tile: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
                latent, source = tile
                if self.nsf:
                    return self.inner.filter(self._4d(latent), self._4d(source), g4).squeeze(2)
                return self.inner(self._4d(latent), g=g4).squeeze(2)

            collect = submit_tiles(decode, tiles)
            return deliver(lambda: join_tiles(collect(), frames, self.upsample, context),
                           (x.shape[0], 1, frames * self.upsample))

    return ChannelsLastDecoder(dec)


def for_precision(voice: Any, precision: str, int8_graph: Any = None, fp32_graph: Any = None) -> Any:
    """A copy of `voice` whose decoder runs faster on the CPU in `precision`: "fp32" or "bf16" (channels-last
    PyTorch), "ort" (float32 in ONNX Runtime; `fp32_graph(dec)` returns the cached graph's path) or "int8"
    (ONNX Runtime; `int8_graph(dec)` likewise, see onnx_decoder.py); `voice` itself on other devices with "fp32".
    The original is untouched. When an ONNX Runtime decoder cannot be had (no runtime, an export that fails,
    for int8 a model without pitch) one line says why and the PyTorch float32 decoder is used."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    device = next(voice.net.parameters()).device
    dec = getattr(voice.net, "dec", None)
    if not isinstance(dec, torch.nn.Module) or (device.type != "cpu" and precision in ("fp32", "int8", "ort")):
        return voice
    fast = copy.copy(voice)
    fast.net = copy.copy(voice.net)  # shares enc_p, flow, emb_g with `voice`; only the decoder is new
    fast.net._modules = dict(voice.net._modules)
    if precision in ("int8", "ort"):
        decoder = ort_decoder(voice, dec, int8_graph if precision == "int8" else fp32_graph, precision)
        if decoder is not None:
            fast.net.dec = decoder
            return fast
        precision = "fp32"
    fast.net.dec = channels_last_decoder(dec, torch.bfloat16 if precision == "bf16" else torch.float32)
    log.info("decoder of %s: channels-last %s", getattr(voice, "path", "?"), precision)
    return fast


def ort_decoder(voice: Any, dec: Any, graph: Any, precision: str = "int8") -> Any:
    """The ONNX Runtime decoder of `voice` in `precision` ("int8" or "ort" = float32), or None after logging one
    line that says why not. `graph(dec)` gives the path of the cached graph (building it when missing)."""
    import torch

    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.tiles import ORT_TILE_FRAMES

    name = getattr(getattr(voice, "path", None), "name", None) or str(getattr(voice, "path", "?"))
    what = "int8 decoder" if precision == "int8" else "float32 ONNX Runtime decoder"
    reason = onnx_decoder.missing_runtime()
    if reason is None and precision == "int8" and not hasattr(dec, "m_source"):
        reason = "the model has no pitch guidance (the int8 decoder covers pitch models)"
    if reason is None and graph is None:
        reason = "no workspace to keep its graph in"
    if reason is None:
        try:
            path = graph(dec)
            if precision == "int8":
                decoder = onnx_decoder.OrtDecoder(dec, path, torch.get_num_threads())
            else:
                decoder = onnx_decoder.OrtDecoder(dec, path, torch.get_num_threads(), ORT_TILE_FRAMES, even=True)
            log.info("decoder of %s: %s (%s)", name, what, path.name)
            return decoder
        except Exception as err:  # noqa: BLE001 - any failure of export/quantization/runtime: float32 instead
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'failed'}"
    log.warning("%s unavailable for %s (%s); using the PyTorch float32 decoder", what, name, reason)
    return None


def int8_decoder(voice: Any, dec: Any, int8_graph: Any) -> Any:
    """The ONNX Runtime int8 decoder of `voice`, or None after logging one line that says why not."""
    return ort_decoder(voice, dec, int8_graph, "int8")
