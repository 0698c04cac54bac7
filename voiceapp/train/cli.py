"""`voiceapp train EXP [...]` and `voiceapp train --config logs/EXP/train.json` (what the Train tab runs)."""

from __future__ import annotations

import argparse
import signal
import subprocess
from pathlib import Path

from voiceapp.errors import Cancelled, ConfigError
from voiceapp.progress import TqdmProgress
from voiceapp.train.config import (ENGINES, PRECISIONS, PRESETS, PRETRAINED_CHOICES, SAMPLE_RATES, VERSIONS,
                                   TrainConfig)
from voiceapp.workspace import write_json_atomic

_FLAGS = {  # flag attribute -> TrainConfig field
    "epochs": "epochs", "save_every": "save_every_epochs", "batch_size": "batch_size", "sample_rate": "sample_rate",
    "version": "version", "preset": "preset", "pretrained": "pretrained", "precision": "precision",
    "validation_clips": "validation_clips", "workers": "num_workers", "gpus": "gpus", "author": "author",
    "seed": "seed", "save_latest_only": "save_latest_only", "voice_each_save": "save_voice_each_save",
    "use_f0": "use_f0", "engine": "engine", "minutes": "minutes", "max_steps": "max_steps",
}


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d = TrainConfig(experiment="x")
    p = subparsers.add_parser(
        "train", parents=[common], help="train (or resume) a voice model from extracted features",
        description="Train the RVC voice model of experiment EXP from logs/EXP/features/. Running it again "
                    "resumes from the latest checkpoint; settings given here replace those in logs/EXP/train.json. "
                    "With several GPUs it starts one DDP process per GPU (torchrun).")
    p.add_argument("experiment", nargs="?", help="experiment name (folder under logs/)")
    p.add_argument("--config", type=Path, help="train from this train.json (as the Train tab does)")
    p.add_argument("--engine", choices=ENGINES,
                   help="rvc: RVC's model (default when RVC's base assets are in models/base); quick: a small "
                        "network in CPU minutes (default without them); instant: no training, seconds")
    p.add_argument("--minutes", type=float, help=f"quick: training time budget (default {d.minutes:g})")
    p.add_argument("--max-steps", type=int, help="quick: stop at this step instead of the time budget")
    p.add_argument("--epochs", type=int, help=f"total epochs (default {d.epochs})")
    p.add_argument("--save-every", type=int, help=f"save checkpoints every N epochs (default {d.save_every_epochs})")
    p.add_argument("--batch-size", type=int, help=f"clips per step and GPU (default {d.batch_size})")
    p.add_argument("--sample-rate", type=int, choices=SAMPLE_RATES, help="default: the rate of the feature clips")
    p.add_argument("--version", choices=VERSIONS, help="default: the version the features were extracted for")
    p.add_argument("--preset", choices=PRESETS, help="rvc: full (RVC-compatible, default) or tiny (tests); "
                                                          "quick: full or tiny")
    p.add_argument("--pretrained", choices=PRETRAINED_CHOICES, help="auto: RVC's f0G/f0D when present (default)")
    p.add_argument("--precision", choices=PRECISIONS, help="autocast on CUDA (default auto)")
    p.add_argument("--validation-clips", type=int, help=f"clips held out (default {d.validation_clips})")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    p.add_argument("--gpus", type=int, help="DDP processes on CUDA (default 0 = every visible GPU)")
    p.add_argument("--author", help="stored in the voice model")
    p.add_argument("--seed", type=int)
    p.add_argument("--keep-all", dest="save_latest_only", action="store_false", default=None,
                   help="keep every checkpoint (default: only the latest)")
    p.add_argument("--no-voice-each-save", dest="voice_each_save", action="store_false", default=None,
                   help="write a voice model only at the end")
    p.add_argument("--no-f0", dest="use_f0", action="store_false", default=None, help="train a model without pitch")
    p.add_argument("--export-step", type=int, metavar="STEP", default=None,
                   help="do not train: write the voice model of checkpoint G_STEP.pth (0: the latest) and exit")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, services) -> TrainConfig:
    """The config of this run: --config file, else logs/EXP/train.json (if any), with the given flags on top."""
    if args.config is not None:
        base = TrainConfig.load(args.config)
    elif not args.experiment:
        raise ConfigError("Name the experiment (`voiceapp train EXP`) or give --config logs/EXP/train.json.")
    else:
        exp = services.workspace.experiment(args.experiment)
        base = TrainConfig.load(exp.train_config_path) if exp.train_config_path.exists() else \
            TrainConfig(experiment=exp.name)
    changes = {field: getattr(args, flag) for flag, field in _FLAGS.items() if getattr(args, flag, None) is not None}
    if "engine" not in changes and args.config is None and not exp_has_config(services, base):
        engine, why = default_engine(services.workspace)
        changes["engine"] = engine
        print(why)
    return base.replace(**changes) if changes else base


