"""Voice model files in the RVC / Applio community format (`name.pth`), and pretrained G/D loading.

A voice file is `torch.save` of a dict:
    weight   fp16 generator state dict without `enc_q.*`, weight norm as `weight_g`/`weight_v`
    config   the 18-entry constructor list (SynthConfig.to_rvc_list); config[-1] = output sample rate
    info     "<epoch>epoch"       sr  "40k" (RVC) / 40000 (Applio)      f0  1/0      version  "v1"/"v2"
    Applio:  epoch, step, embedder_model, speakers_id, author, vocoder ("HiFi-GAN"), model_hash,
             creation_date, model_name, dataset_length
    ours:    voiceapp = {"format": 1, "size": "full"|"light"|"tiny", "content_dim": int, "embedder": str,
                         "rvc_compatible": bool}
Everything loads with `torch.load(weights_only=True)`: a file whose pickle needs code is refused, never run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import pickle
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.nets.commons import to_rvc_keys
from voiceapp.nets.synthesizer import (CONTENT_DIMS, NOISE_SCALE, SAMPLE_RATES, VERSIONS, SynthConfig, Synthesizer,
                                       parse_sample_rate, rate_label)
from voiceapp.workspace import atomic_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
VOCODER = "HiFi-GAN"
DEFAULT_EMBEDDER = "contentvec"  # what community (RVC WebUI) models were trained with


# ----------------------------------------------------------------------------------------------- reading
def read_checkpoint(path: Path | str, mmap: bool = False) -> dict:
    """`torch.load(weights_only=True)` on CPU with errors a user can act on. Returns the top-level dict."""
    path = Path(path)
    if not path.is_file():
        raise MissingArtifactError(f"Model file {path} does not exist. Check the path, or import the model in the "
                                   f"Models tab.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise InputError(f"{path.name} was refused: loading it would run code stored in the file (its pickle "
                         f"references {_pickled_name(err)}). Voice models are plain tensors; get the model from "
                         f"a source you trust, or re-export it as a plain RVC .pth.") from err
    except RuntimeError as err:
        if mmap and "mmap" in str(err).lower():  # old (non-zip) torch format cannot be memory-mapped
            return read_checkpoint(path, mmap=False)
        raise InputError(f"{path.name} is not a readable PyTorch model file ({err}). It may be truncated; "
                         f"download or copy it again.") from err
    except (EOFError, OSError, ValueError, KeyError) as err:
        raise InputError(f"{path.name} is not a readable PyTorch model file ({type(err).__name__}: {err}). It may "
                         f"be truncated; download or copy it again.") from err
    if not isinstance(data, dict):
        raise InputError(f"{path.name} holds a {type(data).__name__}, not an RVC model dict (with 'weight' and "
                         f"'config'). Is it a voice model .pth?")
    return data


def _pickled_name(err: Exception) -> str:
    match = re.search(r"GLOBAL ([\w.]+ [\w.]+)", str(err))
    return match.group(1).replace(" ", ".") if match else "a Python object"


def _int_flag(value: Any, default: int = 1) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return 0 if value.strip().lower() in {"0", "false", "no", ""} else 1
    return int(bool(value))


def _epoch_of(ckpt: dict) -> int | None:
    if isinstance(ckpt.get("epoch"), (int, np.integer)):
        return int(ckpt["epoch"])
    match = re.match(r"\s*(\d+)\s*epoch", str(ckpt.get("info", "")))
    return int(match.group(1)) if match else None


def _rate_of(ckpt: dict, config: list | None) -> int:
    if config and len(config) == 18:
        try:
            return parse_sample_rate(config[-1])
        except ConfigError:
            pass
    if ckpt.get("sr") is not None:
        return parse_sample_rate(ckpt["sr"])
    raise InputError("The model file names no sample rate (neither 'config' nor 'sr').")


def _state_of(ckpt: dict, path: Path) -> dict[str, torch.Tensor]:
    """The generator weights of a voice file (`weight`) or of a G_*.pth / pretrained f0G file (`model`)."""
    state = ckpt.get("weight", ckpt.get("model"))
    if not isinstance(state, dict) or not state:
        raise InputError(f"{path.name} has no 'weight' (voice model) or 'model' (checkpoint) entry; keys: "
                         f"{sorted(ckpt)[:8]}. It is not an RVC voice model.")
    state = to_rvc_keys(state)
    if "enc_p.emb_phone.weight" not in state or "emb_g.weight" not in state:
        raise InputError(f"{path.name} does not hold an RVC synthesizer (no enc_p.emb_phone / emb_g weights); it "
                         f"may be a discriminator (D_*.pth) or another kind of model.")
    return state


def _voice_config(ckpt: dict, state: dict, path: Path) -> tuple[SynthConfig, str]:
    """SynthConfig and embedder of a file, following RVC's loader defaults (f0 -> 1, version -> v1)."""
    ours = ckpt.get("voiceapp") if isinstance(ckpt.get("voiceapp"), dict) else {}
    extra = ckpt.get("extra") if isinstance(ckpt.get("extra"), dict) else {}
    config = ckpt.get("config") or extra.get("synth_config")
    version = str(ckpt.get("version") or extra.get("version") or "v1")
    if version not in VERSIONS:
        raise InputError(f"{path.name} says version {version!r}; only {VERSIONS} models are supported.")
    has_pitch = "enc_p.emb_pitch.weight" in state
    use_f0 = bool(_int_flag(ckpt.get("f0"), default=1))
    if use_f0 != has_pitch:
        log.warning("%s: f0 flag says %s but the weights %s a pitch embedding; following the weights",
                    path.name, use_f0, "have" if has_pitch else "lack")
        use_f0 = has_pitch
    content_dim = int(state["enc_p.emb_phone.weight"].shape[1])
    size = str(ours.get("size") or extra.get("preset") or "full")
    embedder = str(ckpt.get("embedder_model") or ours.get("embedder") or extra.get("embedder")
                   or DEFAULT_EMBEDDER)
    if config:
        if not isinstance(config, (list, tuple)) or len(config) != 18:
            raise InputError(f"{path.name} has a 'config' of {len(config) if isinstance(config, (list, tuple)) else type(config).__name__} "
                             f"entries; RVC models have 18.")
        config = list(config)
        config[-3] = int(state["emb_g.weight"].shape[0])  # n speakers, as RVC does
        try:
            cfg = SynthConfig.from_rvc_list(config, version=version, use_f0=use_f0, content_dim=content_dim,
                                            size=size if size in ("full", "light", "tiny") else "full")
        except (ConfigError, TypeError, ValueError) as err:
            raise InputError(f"{path.name} has an unusable config list ({err}).") from err
    else:
        cfg = infer_config(state, sample_rate=ckpt.get("sr"), version=ckpt.get("version"), name=path.name)
    return cfg, embedder


