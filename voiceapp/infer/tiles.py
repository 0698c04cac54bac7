"""The CPU decoders' fixed-size tiles (speed.py's PyTorch ones and onnx_decoder.py's ONNX Runtime one), and the
worker threads a conversion may decode them in (`tiles_in`, `submit_tiles`, `decode_later`)."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass
class _Runner:
    pool: Any                         # an Executor whose threads decode one tile each, single-threaded
    cancel: Any                       # checked before each tile
    workers: int = 1                  # its thread count
    later: list[Callable[[], Any]] | None = None  # inside `decode_later`: where the decoders' results go


# Set while the calling thread converts with more than one worker (pieces.convert_overlapped). Per thread (a
# ContextVar), so two conversions in two threads never share one; the worker threads see None (no nesting).
_RUNNER: ContextVar[_Runner | None] = ContextVar("voiceapp_tile_runner", default=None)


@contextmanager
def tiles_in(pool: Any, cancel: Any, workers: int) -> Iterator[None]:
    """While inside, the CPU decoders called from this thread decode their tiles in `pool` (an Executor with
    `workers` threads that run one single-threaded tile each), checking `cancel` before each tile."""
    token = _RUNNER.set(_Runner(pool, cancel, workers))
    try:
        yield
    finally:
        _RUNNER.reset(token)


@contextmanager
def decode_later() -> Iterator[list[Callable[[], Any]]]:
    """Inside `tiles_in`: a CPU decoder called here draws its noise (the NSF source) and submits its tiles as
    usual, but returns at once with zeros of the audio's shape in place of the audio; the list given receives,
    per call, `finish()` -> the audio (waiting for its tiles). This thread can meanwhile prepare the next piece,
    drawing the generator in the serial order."""
    runner = _RUNNER.get()
    if runner is None:
        raise RuntimeError("decode_later() needs tiles_in()")
    later: list[Callable[[], Any]] = []
    token = _RUNNER.set(_Runner(runner.pool, runner.cancel, runner.workers, later))
    try:
        yield later
    finally:
        _RUNNER.reset(token)


def tile_workers() -> int:
    """The worker threads of `tiles_in` for this thread; 0 outside it."""
    runner = _RUNNER.get()
    return runner.workers if runner is not None else 0


def submit_tiles(decode: Callable[[Any], Any], tiles: list[Any]) -> Callable[[], list[Any]]:
    """`collect()` -> [decode(tile) for tile in tiles]: the tiles decoded in the worker threads of `tiles_in`
    when this thread has some (in inference mode there: grad mode is per thread), else here and now. The
    results are the same either way: each tile is decoded alone. `collect` raises the first failure once every
    tile has stopped (none keeps running after)."""
    runner = _RUNNER.get()
    if runner is None or (len(tiles) < 2 and runner.later is None):
        done = [decode(tile) for tile in tiles]
        return lambda: done
    from concurrent.futures import wait

    import torch

    cancel = runner.cancel

    def one(tile: Any) -> Any:
        cancel.raise_if_set()
        with torch.inference_mode():
            return decode(tile)

    futures = [runner.pool.submit(one, tile) for tile in tiles]

    def collect() -> list[Any]:
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()
            wait(futures)
    return collect


def deliver(finish: Callable[[], Any], shape: tuple[int, ...]) -> Any:
    """A decoder's result: `finish()` now, or inside `decode_later` zeros of `shape` now and `finish` queued."""
    runner = _RUNNER.get()
    if runner is None or runner.later is None:
        return finish()
    import torch

    runner.later.append(finish)
    return torch.zeros(shape)


def conv_weight(conv: Any) -> Any:
    """The weight a conv uses: the fused product for weight-normed convs, else `.weight`."""
    return conv.normed_weight() if hasattr(conv, "normed_weight") else conv.weight


TILE_FRAMES = 200    # the decoder runs on tiles of this many frames (2 s) ...
TILE_CONTEXT = 16    # ... plus this many frames of context per side (its receptive field is ~12 frames)
TILE_BUCKET = 50     # shorter inputs: one tile rounded up to this many frames
ORT_TILE_FRAMES = 600  # ONNX Runtime decoder: tiles of at most this many frames, the input split evenly (its
                       # kernels are not built per shape, so no rounding to one tile length is needed); 1100 frames
                       # in 1 thread: tiles of <= 300 1.00, 400 0.96, 600 0.94, 1100 0.93 CPU s per s (on two
                       # workers 600 gives 2 tiles of 552 where 400 gave 4 of 280)
ORT_TILE_ALIGN = 8     # ... each tile's core a multiple of this many frames


def even_core(frames: int, tile_frames: int, align: int = ORT_TILE_ALIGN, multiple: int = 1) -> int:
    """The core length of the fewest tiles of at most `tile_frames` that cover `frames` evenly (a multiple of
    `align`): 1100 frames in tiles of <= 400 -> 3 tiles of 368, not 6 of 200 (less context and padding).
    `multiple`: the number of tiles rounded up to a multiple of it (tiles for that many worker threads: 4 of 280)."""
    tiles = -(-frames // max(tile_frames, align))
    tiles = -(-tiles // max(1, multiple)) * max(1, multiple)
    return -(-(-(-frames // tiles)) // align) * align


def decoder_tiles(dec: Any, x: Any, f0_hz: Any, g: Any, generator: Any, tile_frames: int = TILE_FRAMES,
                  context: int = TILE_CONTEXT, even: bool = False,
                  multiple: int = 1) -> tuple[int, list[tuple[Any, Any]]]:
    """Cut a decoder input into fixed-size tiles: (frames, [(latent tile, source tile or None), ...]).

    The latent (batch, C, frames) is cut into tiles of `tile_frames` plus `context` frames of borrowed context on
    each side (zeros beyond the ends); the NSF source is computed once for the whole input (phase and seeded
    noise as without tiles) and cut the same way. Tile i decodes to audio whose samples
    [context*hop, (context+core)*hop) are frames [i*core, (i+1)*core) of the input (see `join_tiles`).
    `even`: the tiles' length follows the input (`even_core`, their number a multiple of `multiple`) instead of
    being `tile_frames` (or one bucket).
    """
    import torch.nn.functional as F

    hop, frames = dec.upsample, x.shape[-1]
    core = even_core(frames, tile_frames, multiple=multiple) if even else min(tile_frames, -(-frames // TILE_BUCKET) * TILE_BUCKET)
    tiles = -(-frames // core)
    extra = tiles * core - frames
    x = F.pad(x, (context, extra + context))
    source = None
    if hasattr(dec, "m_source"):
        source = dec.m_source(f0_hz.float(), hop, generator)  # (batch, 1, frames*hop), float32
        source = F.pad(source, (context * hop, (extra + context) * hop))
    out = []
    for i in range(tiles):
        a, b = i * core, (i + 1) * core + 2 * context
        out.append((x[..., a:b], source[..., a * hop:b * hop] if source is not None else None))
    return frames, out


def join_tiles(decoded: list[Any], frames: int, hop: int, context: int = TILE_CONTEXT) -> Any:
    """The audio (batch, 1, frames*hop) float32 from the decoded tiles of `decoder_tiles`: each one's centre."""
    import torch

    core = decoded[0].shape[-1] // hop - 2 * context
    return torch.cat([y[..., context * hop:(context + core) * hop].float() for y in decoded], dim=-1)[..., :frames * hop]


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
        weight = conv_weight(child)
        with torch.no_grad():
            plain.weight.copy_(weight.unsqueeze(2))
            if child.bias is not None:
                plain.bias.copy_(child.bias)
        setattr(module, name, plain.to(weight.device))
    return module
