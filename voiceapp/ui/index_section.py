"""The Train tab's "Index" section: build an experiment's retrieval index and show what was built."""

from __future__ import annotations

from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, queued, run_job


def experiments_with_features(services: Services) -> list[str]:
    return [name for name in services.workspace.list_experiments()
            if services.workspace.experiment(name).content_dir.is_dir()]


def build_index_for(services: Services, experiment: str | None, progress: Any = None) -> str:
    """Handler of "Build index": returns a status line (rows, lists, build time, where the copy went)."""
    from voiceapp.index.build import IndexConfig, build_index, index_summary

    if not experiment:
        raise gr.Error("Pick an experiment that has extracted features.")
    token = services.start_job("index")

    def job(progress: Any) -> str:
        exp = services.workspace.experiment(experiment)
        path = build_index(exp, IndexConfig(), progress, token, voices_dir=services.workspace.voice_dir(exp.name))
        return "Built " + index_summary(path)

    return run_job(job, progress=progress)


def index_status(services: Services, experiment: str | None) -> str:
    """The index an experiment already has, if any."""
    from voiceapp.index.build import experiment_index, index_summary

    if not experiment:
        return ""
    found = experiment_index(services.workspace.experiment(experiment))
    return ("Current index: " + index_summary(found)) if found else "No index built yet for this experiment."


def build(services: Services) -> list[Any]:
    from voiceapp.ui.pickers import follow

    gr.Markdown("**Index** — a searchable copy of the training features. At conversion it pulls the output "
                "towards sounds the voice really made (the Inference tab's 'Index rate').")
    names = experiments_with_features(services)
    with gr.Row():
        experiment = gr.Dropdown(names, value=names[-1] if names else None, label="Experiment", scale=3,
                                 allow_custom_value=True,
                                 info="An experiment whose features are extracted (Train > Extract features).")
        run = gr.Button("Build index", variant="secondary", scale=1)
    message = message_box()
    status = gr.Textbox(label="Index status", interactive=False, lines=2,
                        value=index_status(services, names[-1] if names else None),
                        info="Rows, inverted lists and build time; the index is also copied beside the voice model.")

    def _build(name, progress=gr.Progress()):
        return build_index_for(services, name, progress=progress)

    queued(services, run.click, "index", "Build index", _build, [experiment], [message, status], **COMPUTE_QUEUE)
    experiment.change(lambda n: index_status(services, n), [experiment], [status])
    return [follow(services, experiment, lambda: experiments_with_features(services), key="index-experiment",
                   fallback="last")]