def exp_has_config(services, cfg: TrainConfig) -> bool:
    return services.workspace.experiment(cfg.experiment).train_config_path.exists()


def default_engine(workspace) -> tuple[str, str]:
    """(engine, one line saying why): rvc with RVC's base assets (ContentVec and pretrained G/D), else quick."""
    from voiceapp.train.pretrained import base_assets_missing

    missing = base_assets_missing(workspace)
    if not missing:
        return "rvc", "engine rvc: RVC's base assets are in models/base."
    return "quick", (f"engine quick: RVC's base assets are missing ({', '.join(missing)}); the quick engine learns a "
                     f"voice in CPU minutes without them (`--engine rvc` to train RVC anyway).")


def run(args: argparse.Namespace, services) -> int:
    from voiceapp.train.distributed import dist_from_env, launch_command, wanted_processes
    from voiceapp.train.loop import train

    if args.export_step is not None:
        from voiceapp.train.loop import export_checkpoint

        if not args.experiment:
            raise ConfigError("Name the experiment whose checkpoint to export: `voiceapp train EXP --export-step N`.")
        path = export_checkpoint(services.workspace, services.workspace.experiment(args.experiment),
                                 args.export_step or None)
        print(f"wrote {path}")
        return 0
    cfg = config_from_args(args, services)
    exp = services.workspace.experiment(cfg.experiment)
    if cfg.engine != "rvc":
        return _run_engine(cfg, exp, services, args.config)
    dist_info = dist_from_env()
    processes = wanted_processes(services.device, cfg.gpus)
    if processes > 1 and not dist_info.enabled:
        pending = exp.pending_train_config_path
        write_json_atomic(pending, cfg.to_json())   # every DDP process reads it; rank 0 saves it once ready
        command = launch_command(pending, services.workspace.root, services.device, processes)
        print(f"starting {processes} DDP processes: {' '.join(command)}")
        return subprocess.call(command)
    def run_rvc(cancel):
        with TqdmProgress(f"train {exp.name}", disable=not dist_info.is_main or None) as bar:
            return train(exp, cfg, bar, cancel, workspace=services.workspace, device=services.device,
                         dist_info=dist_info,
                         on_ready=lambda: dist_info.is_main and save_config(exp, cfg, args.config))

    result = _until_stopped(services, exp.name, run_rvc)
    if result is None:
        return 130
    if dist_info.is_main:
        best = f", best validation epoch {result.best_epoch}" if result.best_epoch else ""
        print(f"trained {exp.name} to epoch {result.epoch} (step {result.step}){best}.")
        for path in result.voice_models:
            print(f"  {path}")
    return 0


def save_config(exp, cfg: TrainConfig, given: Path | None) -> None:
    """Once the run has really started (model built, checkpoints read): `cfg` becomes the experiment's saved
    settings (`train.json`), and the pending file the Train tab wrote for this start is removed. Before that
    moment a failure leaves train.json as it was."""
    saved = exp.train_config_path
    try:
        same = saved.exists() and TrainConfig.load(saved) == cfg
    except ConfigError:
        same = False   # an unreadable train.json is replaced by the settings that did start
    if not same:
        write_json_atomic(saved, cfg.to_json())
    pending = exp.pending_train_config_path
    if given is not None and pending.exists() and pending.resolve() == Path(given).resolve():
        pending.unlink(missing_ok=True)


def _run_engine(cfg: TrainConfig, exp, services, given: Path | None) -> int:
    """The instant and quick engines (one process, CPU)."""
    if cfg.engine == "instant":
        from voiceapp.train.instant import build_instant

        with TqdmProgress(f"instant {exp.name}") as bar:
            path = build_instant(exp, services.workspace, bar, services.cancel, author=cfg.author)
        save_config(exp, cfg, given)
        print(f"wrote {path} (instant voice: converts at once; `--engine quick` learns a better one in minutes)")
        return 0
    from voiceapp.train.quick import train_quick

    def run_quick(cancel):
        with TqdmProgress(f"quick {exp.name}") as bar:
            return train_quick(exp, cfg, services.workspace, bar, cancel,
                               on_ready=lambda: save_config(exp, cfg, given))

    result = _until_stopped(services, exp.name, run_quick)
    if result is None:
        return 130
    print(f"trained {exp.name} (quick) for {result.trained_s / 60:.1f} min, {result.step} steps"
          + (f", validation L1 {result.best_l1:.3f}" if result.best_l1 is not None else "") + f".\n  {result.voice_model}")
    return 0


def _until_stopped(services, name: str, run):
    """`run(cancel)` with SIGTERM (the Train tab's Stop) setting the cancel token; None, after saying how to resume,
    when it was stopped."""
    cancel = services.cancel
    previous = signal.signal(signal.SIGTERM, lambda *_: cancel.set()) if _main_thread() else None
    try:
        return run(cancel)
    except Cancelled:
        print(f"stopped; `voiceapp train {name}` resumes from the last save.")
        return None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
