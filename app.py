"""Voiceapp web app: `python app.py [--host 127.0.0.1] [--port 7860] [--share] [--root DIR] [--device auto]
[--auth USER:PASSWORD | --auth-file FILE]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Voiceapp: a local voice-cloning studio (RVC).")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to bind (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    parser.add_argument("--root", type=Path, default=ROOT, help="workspace folder (models/, datasets/, logs/)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--auth", action="append", metavar="USER:PASSWORD",
                        help="require this login (repeat for several users); advised with --share or --host 0.0.0.0")
    parser.add_argument("--auth-file", type=Path, metavar="FILE", help="logins, one USER:PASSWORD a line")
    return parser.parse_args(argv)


def setup_logging(root: Path) -> None:
    """Log to stderr and logs/app.log; a workspace where that cannot be written gets a one-line warning."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    log_path = root / "logs" / "app.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    except OSError as err:
        print(f"warning: cannot write the log file {log_path} ({err.strerror or err}); messages go to this "
              f"terminal only.", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                        handlers=handlers)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from voiceapp.errors import VoiceAppError
    from voiceapp.ui.serving import exposure_warnings, instance_upload_dir, is_shared, read_logins

    try:
        logins = read_logins(args.auth, args.auth_file)
    except VoiceAppError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    for warning in exposure_warnings(args.host, args.share, logins):
        print(warning, file=sys.stderr)
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")  # harmless torch notice
    setup_logging(args.root)
    instance_upload_dir()  # before Gradio builds anything: this server's uploads, served by it alone
    from voiceapp.services import Services
    from voiceapp.ui.app import build_app, launch_kwargs

    services = Services.create(args.root, args.device, shared=is_shared(args.host, args.share))
    app = build_app(services)
    app.queue(default_concurrency_limit=4)
    app.launch(prevent_thread_lock=True, **launch_kwargs(services, args.host, args.port, args.share, auth=logins))
    from voiceapp.live.server import pcm_sockets_uncompressed

    pcm_sockets_uncompressed(app.server)      # before any Live socket opens
    app.block_thread()


if __name__ == "__main__":
    main()
