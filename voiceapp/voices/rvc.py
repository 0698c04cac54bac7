"""RVC voice models (engine "rvc"): the community `name.pth` format, read into and written from the synthesizer.

A voice file is `torch.save` of a dict:
    weight   fp16 generator state dict without `enc_q.*`, weight norm as `weight_g`/`weight_v`
    config   the 18-entry constructor list (SynthConfig.to_rvc_list); config[-1] = output sample rate
    info     "<epoch>epoch"       sr  "40k" (RVC) / 40000 (Applio)      f0  1/0      version  "v1"/"v2"
    Applio:  epoch, step, embedder_model, speakers_id, author, vocoder ("HiFi-GAN"), model_hash,
             creation_date, model_name, dataset_length
    ours:    voiceapp = {"format": 1, "size": "full"|"light"|"tiny", "content_dim": int, "embedder": str,
                         "rvc_compatible": bool}
Everything loads through `voiceapp.voices.file.read_checkpoint` (`torch.load(weights_only=True)`): a file
whose pickle needs code is refused, never run. What a file says about itself: `voices.file.read_voice_info`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voiceapp.errors import ConfigError, InputError
from voiceapp.features.f0 import coarse_f0
from voiceapp.nets.commons import to_rvc_keys
from voiceapp.nets.presets import SAMPLE_RATES, VERSIONS
from voiceapp.nets.synthesizer import NOISE_SCALE, SynthConfig, Synthesizer, parse_sample_rate, rate_label
from voiceapp.voices.file import DEFAULT_ENCODER, FORMAT_VERSION, VOCODER, int_flag, read_checkpoint, state_of
from voiceapp.workspace import atomic_path

log = logging.getLogger(__name__)



def _voice_config(ckpt: dict, state: dict, path: Path) -> tuple[SynthConfig, str]:
    """SynthConfig and embedder of a file, following RVC's loader defaults (f0 -> 1, version -> v1)."""
    ours = ckpt.get("voiceapp") if isinstance(ckpt.get("voiceapp"), dict) else {}
    extra = ckpt.get("extra") if isinstance(ckpt.get("extra"), dict) else {}
    config = ckpt.get("config") or extra.get("synth_config")
    version = str(ckpt.get("version") or extra.get("version") or "v1")
    if version not in VERSIONS:
        raise InputError(f"{path.name} says version {version!r}; only {VERSIONS} models are supported.")
    has_pitch = "enc_p.emb_pitch.weight" in state
    use_f0 = bool(int_flag(ckpt.get("f0"), default=1))
    if use_f0 != has_pitch:
        log.warning("%s: f0 flag says %s but the weights %s a pitch embedding; following the weights",
                    path.name, use_f0, "have" if has_pitch else "lack")
        use_f0 = has_pitch
    content_dim = int(state["enc_p.emb_phone.weight"].shape[1])
    size = str(ours.get("size") or extra.get("preset") or "full")
    embedder = str(ckpt.get("embedder_model") or ours.get("embedder") or extra.get("embedder")
                   or DEFAULT_ENCODER)
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


def check_state(state: dict, expected: dict[str, tuple[int, ...]], what: str) -> None:
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
    def engine(self) -> str:
        return "rvc"

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
    if path.suffix.lower() == ".safetensors":
        raise InputError(f"{path.name} is a Voiceapp voice of another engine than rvc (see `python -m voiceapp "
                         f"models info`); this conversion loads RVC .pth voices only.")
    ckpt = read_checkpoint(path)
    vocoder = str(ckpt.get("vocoder") or VOCODER)
    if vocoder != VOCODER:
        raise InputError(f"{path.name} uses the {vocoder} vocoder (Applio-only); Voiceapp, like RVC WebUI, loads "
                         f"HiFi-GAN models only. Retrain it with the HiFi-GAN vocoder.")
    state = state_of(ckpt, path)
    state = {k: v for k, v in state.items() if not k.startswith("enc_q.")}
    cfg, embedder = _voice_config(ckpt, state, path)
    check_state(state, expected_shapes(cfg, with_posterior=False), path.name)
    with torch.device("meta"):  # no random init: every tensor comes from the file
        net = Synthesizer(cfg, with_posterior=False)
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    net = net.eval().to(device)
    metadata = {k: v for k, v in ckpt.items() if k not in ("weight", "model", "optimizer")}
    return VoiceModel(path=path, config=cfg, version=cfg.version, sample_rate=cfg.sample_rate, use_f0=cfg.use_f0,
                      embedder=embedder, n_speakers=int(state["emb_g.weight"].shape[0]), metadata=metadata, net=net,
                      device=str(device))


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
        check_state(weight, expected_shapes(cfg, with_posterior=False), f"export of {name}")
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
