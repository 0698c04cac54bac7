"""Demucs v4 checkpoints (`<sig>-<sha256 prefix>.th`, as Meta publishes them and UVR / audio-separator use them) as
a separator network: (2, n) at 44.1 kHz -> {source: (2, n)} (drums, bass, other, vocals[, guitar, piano]).

A published `.th` is a pickled dict: {"klass": <demucs class>, "args": [...], "kwargs": {...}, "state": {name:
tensor}, "training_args": {...}}. Loading it never runs pickle's code: `torch.load(weights_only=True)` with an
allow-list that admits only the class *names* of the networks (to our stand-ins, never importing demucs) and
`fractions.Fraction` (the segment length) and numpy's scalar / dtype / array constructors (numbers in the settings);
anything else in the file is refused with a message naming it. The
network is then built from audio-separator's copy of the Demucs classes (`uvr_lib_v5/demucs`) with the file's
kwargs, and the weights are loaded into it.

Running (facts from Demucs' `apply_model`; our loop): the mix is normalised by its mono mean / std, cut into
windows of the model's training segment (7.8 s for HT-Demucs) that overlap by a quarter, each weighted by a
triangle, summed and renormalised. A bag (htdemucs_ft) averages its members per source with its weight matrix;
members with zero weight for every source that is wanted are not run.
"""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.assets.demucs_checkpoint import load_demucs_package
from voiceapp.assets.uvr import DemucsParams, UvrModel
from voiceapp.errors import InputError
from voiceapp.progress import NEVER, CancelToken

log = logging.getLogger(__name__)

def _demucs_classes() -> dict[str, type]:
    """audio-separator's HTDemucs / HDemucs. Their package imports `diffq` (only used for quantized checkpoints,
    which `load_demucs_package` refuses); when diffq is not installed a module that refuses to quantize stands in."""
    try:
        import diffq  # noqa: F401
    except ImportError:
        sys.modules.setdefault("diffq", _no_diffq())
    try:
        from audio_separator.separator.uvr_lib_v5.demucs.hdemucs import HDemucs
        from audio_separator.separator.uvr_lib_v5.demucs.htdemucs import HTDemucs
    except ImportError as err:
        raise InputError(f"Demucs models need the `audio-separator` package and `julius` ({err}). Install them with "
                         f"`pip install -r requirements.txt` and `pip install --no-deps -r "
                         f"requirements-nodeps.txt`.") from err
    return {"HTDemucs": HTDemucs, "HDemucs": HDemucs}


def _no_diffq() -> types.ModuleType:
    module = types.ModuleType("diffq")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InputError("Quantized Demucs checkpoints need the `diffq` package; Voiceapp runs the full-precision "
                         "Demucs files.")

    for name in ("DiffQuantizer", "UniformQuantizer", "restore_quantized_state"):
        setattr(module, name, refuse)
    return module


def build_demucs(package: dict, path: Path) -> Any:
    """The network of a loaded package, with its weights."""
    cls = _demucs_classes()[package["klass"]]
    try:
        net = cls(*package["args"], **package["kwargs"])
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: its model settings do not build a {package['klass']} ({str(err)[:200]}). Delete it "
                         f"and download the model again.") from err
    try:
        net.load_state_dict({k: v.float() for k, v in package["state"].items()})
    except (RuntimeError, AttributeError) as err:
        raise InputError(f"{path}: the weights do not fit its own {package['klass']} settings ({str(err)[:200]}). "
                         f"Delete it and download the model again.") from err
    return net.eval()


class DemucsNet:
    """One Demucs model or a bag of them: (2, n) at 44.1 kHz -> {source: (2, n)} for the sources that are wanted."""

    def __init__(self, paths: list[Path], model: UvrModel, params: DemucsParams, device: str = "cpu",
                 overlap: float = 0.25) -> None:
        from voiceapp.devices import torch_device

        self.device = torch_device(device)
        self.overlap = overlap
        self.nets = [build_demucs(load_demucs_package(p), p).to(self.device) for p in paths]
        self.sources = [str(s) for s in self.nets[0].sources]
        for net, path in zip(self.nets[1:], paths[1:]):
            if [str(s) for s in net.sources] != self.sources:
                raise InputError(f"{path}: its sources {list(net.sources)} differ from the bag's {self.sources}.")
        n_models = len(self.nets)
        self.weights = np.asarray(params.weights or [[1.0] * len(self.sources)] * n_models, dtype=np.float32)
        if self.weights.shape != (n_models, len(self.sources)):
            raise InputError(f"{model.title}: its bag weights are {self.weights.shape}, expected "
                             f"({n_models}, {len(self.sources)}).")
        self.wanted = [s for s in self.sources if s.lower() in {v.lower() for v in model.voice_stems}] or self.sources
        self.rate = int(getattr(self.nets[0], "samplerate", 44100))

    def _segment_samples(self, net: Any) -> int:
        segment = getattr(net, "segment", None)
        return int(float(segment) * self.rate) if segment else 10 * self.rate

    def _run_one(self, net: Any, mix: Any, cancel: CancelToken) -> Any:
        """(2, n) tensor -> (sources, 2, n): overlapping triangle-weighted windows of the training segment."""
        import torch

        n, size = mix.shape[-1], self._segment_samples(net)
        stride = max(1, int((1 - self.overlap) * size))
        weight = torch.cat([torch.arange(1, size // 2 + 1), torch.arange(size - size // 2, 0, -1)]).float()
        weight = (weight / weight.max()).to(self.device)
        out = torch.zeros(len(self.sources), mix.shape[0], n, device=self.device)
        total = torch.zeros(n, device=self.device)
        for start in range(0, n, stride):
            cancel.raise_if_set()
            part = mix[:, start:start + size]
            length = part.shape[-1]
            x = torch.nn.functional.pad(part, (0, size - length))[None]   # (1, 2, segment)
            if hasattr(net, "valid_length") and not getattr(net, "use_train_segment", False):
                valid = net.valid_length(size)
                x = torch.nn.functional.pad(x, ((valid - size) // 2, valid - size - (valid - size) // 2))
            y = net(x)[0]                                                 # (sources, 2, >= segment)
            if y.shape[-1] != size:
                trim = (y.shape[-1] - size) // 2
                y = y[..., trim:trim + size]
            out[..., start:start + length] += y[..., :length] * weight[:length]
            total[start:start + length] += weight[:length]
            if start + size >= n:
                break
        return out / total.clamp_min(1e-8)

    def __call__(self, mix: np.ndarray, cancel: CancelToken = NEVER) -> dict[str, np.ndarray]:
        import torch

        wanted = [self.sources.index(s) for s in self.wanted]
        x = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)).to(self.device)
        ref = x.mean(0)
        mean, std = ref.mean(), ref.std().clamp_min(1e-8)
        x = (x - mean) / std
        result = torch.zeros(len(self.sources), *x.shape, device=self.device)
        totals = np.zeros(len(self.sources), dtype=np.float32)
        with torch.inference_mode():
            for net, weights in zip(self.nets, self.weights):
                if not any(weights[k] for k in wanted):
                    continue   # a bag member that only serves sources nobody asked for
                result += self._run_one(net, x, cancel) * torch.from_numpy(weights)[:, None, None].to(self.device)
                totals += weights
        return {self.sources[k]: (result[k] / max(float(totals[k]), 1e-8) * std + mean).cpu().numpy()
                .astype(np.float32) for k in wanted}
