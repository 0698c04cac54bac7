"""Choosing RVC's pretrained base generator/discriminator (`f0G40k.pth`, `f0D40k.pth`, ...) for a new run, and
loading one into a network (`load_pretrained`).

They live in models/base/pretrained_v2/ (v1: models/base/pretrained/), hold `{"model": state_dict}` (usually fp16)
and fit only the full preset with the same version, rate, f0 switch and content width (768 for v2, 256 for v1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from voiceapp.errors import ConfigError, InputError
from voiceapp.nets.commons import to_rvc_keys
from voiceapp.voices.file import read_checkpoint
from voiceapp.voices.rvc import check_state
from voiceapp.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainedChoice:
    generator: Path | None
    discriminator: Path | None
    message: str                      # what the user is told: which files, or why training starts from scratch

    @property
    def used(self) -> bool:
        return self.generator is not None


def read_pretrained_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a pretrained G/D file; one-line ConfigError for a torn, foreign or code-carrying file."""
    import pickle

    again = "Delete it and download it again (Models tab, or `python -m voiceapp assets download`)."
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text runs to many lines and suggests weights_only=False
        if "global" in str(err).lower():
            raise ConfigError(f"Pretrained model {path} was refused: it contains Python code besides weights (a "
                              f"pickle that would run code when loaded), so it was not loaded. {again}") from None
        raise ConfigError(f"Cannot read pretrained model {path}: not a readable PyTorch file. {again}") from None
    except Exception as err:  # noqa: BLE001 - turn a torn/foreign file into a message
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise ConfigError(f"Cannot read pretrained model {path} ({type(err).__name__}: {first}). {again}") from err
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{path.name} holds no model state dict; it is not an RVC pretrained G/D file.")
    return state


def content_width(state: dict[str, torch.Tensor]) -> int | None:
    weight = state.get("enc_p.emb_phone.weight")
    return int(weight.shape[1]) if weight is not None else None


def choose_pretrained(workspace: Workspace, mode: str, preset: str, version: str, sample_rate: int,
                      use_f0: bool, content_dim: int, encoder: str) -> PretrainedChoice:
    """Which pretrained files to start from, and a sentence saying so (or why not)."""
    if mode == "none":
        return PretrainedChoice(None, None, "Training from scratch (pretrained: none).")
    g_path = workspace.pretrained_path("G", version, sample_rate, use_f0)
    d_path = workspace.pretrained_path("D", version, sample_rate, use_f0)
    if preset != "full":
        return PretrainedChoice(None, None, f"Training from scratch: the {preset} preset has smaller layers than "
                                            f"RVC's pretrained models, which fit only the full preset.")
    if not (g_path.exists() and d_path.exists()):
        return PretrainedChoice(None, None, f"Training from scratch: {g_path.name}/{d_path.name} are not in "
                                            f"{g_path.parent}. Download them (Models tab, or `python -m voiceapp "
                                            f"assets download`) for much faster, better training.")
    width = content_width(read_pretrained_state(g_path))
    if width is not None and width != content_dim:
        return PretrainedChoice(None, None, f"Training from scratch: {g_path.name} expects {width}-wide content "
                                            f"features but this experiment's features ({encoder}) are "
                                            f"{content_dim}-wide. Extract features with contentvec to use it.")
    return PretrainedChoice(g_path, d_path, f"Starting from pretrained {g_path.name} and {d_path.name}.")


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
        check_state(state, {k: tuple(v.shape) for k, v in own.items()}, path.name)
    with torch.no_grad():
        net.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in fits.items()}}, strict=True)
    skipped = tuple(sorted(set(own) - set(fits)))
    if skipped:
        log.info("%s: loaded %d tensors, %d left as initialised", path.name, len(fits), len(skipped))
    return PretrainedLoad(path, tuple(sorted(fits)), skipped)


def base_assets_missing(workspace: Workspace) -> list[str]:
    """What RVC training lacks to learn a voice in useful time: ContentVec and pretrained G/D (any rate, v2)."""
    from voiceapp.features.encoders import contentvec_dir

    missing = [] if contentvec_dir(workspace) is not None else ["ContentVec"]
    folder = workspace.pretrained_v2_dir
    have = folder.is_dir() and any(folder.glob("f0G*.pth")) and any(folder.glob("f0D*.pth"))
    return missing + ([] if have else ["pretrained G/D"])
