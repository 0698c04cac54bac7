"""`python -m voiceapp ...`: one subcommand per stage, each calling the function its tab calls.

Exit status: 0 done; 2 the user's input or setup is wrong (one line on stderr: what, and what to do);
1 anything else (the traceback goes to logs/voiceapp.log).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Callable

from voiceapp import __version__
from voiceapp.errors import VoiceAppError, storage_error

log = logging.getLogger("voiceapp")


def command_modules() -> list[ModuleType]:
    """The modules that add the subcommands, in --help order; each has `register(subparsers, common)`, which adds
    its subcommand(s) and sets `func(args, services)`. Imported here rather than at the top so that importing
    `voiceapp.cli` stays cheap (the stages pull in numpy, scipy and torch)."""
    from voiceapp.assets import cli as assets_cli
    from voiceapp.cover import cli as cover_cli
    from voiceapp.dataset import cli as dataset_cli
    from voiceapp.demo import cli as demo_cli
    from voiceapp.features import cli as features_cli
    from voiceapp.index import cli as index_cli
    from voiceapp.infer import cli as infer_cli
    from voiceapp.live import cli as live_cli
    from voiceapp.separate import cli as separate_cli
    from voiceapp.train import cli as train_cli
    from voiceapp.tts import cli as tts_cli
    from voiceapp.voices import cli as voices_cli

    return [dataset_cli, separate_cli, features_cli, train_cli, tts_cli, infer_cli, cover_cli, index_cli,
            voices_cli, assets_cli, demo_cli, live_cli]


DEFAULT_ROOT = Path(__file__).resolve().parent.parent


def _common_parser(suppress: bool) -> argparse.ArgumentParser:
    """--root/--device accepted before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    common.add_argument("--root", type=Path, default=default,
                        help="workspace holding models/ datasets/ logs/ (default: the app folder)")
    common.add_argument("--device", default=argparse.SUPPRESS if suppress else "auto",
                        help="auto, cpu, cuda or cuda:N (default: auto)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="print informational messages")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voiceapp", parents=[_common_parser(False)],
        description="Voiceapp: prepare datasets, extract features, train RVC voice models and convert audio, offline.")
    parser.add_argument("--version", action="version", version=f"voiceapp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_parser(True)
    for module in command_modules():
        module.register(subparsers, common)
    return parser


def _setup_logging(root: Path, verbose: bool) -> Path | None:
    """Console messages on stderr, everything in logs/voiceapp.log; None when that file cannot be written
    (a read-only workspace): then a one-line warning, and the console only."""
    logger = logging.getLogger("voiceapp")
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(console)
    log_path = root / "logs" / "voiceapp.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError as err:
        print(f"warning: cannot write the log file {log_path} ({err.strerror or err}); messages go to this "
              f"terminal only.", file=sys.stderr)
        return None
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger.addHandler(file_handler)
    return log_path


def _report_crash(err: Exception, log_path: Path | None) -> None:
    """The one line for an unexpected failure; its traceback goes to the log (or stderr when there is none)."""
    import traceback

    log.debug("command failed", exc_info=True)
    logging.getLogger("voiceapp").handlers[0].setLevel(logging.CRITICAL)
    if log_path is not None:
        try:
            with open(log_path, "a", encoding="utf-8") as handle:
                traceback.print_exc(file=handle)
        except OSError:
            log_path = None
    if log_path is None:
        traceback.print_exc(file=sys.stderr)
    where = f"Details in {log_path}" if log_path is not None else "Details above (no log file could be written)"
    print(f"error: unexpected {type(err).__name__}: {err}. {where}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one CLI command; returns the exit status instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad flag (argparse printed why)
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    if not args.command:
        parser.print_help()
        return 2
    root = Path(args.root or DEFAULT_ROOT)
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")  # harmless torch notice
    log_path = _setup_logging(root, args.verbose)
    func: Callable = args.func
    try:
        from voiceapp.services import Services

        services = Services.create(root, args.device)
        return int(func(args, services) or 0)
    except VoiceAppError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled.", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns crashes into an exit status
        setup = storage_error(err)  # a full, read-only or forbidden disk is the user's setup, not a crash
        if setup is not None:
            log.debug("command failed", exc_info=True)
            print(f"error: {setup}", file=sys.stderr)
            return 2
        _report_crash(err, log_path)
        return 1
