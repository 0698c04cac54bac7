"""The Gradio app: one tab per stage, layout and wiring only."""

from __future__ import annotations

import logging
from types import ModuleType

import gradio as gr

from voiceapp import __version__
from voiceapp.services import Services
from voiceapp.ui import (dataset_tab, demo_section, infer_tab, jobs_panel, live_tab, models_tab, pickers, separate_tab,
                         train_tab, tts_tab)

log = logging.getLogger(__name__)

# (tab title, module with `build(services)`), in the order a user works. `build` may return the `pickers.Picker`s
# it made: they are read again when the page loads and when the tab is shown.
TAB_MODULES: list[tuple[str, ModuleType]] = [
    ("Dataset", dataset_tab),
    ("Separate", separate_tab),
    ("Train", train_tab),
    ("Inference", infer_tab),
    ("Live", live_tab),
    ("TTS", tts_tab),
    ("Models", models_tab),
]
TABS: list[tuple[str, str]] = [(title, module.__name__) for title, module in TAB_MODULES]  # (title, module name)

# The order a user works in, shown under the header (the tab titles stay plain so links and tests can name them).
PATH_LINE = ("**The path:** **1 Dataset** (your recordings → clips) → **2 Separate** (only when music is behind the "
             "voice) → **3 Train** (features, training, index) → **4 Inference**, **Live** or **TTS** (convert "
             "audio, speak into the microphone, speak text). **Models**: import, export and base assets. New here? Run "
             "the demo below first.")

CSS = """
#va-path {border-left: 4px solid #6366f1; padding: 4px 12px; background: rgba(99, 102, 241, 0.07);
          border-radius: 6px}
.va-small {font-size: 0.85em; opacity: 0.8}
footer {display: none !important}
.va-message {border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.08); padding: 6px 12px;
             border-radius: 6px}
""" + live_tab.CSS


def build_app(services: Services) -> gr.Blocks:
    """Build the Blocks app. Heavy libraries (torch, faiss) are imported by handlers on first use, not here."""
    # uploads and the copies of results Gradio serves are deleted after a day (and when the server stops)
    with gr.Blocks(title="Voiceapp", delete_cache=(3600, 86400)) as app:
        gr.Markdown(f"## Voiceapp <span class='va-small'>v{__version__} · workspace `{services.workspace.root}` · "
                    f"device `{services.device}`</span>")
        gr.Markdown(PATH_LINE, elem_id="va-path")
        jobs_panel.build(services, app)
        demo_section.build(services)
        for title, module in TAB_MODULES:
            with gr.Tab(title, id=title.lower(), elem_id=f"tab-{title.lower()}") as tab:
                followers = module.build(services) or []
            pickers.wire([app.load, tab.select], followers)
    return app


def launch_kwargs(services: Services, host: str, port: int, share: bool,
                  auth: list[tuple[str, str]] | None = None) -> dict:
    """`launch()` arguments: Gradio serves the workspace's outputs and dataset clips only (voiceapp.ui.serving);
    `auth` is a list of (user, password) logins, or None for no login. The Live tab's socket and scripts are
    routes of the same server (voiceapp.live.server), behind the same login."""
    from voiceapp.live.server import live_routes
    from voiceapp.ui.serving import file_access

    return {"server_name": host, "server_port": port, "share": share, "css": CSS, "theme": gr.themes.Soft(),
            **file_access(services.workspace), "auth": auth, "head": live_tab.LIVE_HEAD,
            "app_kwargs": {"routes": live_routes(services)},
            "auth_message": "Voiceapp: log in with the user and password given to the server (--auth)." if auth
            else None}
