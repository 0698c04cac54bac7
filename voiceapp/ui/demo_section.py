"""The "Run the demo" panel: the whole pipeline offline on generated material, with its report."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, run_job


def run(services: Services, train_minutes: float, progress: Any = None) -> tuple[Any, ...]:
    """Handler: run the demo into outputs/demo-<time>/; returns (report markdown, pictures, 3 audio paths)."""
    from voiceapp.demo.run import DemoConfig, run_demo

    token = services.start_job("demo")
    out = services.workspace.outputs_dir / time.strftime("demo-%Y%m%d-%H%M%S")

    def job(progress: Any) -> tuple[Any, ...]:
        result = run_demo(out, services, DemoConfig(train_minutes=float(train_minutes)), progress, token)
        text = result.report_path.read_text(encoding="utf-8")
        body = text.split("## Pictures")[0] + f"\nFull report: `{result.report_path}`"
        pictures = [(str(p), name) for name, p in result.images.items()]
        audio = result.audio
        return body, pictures, str(audio["source"]), str(audio["converted"]), str(audio["tts converted"])

    return run_job(job, progress=progress)


def build(services: Services) -> None:
    with gr.Accordion("New here? Run the offline demo (about 10–15 minutes on a laptop CPU)", open=False):
        gr.Markdown("Makes its own recordings with the built-in eSpeak NG voices, prepares a dataset, extracts "
                    "features, trains a small model, builds the index, converts another voice into it and speaks a "
                    "typed sentence in it. Everything goes to `outputs/demo-<time>/`; your own models are not touched.")
        with gr.Row():
            minutes = gr.Slider(0.5, 60, value=9, step=0.5, label="Training time (minutes)",
                                info="Longer training gives a closer voice; 9 minutes keeps the demo under 15 minutes.")
            start = gr.Button("Run the demo", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        report = gr.Markdown()
        pictures = gr.Gallery(label="Loss curves, spectrograms and pitch before/after", columns=3, height=260)
        with gr.Row():
            source = gr.Audio(label="Source voice (before)", type="filepath", interactive=False)
            converted = gr.Audio(label="Converted (after)", type="filepath", interactive=False)
            spoken = gr.Audio(label="Typed text in the new voice", type="filepath", interactive=False)

    def _run(m, progress=gr.Progress()):
        return run(services, m, progress=progress)

    start.click(_run, [minutes], [report, pictures, source, converted, spoken], **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("demo") and None, None, None, queue=False)
