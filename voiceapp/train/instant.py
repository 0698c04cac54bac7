"""The `instant` engine: a voice model made of the target's own frames, in seconds, with no training.

Reads the experiment's features (clips and f0), writes the target's content and WORLD frames
(`train/acoustic.py`) and packs them as `models/voices/<exp>/<exp>.safetensors`.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import ExperimentDir

log = logging.getLogger(__name__)


def engine_model_path(workspace: Any, name: str) -> Path:
    """models/voices/<name>/<name>.safetensors: where the instant and quick engines write their voice."""
    return workspace.voice_model_path(name).with_suffix(".safetensors")


def build_instant(exp: ExperimentDir, workspace: Any, progress: Progress = no_progress,
                  cancel: CancelToken = NEVER, author: str = "") -> Path:
    """Write and return the instant voice model of `exp` (its features must be extracted)."""
    from voiceapp.train.acoustic import analyze_target, load_target
    from voiceapp.voices.world import save_world_voice

    paths, encoder = analyze_target(exp, workspace, sub_progress(progress, 0.0, 0.95), cancel)
    target = load_target(paths, encoder, exp.name)
    meta = {"encoder": target.encoder, "steps": 0, "epochs": 0, "name": exp.name, "author": author, "clips": len(target.clips),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = save_world_voice(engine_model_path(workspace, exp.name), "instant", target.sample_rate, target.content,
                            target.sp, target.ap, target.f0, meta)
    progress(1.0, f"instant voice: {target.minutes:.1f} min of the target")
    log.info("instant voice %s from %.1f min (%d clips)", path, target.minutes, len(target.clips))
    return path
