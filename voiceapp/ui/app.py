"""The Gradio app: one tab per stage, layout and wiring only."""

from __future__ import annotations

import importlib
import logging

import gradio as gr

from voiceapp import __version__
from voiceapp.services import Services

log = logging.getLogger(__name__)

# (tab title, module with `build(services)`), in the order a user works.
TABS: list[tuple[str, str]] = [
    ("Dataset", "voiceapp.ui.dataset_tab"),
    ("Separate", "voiceapp.ui.separate_tab"),
    ("Train", "voiceapp.ui.train_tab"),
    ("Inference", "voiceapp.ui.infer_tab"),
    ("TTS", "voiceapp.ui.tts_tab"),
    ("Models", "voiceapp.ui.models_tab"),
]

CSS = """
.va-small {font-size: 0.85em; opacity: 0.8}
footer {display: none !important}
"""


def build_app(services: Services) -> gr.Blocks:
    """Build the Blocks app. Heavy libraries are imported by handlers on first use, not here."""
    with gr.Blocks(title="Voiceapp") as app:
        gr.Markdown(f"## Voiceapp <span class='va-small'>v{__version__} · workspace `{services.workspace.root}` · "
                    f"device `{services.device}`</span>")
        importlib.import_module("voiceapp.ui.demo_section").build(services)
        for title, module in TABS:
            with gr.Tab(title, id=title.lower(), elem_id=f"tab-{title.lower()}"):
                importlib.import_module(module).build(services)
    return app


def launch_kwargs(services: Services, host: str, port: int, share: bool) -> dict:
    return {"server_name": host, "server_port": port, "share": share, "css": CSS,
            "allowed_paths": [str(services.workspace.root)], "theme": gr.themes.Soft()}
