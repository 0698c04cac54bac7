"""Choosing RVC's pretrained base generator/discriminator (`f0G40k.pth`, `f0D40k.pth`, ...) for a new run.

They live in models/base/pretrained_v2/ (v1: models/base/pretrained/), hold `{"model": state_dict}` (usually fp16)
and fit only the full preset with the same version, rate, f0 switch and content width (768 for v2, 256 for v1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from voiceapp.errors import ConfigError
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
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - turn a torn/foreign file into a message
        raise ConfigError(f"Cannot read pretrained model {path} ({type(err).__name__}: {err}). Download it again "
                          f"(Models tab or `python -m voiceapp assets download`).") from err
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
