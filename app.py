"""Voiceapp web app: `python app.py [--host 127.0.0.1] [--port 7860] [--share] [--root DIR] [--device auto]`."""

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
    return parser.parse_args(argv)


def setup_logging(root: Path) -> None:
    (root / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                        handlers=[logging.StreamHandler(sys.stderr),
                                  logging.FileHandler(root / "logs" / "app.log", encoding="utf-8")])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")  # harmless torch notice
    setup_logging(args.root)
    from voiceapp.services import Services
    from voiceapp.ui.app import build_app, launch_kwargs

    services = Services.create(args.root, args.device)
    app = build_app(services)
    app.queue(default_concurrency_limit=4)
    app.launch(**launch_kwargs(services, args.host, args.port, args.share))


if __name__ == "__main__":
    main()
