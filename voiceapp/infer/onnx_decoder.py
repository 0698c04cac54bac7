"""ONNX Runtime decoders for CPUs without fast bfloat16 (most laptops and desktops: AVX2 only).

Two graphs of the HiFi-GAN conv stack (the decoder after its NSF source: ~95% of the synthesis time), each
exported once per model with the weight norm fused and run by ONNX Runtime on the CPU:

- **float32** (`--precision ort`, what `auto` picks on AVX2/AVX-512 CPUs without fast bf16): every 1-D conv
  exported as the equivalent (1, k) 2-D conv, which ONNX Runtime's graph optimizer turns into its blocked
  (NCHWc) convolutions with the activations fused (convolutions are then 88% of its time); the same numbers as
  PyTorch within 1e-6. Seconds per second of audio on one 2 s tile: AVX2 EPYC (2 threads, issue #17's profile)
  0.93 against 1.33 for PyTorch's channels-last float32; AVX-512 EPYC (Zen 4 or later, 1 thread, CPU seconds)
  0.95 against 1.38, while the 1-D convs exported as they are take 1.42 (no gain). Its kernels are not built per
  input shape, so its tiles follow the input (tiles.even_core: fewer, longer tiles, less context decoded twice).
- **int8** (`--precision int8`): the convolutions of the first two stages quantized to int8 (weights per output
  channel, activations per tensor with ranges calibrated on real speech: the shipped LJ Speech clip through this
  model). It is the user's choice, not the default: bench/infer.py --quality measures that it moves the sound
  further than another noise seed does (full v2 model, random weights, real speech).

The graphs are cached under `models/cache/decoders/`, named by the sha256 of the model file, the kind and the
graph version (and the tile shape for int8, whose calibration depends on it), so each is built once per model
(seconds for float32, tens of seconds for int8) and kept across processes; it is rebuilt when the file changes
and the graphs of an earlier version of the same file are deleted then. Any failure (runtime missing, export or
quantization failing) is reported by the caller in one line, which then uses the PyTorch float32 decoder.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from voiceapp.progress import Progress, no_progress
from voiceapp.infer.tiles import (TILE_CONTEXT, TILE_FRAMES, conv_weight, convs_to_2d, decoder_tiles, deliver,
                                  join_tiles, submit_tiles, tile_workers)
from voiceapp.workspace import atomic_path, file_sha256, read_json, write_json_atomic

log = logging.getLogger(__name__)

GRAPH_VERSION = 4      # part of the cache name: a change in how graphs are built rebuilds them
FP32_GRAPH_VERSION = 1  # ... the same for the float32 graph
OPSET = 17
CALIBRATION_TILES = 6     # tiles of real speech whose activation ranges set the int8 scales ...
CALIBRATION_FRAMES = 100  # ... each this many frames (+ context): calibration keeps every activation in memory
INPUTS = ("x", "source", "g")


def missing_runtime() -> str | None:
    """None when ONNX Runtime and onnx (for export and quantization) import, else what is missing."""
    missing = []
    for module in ("onnxruntime", "onnx"):
        try:
            __import__(module)
        except Exception:  # noqa: BLE001 - a broken install counts as missing
            missing.append(module)
    return f"{' and '.join(missing)} not installed" if missing else None


def fused_conv1d_copy(dec: Any) -> Any:
    """A copy of `dec` whose weight-normed 1-D convs are plain Conv1d/ConvTranspose1d holding the fused weight
    (what ONNX export and quantization see as ordinary convolutions)."""
    from torch import nn

    def replace(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if not isinstance(child, (nn.Conv1d, nn.ConvTranspose1d)):
                replace(child)
                continue
            args = dict(in_channels=child.in_channels, out_channels=child.out_channels,
                        kernel_size=child.kernel_size, stride=child.stride, padding=child.padding,
                        dilation=child.dilation, groups=child.groups, bias=child.bias is not None)
            plain = (nn.ConvTranspose1d(output_padding=child.output_padding, **args)
                     if isinstance(child, nn.ConvTranspose1d) else nn.Conv1d(**args))
            with torch.no_grad():
                plain.weight.copy_(conv_weight(child))
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
            setattr(module, name, plain)

    out = copy.deepcopy(dec).float().cpu().eval()
    replace(out)
    return out


def export_filter(dec: Any, path: Path, tile_frames: int = TILE_FRAMES, context: int = TILE_CONTEXT,
                  gin_channels: int = 0) -> Path:
    """Export the NSF decoder's conv stack (`dec.filter`) to ONNX at `path` (float32; the time axis is free)."""
    class Filter(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor, source: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            return self.inner.filter(x, source, g)

    plain = fused_conv1d_copy(dec)
    frames = tile_frames + 2 * context
    channels = plain.conv_pre.in_channels
    example = (torch.zeros(1, channels, frames), torch.zeros(1, 1, frames * plain.upsample),
               torch.zeros(1, max(gin_channels, 1), 1))
    axes = {"x": {2: "frames"}, "source": {2: "samples"}, "audio": {2: "samples"}}  # any tile length
    with torch.no_grad():
        torch.onnx.export(Filter(plain).eval(), example, str(path), input_names=list(INPUTS), output_names=["audio"],
                          opset_version=OPSET, dynamo=False, dynamic_axes=axes)
    return path


def export_fp32(dec: Any, path: Path, frames: int = 2 * TILE_CONTEXT + 100, gin_channels: int = 0) -> Path:
    """Export the decoder's conv stack at `path` for ONNX Runtime in float32, every conv as a (1, k) 2-D conv.

    NSF decoders: inputs x (1, C, frames), source (1, 1, frames*hop), g (1, gin, 1); plain (no-f0) decoders: x
    and g. Output `audio` (1, 1, frames*hop); the time axis is free (the exported shape is only an example)."""

    nsf = hasattr(dec, "m_source")

    class Filter2d(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor, source: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            return self.inner.filter(x.unsqueeze(2), source.unsqueeze(2), g.unsqueeze(2)).squeeze(2)

    class Plain2d(Filter2d):
        def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return self.inner(x.unsqueeze(2), g=g.unsqueeze(2)).squeeze(2)

    plain = convs_to_2d(fused_conv1d_copy(dec))
    channels = plain.conv_pre.in_channels
    x, g = torch.zeros(1, channels, frames), torch.zeros(1, max(gin_channels, 1), 1)
    if nsf:
        module, example, names = Filter2d(plain), (x, torch.zeros(1, 1, frames * plain.upsample), g), list(INPUTS)
    else:
        module, example, names = Plain2d(plain), (x, g), ["x", "g"]
    axes = {"x": {2: "frames"}, "audio": {2: "samples"}, **({"source": {2: "samples"}} if nsf else {})}
    with torch.no_grad():
        torch.onnx.export(module.eval(), example, str(path), input_names=names, output_names=["audio"],
                          opset_version=OPSET, dynamo=False, dynamic_axes=axes)
    return path


def quantize_graph(fp32_path: Path, out_path: Path, feeds: list[dict[str, np.ndarray]], kernels_per_stage: int = 3) -> Path:
    """Static int8 quantization (QDQ) of the convolutions of the first two upsampling stages (~65% of the work:
    256 and 128 channels at 1/40 and 1/4 of the output rate): int8 weights per output channel, uint8 inputs with
    min/max ranges from `feeds` (real decoder inputs). The later stages (few channels, at the output rate),
    conv_pre/conv_post, the transposed convs, residual sums and activations stay float32. Measured on one tile of
    real speech (tile SNR / log-mel L1 against float32): light model, every conv but conv_post 30.7 dB / 0.61,
    stages 0-1 46.4 dB / 0.24; full model, every op 18.0 dB / 0.69, every conv 18.6 dB / 0.30."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.items, None)

    import onnx

    names = [node.name for node in onnx.load(str(fp32_path)).graph.node if node.op_type == "Conv"]
    keep_float = [name for name in names if not _early_stage(name, kernels_per_stage)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process goes to the root logger: not the user's business
    try:
        quantize_static(str(fp32_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=keep_float)
    finally:
        root.setLevel(level)
    return out_path


def _early_stage(node_name: str, kernels_per_stage: int) -> bool:
    """Whether an exported conv belongs to upsampling stage 0 or 1 (`resblocks.N` with N // kernels_per_stage < 2,
    or `noise_convs.0/1`)."""
    import re

    block = re.search(r"resblocks\.(\d+)", node_name)
    if block:
        return int(block.group(1)) // kernels_per_stage < 2
    noise = re.search(r"noise_convs\.(\d+)", node_name)
    return bool(noise) and int(noise.group(1)) < 2


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy waiting between calls
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtDecoder(torch.nn.Module):
    """Same call as the decoder (x, f0_hz, g, generator) -> (batch, 1, frames*hop) float32, with the conv stack
    run by an ONNX Runtime session on `decoder_tiles` tiles (`even`: tiles of at most `tile_frames`, cut evenly).
    The NSF source stays in PyTorch (float32)."""

    tiles_in_threads = True  # its tiles may be decoded in worker threads (tiles.submit_tiles)

    def __init__(self, dec: Any, graph: Path, threads: int, tile_frames: int = TILE_FRAMES,
                 context: int = TILE_CONTEXT, even: bool = False) -> None:
        super().__init__()
        if hasattr(dec, "m_source"):  # only the source: the convs live in the graph
            self.m_source = copy.deepcopy(dec.m_source).float().eval()
        self.upsample = dec.upsample
        self.graph = graph
        # built here (a graph that fails to load fails here) for one thread per tile, what a conversion on more
        # than one core runs (tiles side by side); a call outside one, with `threads` > 1, adds a second session
        self.session = session(graph, 1)
        self.threads, self._sessions, self._lock = threads, {1: self.session}, threading.Lock()
        self.tile_frames, self.context, self.even = tile_frames, context, even

    def forward(self, x: Any, f0_hz: Any = None, g: Any = None, generator: Any = None) -> Any:
        if x.shape[0] != 1:
            raise ValueError("the ONNX Runtime decoder decodes one item at a time")
        with torch.no_grad():
            workers = tile_workers()  # side by side: as many tiles as workers, or twice as many, ...
            frames, tiles = decoder_tiles(self, x, f0_hz, g, generator, self.tile_frames, self.context, self.even,
                                          max(1, workers))  # ... so that none decodes alone at the end
        g_np = (g if g is not None else torch.zeros(1, 1, 1)).detach().float().cpu().numpy()
        feeds = []
        for latent, source in tiles:
            feed = {"x": latent.float().cpu().numpy(), "g": g_np}
            if source is not None:
                feed["source"] = source.float().cpu().numpy()
            feeds.append(feed)
        run = self._session(1 if workers else self.threads).run
        collect = submit_tiles(lambda feed: torch.from_numpy(run(None, feed)[0]), feeds)
        return deliver(lambda: join_tiles(collect(), frames, self.upsample, self.context),
                       (1, 1, frames * self.upsample))

    def _session(self, threads: int) -> Any:
        """The session with `threads` intra-op threads: one while a conversion decodes tiles side by side
        (`tiles.tiles_in`: one tile per thread scales better than one tile in two threads), `self.threads`
        otherwise (a serial caller such as the live engine). Built on first use and kept: each holds its own copy
        of the weights, so a process that uses both modes holds two (switching back and forth rebuilds nothing)."""
        with self._lock:
            if threads not in self._sessions:
                self._sessions[threads] = session(self.graph, threads)
            return self._sessions[threads]


def calibration_feeds(dec: Any, captured: list[tuple[Any, Any, Any]], limit: int = CALIBRATION_TILES,
                      tile_frames: int = TILE_FRAMES, context: int = TILE_CONTEXT) -> list[dict[str, np.ndarray]]:
    """Graph inputs from decoder calls captured on real speech ((x, f0_hz, g) each): up to `limit` tiles."""
    feeds: list[dict[str, np.ndarray]] = []
    generator = torch.Generator().manual_seed(0)
    for x, f0_hz, g in captured:
        with torch.no_grad():
            _, tiles = decoder_tiles(dec, x.float(), f0_hz, g, generator, tile_frames, context)
        g_np = (g if g is not None else torch.zeros(1, 1, 1)).detach().float().numpy()
        for latent, source in tiles:
            if len(feeds) < limit and latent.shape[-1] == tile_frames + 2 * context:
                feeds.append({"x": latent.float().numpy(), "source": source.float().numpy(), "g": g_np})
    if not feeds:
        raise ValueError("no calibration tile of the graph's shape was captured")
    return feeds


def cache_dir(models_dir: Path) -> Path:
    return Path(models_dir) / "cache" / "decoders"


def graph_path(models_dir: Path, model_sha: str, tile_frames: int = TILE_FRAMES, context: int = TILE_CONTEXT,
               kind: str = "int8") -> Path:
    """The cache file of the `kind` ("int8" or "fp32") graph of the model whose file has sha256 `model_sha`."""
    if kind == "fp32":  # its time axis is free: one graph for any tile
        return cache_dir(models_dir) / f"{model_sha[:20]}-v{FP32_GRAPH_VERSION}-fp32.onnx"
    return cache_dir(models_dir) / f"{model_sha[:20]}-t{tile_frames}c{context}-v{GRAPH_VERSION}-int8.onnx"


def _cached(target: Path, sha: str) -> bool:
    return target.is_file() and (read_json(target.with_suffix(".json"), {}) or {}).get("model_sha256") == sha


def fp32_graph(dec: Any, model_path: Path, models_dir: Path, gin_channels: int,
               progress: Progress = no_progress) -> Path:
    """The cached float32 graph of the decoder of the model file `model_path`, exported when missing (a few
    seconds, once per model file) and moved into place atomically."""
    model_path = Path(model_path)
    sha = file_sha256(model_path)
    target = graph_path(models_dir, sha, kind="fp32")
    if _cached(target, sha):
        return target
    log.info("exporting the float32 ONNX Runtime decoder of %s (once per model file)", model_path.name)
    progress(0.0, f"preparing the fast CPU decoder of {model_path.name} (once per model)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voiceapp_dec_") as tmp:
        export_fp32(dec, Path(tmp) / "fp32.onnx", gin_channels=gin_channels)
        with atomic_path(target) as part:
            shutil.move(str(Path(tmp) / "fp32.onnx"), str(part))
    write_json_atomic(target.with_suffix(".json"), {"model": str(model_path.resolve()), "model_sha256": sha,
                                                    "kind": "fp32", "graph_version": FP32_GRAPH_VERSION})
    prune(models_dir, model_path, keep=target)
    return target


def int8_graph(dec: Any, model_path: Path, models_dir: Path, capture: Callable[[], list[tuple[Any, Any, Any]]],
               gin_channels: int, tile_frames: int = TILE_FRAMES, context: int = TILE_CONTEXT,
               progress: Progress = no_progress) -> Path:
    """The cached int8 graph of the decoder of the model file `model_path`, built when missing: export, capture
    calibration inputs with `capture()` (decoder calls on real speech), quantize, move into place atomically."""
    model_path = Path(model_path)
    sha = file_sha256(model_path)
    target = graph_path(models_dir, sha, tile_frames, context)
    sidecar = target.with_suffix(".json")
    if _cached(target, sha):
        return target
    log.info("building the int8 decoder of %s (once per model file)", model_path.name)
    progress(0.0, f"preparing the fast CPU decoder of {model_path.name} (once per model; up to a minute)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voiceapp_dec_") as tmp:
        fp32 = export_filter(dec, Path(tmp) / "filter.onnx", tile_frames, context, gin_channels)
        feeds = calibration_feeds(dec, capture(), tile_frames=CALIBRATION_FRAMES, context=context)
        with atomic_path(target) as part:
            quantize_graph(fp32, Path(tmp) / "int8.onnx", feeds, int(dec.num_kernels))
            shutil.move(str(Path(tmp) / "int8.onnx"), str(part))
    write_json_atomic(sidecar, {"model": str(model_path.resolve()), "model_sha256": sha, "kind": "int8",
                                "tile_frames": tile_frames, "context": context, "graph_version": GRAPH_VERSION})
    prune(models_dir, model_path, keep=target)
    return target


def prune(models_dir: Path, model_path: Path, keep: Path) -> None:
    """Delete the graphs built from earlier contents of `model_path` (the file was replaced or retrained) and those
    of an earlier graph version of the same kind; the other kind's graph of the same contents stays."""
    sha = (read_json(keep.with_suffix(".json"), {}) or {}).get("model_sha256")
    kind = "fp32" if keep.name.endswith("-fp32.onnx") else "int8"
    for sidecar in cache_dir(models_dir).glob("*.json"):
        graph = sidecar.with_suffix(".onnx")
        if graph == keep:
            continue
        info = read_json(sidecar, {}) or {}
        if info.get("model") != str(Path(model_path).resolve()):
            continue
        same_kind = graph.name.endswith(f"-{kind}.onnx")
        if info.get("model_sha256") != sha or same_kind:
            graph.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
