"""The demo panel above the tabs: clone a real voice (LJ Speech) offline and show the before/after report."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, queued, run_job

PLAYERS: tuple[tuple[str, str], ...] = (
    ("source", "Source speaker (before)"),
    ("target_reference", "Target: LJ Speech (held out)"),
    ("instant", "Instant voice (after, no training)"),
    ("quick", "Quick voice (after, trained)"),
    ("tts_quick", "Typed text in the quick voice"),
)


def run(services: Services, quick_minutes: float, source_file: str | None, progress: Any = None) -> tuple[Any, ...]:
    """Handler: run the demo into outputs/demo-<time>/; returns (report markdown, pictures, one path per player)."""
    from voiceapp.demo.run import DemoConfig, run_demo

    token = services.start_job("demo")
    out = services.workspace.outputs_dir / time.strftime("demo-%Y%m%d-%H%M%S")
    cfg = DemoConfig(quick_minutes=float(quick_minutes), source=source_file or None)

    def job(progress: Any) -> tuple[Any, ...]:
        result = run_demo(out, services, cfg, progress, token)
        body = result.summary + f"\n\nFull report with the time per stage: `{result.report_path}`"
        pictures = [(str(p), name.replace("_", " ")) for name, p in result.images.items()]
        return (body, pictures, *(str(result.audio[key]) for key, _ in PLAYERS))

    return run_job(job, progress=progress)


def build(services: Services) -> None:
    from voiceapp.demo.run import DemoConfig

    d = DemoConfig()
    with gr.Group(elem_id="demo-panel"):
        gr.Markdown(f"### ▶ New here? Hear Voiceapp clone a real voice — about {d.quick_minutes + 4:.0f} minutes "
                    "on a laptop CPU, nothing to download\n"
                    "The target is 3.3 minutes of **LJ Speech** (public domain, shipped with Voiceapp). Another real "
                    "speaker (Allison Smith's voice prompts when Debian's `asterisk-core-sounds-en-g722` is "
                    "installed, else eSpeak NG — or your own recording below) is converted with an **instant** voice "
                    "(no training) and a **quick** voice (trained on the CPU), a typed sentence is spoken in the "
                    "quick voice, and the report puts similarity, intelligibility and naturalness before/after side "
                    "by side. Everything goes to `outputs/demo-<time>/`; your own models are not touched.")
        with gr.Row(equal_height=True):
            start = gr.Button("Run the demo", variant="primary", scale=2, elem_id="demo-run")
            stop = gr.Button("Stop", variant="stop", scale=1)
            minutes = gr.Slider(0.5, 60, value=d.quick_minutes, step=0.5, scale=3,
                                label="Quick voice training (minutes)",
                                info=f"Longer gives a closer voice; {d.quick_minutes:g} keeps the demo near "
                                     f"{d.quick_minutes + 4:.0f} minutes on 2 cores.")
            source = gr.Audio(label="Your own recording as the source (optional)", type="filepath",
                              sources=["upload", "microphone"], scale=3)
        message = message_box()
        report = gr.Markdown()
        with gr.Row():
            players = [gr.Audio(label=label, type="filepath", interactive=False) for _, label in PLAYERS]
        pictures = gr.Gallery(label="Spectrograms with pitch (source, instant, quick, target) and the quick loss",
                              columns=5, height=240)

    def _run(m, s, progress=gr.Progress()):
        return run(services, m, s, progress=progress)

    queued(services, start.click, "demo", "Demo", _run, [minutes, source], [message, report, pictures, *players],
                **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("demo") and None, None, None, queue=False)