def infer_config(state: dict, sample_rate: int | str | None = None, version: str | None = None,
                 name: str = "state dict") -> SynthConfig:
    """Find the preset whose parameter shapes equal `state`'s (for files without a config list, e.g. f0G40k.pth)."""
    state = to_rvc_keys(state)
    content_dim = int(state["enc_p.emb_phone.weight"].shape[1])
    use_f0 = "enc_p.emb_pitch.weight" in state
    rates = [parse_sample_rate(sample_rate)] if sample_rate else list(SAMPLE_RATES)
    versions = [version] if version in VERSIONS else list(VERSIONS)
    hidden = int(state["enc_p.emb_phone.weight"].shape[0])
    widths = dict(
        hidden_channels=hidden, inter_channels=int(state["enc_p.proj.weight"].shape[0]) // 2,
        filter_channels=int(state["enc_p.encoder.ffn_layers.0.conv_1.weight"].shape[0]),
        n_layers=len({k.split(".")[3] for k in state if k.startswith("enc_p.encoder.attn_layers.")}),
        n_heads=hidden // int(state["enc_p.encoder.attn_layers.0.emb_rel_k"].shape[2]),
        upsample_initial_channel=int(state["dec.conv_pre.weight"].shape[0]),
        spk_embed_dim=int(state["emb_g.weight"].shape[0]), gin_channels=int(state["emb_g.weight"].shape[1]))
    n_ups = sum(1 for k in state if k.startswith("dec.ups.") and k.endswith(".weight_v"))
    n_blocks = sum(1 for k in state if k.startswith("dec.resblocks.") and k.endswith(".convs1.0.weight_v"))
    if n_ups and n_blocks:  # ResBlock1 kernels per stage; dilations as RVC's (1, 3, 5)
        kernels = tuple(int(state[f"dec.resblocks.{j}.convs1.0.weight_v"].shape[2]) for j in range(n_blocks // n_ups))
        widths.update(resblock_kernel_sizes=kernels, resblock_dilation_sizes=((1, 3, 5),) * len(kernels))
    shapes = {k: tuple(v.shape) for k, v in state.items() if not k.startswith("enc_q.")}
    matches = []
    for ver in versions:
        for rate in rates:
            try:
                cfg = replace(SynthConfig.preset(ver, rate, use_f0, "full", content_dim), **widths)
                cfg = replace(cfg, size=size_of(cfg))
            except ConfigError:
                continue
            if expected_shapes(cfg, with_posterior=False) == shapes:
                matches.append(cfg)
    if not matches:
        raise InputError(f"{name}: its weights match no RVC v1/v2 32k/40k/48k layout; it cannot be loaded.")
    if len({(m.sample_rate, m.upsample_rates) for m in matches}) > 1:
        raise InputError(f"{name}: the weights fit several sample rates "
                         f"({', '.join(str(m.sample_rate) for m in matches)}) and the file does not say which.")
    return matches[0]


def size_of(cfg: SynthConfig) -> str:
    """"full" / "light" when cfg has that preset's widths, else "custom"."""
    for size in ("full", "light"):
        preset = SynthConfig.preset(cfg.version, cfg.sample_rate, cfg.use_f0, size, cfg.content_dim)
        if preset.to_rvc_list()[:-3] == cfg.to_rvc_list()[:-3]:
            return size
    return "custom"


def expected_shapes(cfg: SynthConfig, with_posterior: bool = True) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the synthesizer for `cfg` (built on the meta device: no memory, fast)."""
    with torch.device("meta"):
        net = Synthesizer(cfg, with_posterior=with_posterior)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_state(state: dict, expected: dict[str, tuple[int, ...]], what: str) -> None:
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            parts.append(f"{len(wrong)} with other shapes (e.g. {wrong[0]}: {got[wrong[0]]} vs {expected[wrong[0]]})")
        raise InputError(f"{what}: the weights do not fit the network its config describes: {'; '.join(parts)}.")


@dataclass
class VoiceModel:
    """A loaded voice: the network (eval mode, no posterior encoder, on `device`) and its metadata."""

    path: Path
    config: SynthConfig
    version: str
    sample_rate: int
    use_f0: bool
    embedder: str
    n_speakers: int
    metadata: dict = field(default_factory=dict)
    net: Synthesizer | None = None
    device: str = "cpu"

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def content_dim(self) -> int:
        return self.config.content_dim

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def size(self) -> str:
        return self.config.size

    def infer(self, features: np.ndarray | torch.Tensor, f0_hz: np.ndarray | torch.Tensor | None = None,
              pitch: np.ndarray | torch.Tensor | None = None, speaker_id: int = 0,
              noise_scale: float = NOISE_SCALE, seed: int | None = None) -> np.ndarray:
        """features (frames, content_dim) at 100 frames/s, f0_hz (frames,) Hz (f0 models) -> float32 audio of
        frames*hop_length samples at `sample_rate`. `pitch` (coarse 1..255) is derived from f0_hz when omitted."""
        if not 0 <= int(speaker_id) < self.n_speakers:
            raise InputError(f"Speaker id {speaker_id} is out of range: {self.name} has {self.n_speakers} "
                             f"speaker(s) (0..{self.n_speakers - 1}).")
        dev = torch.device(self.device)
        phone = torch.as_tensor(np.asarray(features, dtype=np.float32) if not torch.is_tensor(features)
                                else features).float().to(dev)
        phone = phone.unsqueeze(0) if phone.dim() == 2 else phone
        if phone.shape[-1] != self.content_dim:
            raise InputError(f"{self.name} expects {self.content_dim}-wide content features ({self.embedder}), "
                             f"got {phone.shape[-1]}-wide ones. Use the encoder the model was trained with.")
        frames = phone.shape[1]
        pitch_t = pitchf_t = None
        if self.use_f0:
            if f0_hz is None:
                raise InputError(f"{self.name} is a pitch (f0) model: give f0 per frame.")
            f0 = np.asarray(f0_hz.cpu() if torch.is_tensor(f0_hz) else f0_hz, dtype=np.float32)[:frames]
            if pitch is None:
                from voiceapp.features.f0 import coarse_f0

                pitch = coarse_f0(f0)
            pitch_t = torch.as_tensor(np.asarray(pitch, dtype=np.int64)[:frames]).unsqueeze(0).to(dev)
            pitchf_t = torch.from_numpy(f0).unsqueeze(0).to(dev)
        generator = torch.Generator(device=dev).manual_seed(int(seed)) if seed is not None else None
        with torch.inference_mode():
            audio = self.net.infer(phone, torch.tensor([frames], device=dev), pitch_t, pitchf_t,
                                   torch.tensor([int(speaker_id)], device=dev), noise_scale, generator)
        return audio[0, 0].float().cpu().numpy()


def load_voice_model(path: Path | str, device: str = "cpu") -> VoiceModel:
    """Load any RVC / Applio voice `.pth` (v1/v2 x 32k/40k/48k x f0/no-f0), one of ours, or a full generator
    (`G_*.pth`, pretrained `f0G*.pth`: the `model` entry; its layout is found from the weights' shapes).

    `sr` may be "40k", 40000 or "40000"; a missing `f0` means 1 and a missing `version` "v1" (as RVC); the
    speaker count comes from `emb_g.weight`. Refuses pickles that need code, RefineGAN models, and weights that
    do not fit the config. Returns the network in eval mode, float32, on `device`.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    vocoder = str(ckpt.get("vocoder") or VOCODER)
    if vocoder != VOCODER:
        raise InputError(f"{path.name} uses the {vocoder} vocoder (Applio-only); Voiceapp, like RVC WebUI, loads "
                         f"HiFi-GAN models only. Retrain it with the HiFi-GAN vocoder.")
    state = _state_of(ckpt, path)
    state = {k: v for k, v in state.items() if not k.startswith("enc_q.")}
    cfg, embedder = _voice_config(ckpt, state, path)
    _check_state(state, expected_shapes(cfg, with_posterior=False), path.name)
    with torch.device("meta"):  # no random init: every tensor comes from the file
        net = Synthesizer(cfg, with_posterior=False)
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    net = net.eval().to(device)
    metadata = {k: v for k, v in ckpt.items() if k not in ("weight", "model", "optimizer")}
    return VoiceModel(path=path, config=cfg, version=cfg.version, sample_rate=cfg.sample_rate, use_f0=cfg.use_f0,
                      embedder=embedder, n_speakers=int(state["emb_g.weight"].shape[0]), metadata=metadata, net=net,
                      device=str(device))


def read_voice_metadata(path: Path | str) -> dict:
    """What the Models tab shows, without building the network (tensors are memory-mapped, not read).

    Keys: name, version, sample_rate, use_f0, epoch, step, embedder, size, content_dim, n_speakers, model_hash,
    author, vocoder, creation_date, info, rvc_compatible, file_size_mb.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, mmap=True)
    state = _state_of(ckpt, path)
    ours = ckpt.get("voiceapp") if isinstance(ckpt.get("voiceapp"), dict) else {}
    content_dim = int(state["enc_p.emb_phone.weight"].shape[1])
    version = str(ckpt.get("version") or "v1")
    config = ckpt.get("config")
    widths = (int(state["enc_p.emb_phone.weight"].shape[0]), int(state["dec.conv_pre.weight"].shape[0]))
    size = str(ours.get("size") or ("full" if widths == (192, 512) else "custom"))
    return {
        "name": str(ckpt.get("model_name") or path.stem),
        "version": version,
        "sample_rate": _rate_of(ckpt, config),
        "use_f0": "enc_p.emb_pitch.weight" in state,
        "epoch": _epoch_of(ckpt),
        "step": int(ckpt["step"]) if isinstance(ckpt.get("step"), (int, np.integer)) else None,
        "embedder": str(ckpt.get("embedder_model") or ours.get("embedder") or DEFAULT_EMBEDDER),
        "size": size,
        "content_dim": content_dim,
        "n_speakers": int(state["emb_g.weight"].shape[0]),
        "model_hash": ckpt.get("model_hash"),
        "author": ckpt.get("author") or "",
        "vocoder": str(ckpt.get("vocoder") or VOCODER),
        "creation_date": ckpt.get("creation_date"),
        "info": str(ckpt.get("info") or ""),
        "rvc_compatible": bool(size == "full" and content_dim == CONTENT_DIMS.get(version)
                               and str(ckpt.get("vocoder") or VOCODER) == VOCODER),
        "file_size_mb": round(path.stat().st_size / 2**20, 1),
    }


# ----------------------------------------------------------------------------------------------- writing
def model_hash(name: str, epoch: int, step: int, sr: Any, version: str, config: list) -> str:
    """Applio's model_hash: sha256 of f"{name}-{epoch}-{step}-{sr}-{version}-{config}"."""
    return hashlib.sha256(f"{name}-{epoch}-{step}-{sr}-{version}-{config}".encode()).hexdigest()


def export_voice_model(generator_state_dict: dict, cfg: SynthConfig, path: Path | str, *, epoch: int, step: int,
                       embedder: str, name: str, author: str = "", info: str | None = None, speakers_id: int = 1,
                       dataset_length: str | None = None) -> Path:
    """Write a voice model `.pth` that RVC WebUI and Applio load (for the full preset and ContentVec features).

    `generator_state_dict`: the training generator's weights (any dtype/device, with or without `enc_q`, either
    weight-norm spelling). Stored: fp16 weights without enc_q, the 18-entry config, RVC's info/sr/f0/version,
    Applio's metadata and our `voiceapp` entry. Written atomically. Raises ConfigError when the weights do not
    fit `cfg`.
    """
    path = Path(path)
    weight = {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype).clone()
              for k, v in to_rvc_keys(generator_state_dict).items() if not k.startswith("enc_q.")}
    try:
        _check_state(weight, expected_shapes(cfg, with_posterior=False), f"export of {name}")
    except InputError as err:
        raise ConfigError(str(err)) from err
    config = cfg.to_rvc_list()
    sr = rate_label(cfg.sample_rate)
    ckpt = {
        "weight": weight,
        "config": config,
        "info": info if info is not None else f"{epoch}epoch",
        "sr": sr,
        "f0": int(cfg.use_f0),
        "version": cfg.version,
        "epoch": int(epoch),
        "step": int(step),
        "creation_date": _dt.datetime.now().isoformat(timespec="seconds"),
        "model_hash": model_hash(name, epoch, step, sr, cfg.version, config),
        "dataset_length": dataset_length,
        "model_name": name,
        "author": author or "",
        "embedder_model": embedder,
        "speakers_id": int(speakers_id),
        "vocoder": VOCODER,
        "voiceapp": {"format": FORMAT_VERSION, "size": cfg.size, "content_dim": cfg.content_dim,
                     "embedder": embedder, "rvc_compatible": cfg.rvc_compatible},
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    log.info("wrote voice model %s (%s %s, epoch %s, step %s)", path, cfg.version, sr, epoch, step)
    return path


# ----------------------------------------------------------------------------------------------- pretrained
@dataclass(frozen=True)
class PretrainedLoad:
    """What `load_pretrained` did: names loaded, and names left at their initial values (partial loads only)."""

    path: Path
    loaded: tuple[str, ...]
    skipped: tuple[str, ...]


def load_pretrained(net: torch.nn.Module, path: Path | str, *, partial: bool = False) -> PretrainedLoad:
    """Load an RVC pretrained / checkpoint file (`{"model": state_dict}`, e.g. f0G40k.pth, f0D40k.pth, G_*.pth)
    into `net` (a Synthesizer or MultiPeriodDiscriminator).

    Strict by default: every name and shape must match, else InputError naming the mismatch (a content width
    mismatch, e.g. 768-d ContentVec pretrained vs 384-d whisper-tiny features, is spelled out). `partial=True`
    loads the tensors that fit and leaves the rest (e.g. a light decoder) as initialised.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    state = ckpt.get("model", ckpt)
    if not isinstance(state, dict):
        raise InputError(f"{path.name} holds no 'model' state dict; it is not an RVC pretrained/checkpoint file.")
    state = to_rvc_keys(state)
    own = net.state_dict()
    emb = "enc_p.emb_phone.weight"
    if emb in own and emb in state and own[emb].shape[1] != state[emb].shape[1]:
        msg = (f"{path.name} was trained on {state[emb].shape[1]}-wide content features, but this model takes "
               f"{own[emb].shape[1]}-wide ones")
        if not partial:
            raise InputError(f"{msg}. Extract features with the matching encoder (768: contentvec v2, 256: contentvec "
                             f"v1) or train without pretrained weights.")
        log.warning("%s; the content input layer starts from scratch", msg)
    fits = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not partial:
        _check_state(state, {k: tuple(v.shape) for k, v in own.items()}, path.name)
    with torch.no_grad():
        net.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in fits.items()}}, strict=True)
    skipped = tuple(sorted(set(own) - set(fits)))
    if skipped:
        log.info("%s: loaded %d tensors, %d left as initialised", path.name, len(fits), len(skipped))
    return PretrainedLoad(path, tuple(sorted(fits)), skipped)
