"""Voice models of the `instant` and `quick` engines: the target's own frames (+ the quick network).

The file is Voiceapp's own format, `models/voices/<name>/<name>.safetensors` (never a pickle; RVC WebUI and
Applio list only `.pth` files, so they cannot mistake it for theirs):
    target.content  (n, 384) float16   Whisper block-3 content frames of the target, 50 per second
    target.sp       (n, 2, 60) float16 coded WORLD spectral envelope, two 10 ms frames per content frame
    target.ap       (n, 2, bands)      coded band aperiodicity
    target.f0       (n, 2) float16     f0 in Hz (0 = unvoiced)
    net.*                              the QuickNet weights, float16 (quick engine only)
    metadata["voiceapp"] = JSON {"format": 1, "engine", "sample_rate", "encoder", "f0": true, "steps",
                                 "epochs", "minutes_of_data", "version", "median_f0_hz", "config": {...}}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError
from voiceapp.voices.file import OWN_ENGINES, load_voice_tensors, save_voice_tensors

log = logging.getLogger(__name__)

WORLD_ENGINES: tuple[str, ...] = OWN_ENGINES
CONTENT_ENCODER = "whisper-mid"        # the content encoder of these engines
_TARGET_KEYS = ("target.content", "target.sp", "target.ap", "target.f0")


@dataclass
class WorldVoice:
    """A loaded instant/quick voice model."""

    engine: str
    path: Path
    sample_rate: int
    content: np.ndarray            # (n, dim) float32
    sp: np.ndarray                 # (n, 2, sp_dims) float32
    ap: np.ndarray                 # (n, 2, bands) float32
    f0: np.ndarray                 # (n, 2) float32 Hz
    meta: dict[str, Any] = field(default_factory=dict)
    net: Any = None                # QuickNet (quick) or None (instant)

    use_f0 = True
    n_speakers = 1
    version = "v2"

    @property
    def metadata(self) -> dict[str, Any]:
        """The file's Voiceapp metadata (engine, rate, median_f0_hz, steps, ...), as `VoiceModel.metadata`."""
        return self.meta

    @property
    def embedder(self) -> str:
        return str(self.meta.get("encoder", CONTENT_ENCODER))

    @property
    def median_f0_hz(self) -> float:
        return float(self.meta.get("median_f0_hz") or np.median(self.f0[self.f0 > 0]))

    @property
    def minutes_of_data(self) -> float:
        return len(self.content) / 50.0 / 60.0

    @property
    def steps(self) -> int:
        return int(self.meta.get("steps", 0))


def world_tensors(content: np.ndarray, sp: np.ndarray, ap: np.ndarray, f0: np.ndarray) -> dict[str, Any]:
    import torch

    def half(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float16))

    return {"target.content": half(content), "target.sp": half(sp), "target.ap": half(ap), "target.f0": half(f0)}


def save_world_voice(path: Path | str, engine: str, sample_rate: int, content: np.ndarray, sp: np.ndarray,
                     ap: np.ndarray, f0: np.ndarray, meta: dict[str, Any], net: Any = None) -> Path:
    """Write an instant/quick voice file atomically; returns its path."""
    if engine not in WORLD_ENGINES:
        raise ValueError(f"engine must be one of {WORLD_ENGINES}")
    tensors = world_tensors(content, sp, ap, f0)
    if net is not None:
        # float16 halves the file (the network runs in float32 after loading; the output changes far less than
        # between two training runs)
        tensors.update({f"net.{k}": v.detach().cpu().half().contiguous() for k, v in net.state_dict().items()})
    voiced = f0[f0 > 0]
    info = {"engine": engine, "sample_rate": int(sample_rate), "encoder": CONTENT_ENCODER, "f0": True,
            "config": {"content_dim": int(content.shape[1])},
            "version": "v2", "minutes_of_data": round(len(content) / 3000.0, 3),
            "median_f0_hz": float(np.median(voiced)) if voiced.size else 0.0, **meta}
    info["config"] = {**info.get("config", {}), **({"net": net.cfg.to_json()} if net is not None else {})}
    return save_voice_tensors(path, tensors, info)


def load_world_voice(path: Path | str, device: str = "cpu") -> WorldVoice:
    """Load an instant/quick voice file; InputError naming the file for anything malformed."""
    path = Path(path)
    tensors, meta = load_voice_tensors(path)
    engine = meta.get("engine")
    if engine not in WORLD_ENGINES:
        raise InputError(f"{path.name} is a Voiceapp model of engine {engine!r}, not one of {WORLD_ENGINES}.")
    missing = [k for k in _TARGET_KEYS if k not in tensors]
    if missing:
        raise InputError(f"{path.name} lacks {missing}; the file is damaged or incomplete. Train the voice again.")
    content, sp, ap, f0 = (tensors[k].float().numpy() for k in _TARGET_KEYS)
    n = len(content)
    if not (content.ndim == 2 and sp.shape[:2] == (n, 2) and ap.shape[:2] == (n, 2) and f0.shape == (n, 2)) or n == 0:
        raise InputError(f"{path.name} has inconsistent target frames (content {tuple(content.shape)}, sp "
                         f"{tuple(sp.shape)}, ap {tuple(ap.shape)}, f0 {tuple(f0.shape)}); train the voice again.")
    voice = WorldVoice(engine, path, int(meta.get("sample_rate", 0)), content, sp, ap, f0, meta)
    if voice.sample_rate < 8000:
        raise InputError(f"{path.name} names no valid sample rate ({meta.get('sample_rate')!r}).")
    if engine == "quick":
        voice.net = _load_net(path, tensors, meta, device)
    return voice


def _load_net(path: Path, tensors: dict[str, Any], meta: dict[str, Any], device: str) -> Any:
    from voiceapp.nets.quicknet import QuickConfig, QuickNet

    try:
        cfg = QuickConfig.from_json(dict(meta["config"]["net"]))
        net = QuickNet(cfg)
        net.load_state_dict({k[4:]: v.float() for k, v in tensors.items() if k.startswith("net.")}, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(f"{path.name} holds no usable quick network ({type(err).__name__}: {err}); the file is "
                         f"damaged or from another Voiceapp version. Train the voice again.") from err
    return net.to(device).eval()
