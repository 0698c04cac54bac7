"""Train tab, section "Extract features": dataset -> content features and pitch; plus the "F0 curve" viewer.

Built by `voiceapp.ui.train_tab` inside its accordion; layout and wiring only.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from voiceapp.features.encoders import ENCODERS, VERSIONS, default_encoder
from voiceapp.features.extract import FeatureConfig
from voiceapp.features.f0 import default_f0_method, f0_method_choices
from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, queued, run_job

JOB = "features"
_D = FeatureConfig()


def encoder_choices() -> list[tuple[str, str]]:
    return [(f"{name} - {text}", name) for name, text in ENCODERS.items() if name != "fake"]


def extract(services: Services, dataset: str | None, experiment: str, f0_method: str, encoder: str, version: str,
            progress: Any = None) -> str:
    """Handler of "Extract": runs the stage and returns a Markdown summary."""
    from voiceapp.features.extract import extract_features

    if not dataset:
        raise gr.Error("Pick a dataset (make one in the Dataset tab first).")
    if not (experiment or "").strip():
        raise gr.Error("Give the experiment a name; training and the model will use it.")
    token = services.start_job(JOB)

    def job(progress: Any) -> str:
        cfg = FeatureConfig(f0_method=f0_method or None, encoder=(encoder or "").strip() or None,
                            version=version or _D.version)
        result = extract_features(services.workspace.dataset(dataset), services.workspace.experiment(experiment),
                                  cfg, progress, token, services=services)
        lines = [f"**{len(result.clips)} clips** ready in `{result.exp.features_dir}`: encoder `{result.encoder}` "
                 f"({result.dim}-wide, {result.version}), f0 `{result.f0_method}`. {result.extracted} new, "
                 f"{result.reused} reused, {result.seconds:.0f} s."]
        stats = result.manifest.f0_stats or {}
        if stats.get("median_hz"):
            lines.append(f"\nPitch of the voice: median {stats['median_hz']:.0f} Hz (most between "
                         f"{stats['p5_hz']:.0f} and {stats['p95_hz']:.0f} Hz), "
                         f"{100 * stats['voiced_fraction']:.0f}% of the time voiced.")
        if result.failed:
            lines.append(f"\n{len(result.failed)} clip(s) skipped:")
            lines += [f"- {reason}" for reason in list(result.failed.values())[:20]]
        return "\n".join(lines)

    return run_job(job, progress=progress)


def stop(services: Services) -> str:
    return "Stopping after the current clip..." if services.cancel_job(JOB) else "Nothing is running."


def f0_curve(services: Services, audio_path: str | None, method: str, progress: Any = None) -> tuple[Any, Any, str]:
    """Handler of "Show f0": (figure, CSV path, summary)."""
    from voiceapp.features.curve import f0_curve as compute

    if not audio_path:
        raise gr.Error("Upload or record some audio first.")

    def job(progress: Any) -> tuple[Any, Any, str]:
        progress(0.1, f"f0 with {method}")
        curve = compute(audio_path, method, services)
        return curve.figure, str(curve.csv_path), curve.summary

    return run_job(job, progress=progress)


def datasets(services: Services) -> Any:
    return gr.update(choices=services.workspace.list_datasets())


def build(services: Services) -> tuple[list[Any], Any]:
    """The section's layout; returns (its pickers, the extraction event, for what follows it to chain on)."""
    from voiceapp.ui.pickers import follow

    ws = services.workspace
    gr.Markdown("Turn a dataset's clips into what training reads: content features (what is said) and the "
                "pitch curve (how it is sung or spoken). Stop any time; running it again continues.")
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", choices=ws.list_datasets(), value=None,
                              info="A dataset made in the Dataset tab.")
        experiment = gr.Textbox(label="Experiment name", placeholder="e.g. alice",
                                info="Features, checkpoints and the model are saved under this name.")
    with gr.Row():
        f0_method = gr.Dropdown(label="Pitch method", choices=f0_method_choices(), value=default_f0_method(ws),
                                info="rmvpe is the best all-rounder (needs its weights); fcpe works offline; "
                                     "harvest/crepe suit clean speech; pm/dio are fastest.")
        encoder = gr.Dropdown(label="Content encoder", choices=encoder_choices(), value=default_encoder(ws),
                              allow_custom_value=True,
                              info="contentvec matches community models; whisper-tiny works offline. "
                                   "You can also type the path of a HuBERT folder.")
        version = gr.Radio(list(VERSIONS), value=_D.version, label="Model version",
                           info="v2 is the current RVC model, v1 the older one (with contentvec: 768- or 256-wide "
                                "features; whisper-tiny gives 384-wide features for either).")
    with gr.Row():
        run = gr.Button("Extract features", variant="primary")
        halt = gr.Button("Stop", variant="stop")
    message = message_box()
    status = gr.Markdown(min_height=70)   # room for the progress bar's "clip n of N, about … left" while it runs
    with gr.Accordion("F0 curve", open=False):
        gr.Markdown("See the pitch a method finds in any audio, over its spectrogram, and download it as CSV "
                    "(one `time_s,f0_hz` row per 10 ms, 0 = unvoiced).")
        with gr.Row():
            audio = gr.Audio(label="Audio", type="filepath", sources=["upload", "microphone"])
            with gr.Column():
                curve_method = gr.Dropdown(label="Pitch method", choices=f0_method_choices(),
                                           value=default_f0_method(ws),
                                           info="Compare methods on your material before extracting.")
                show = gr.Button("Show f0")
                summary = gr.Markdown()
                csv = gr.File(label="f0 curve (CSV)", interactive=False)
        plot = gr.Plot(label="f0 over the spectrogram")

    def _extract(ds_: str, exp_: str, f0_: str, enc_: str, ver_: str, progress=gr.Progress()) -> str:
        return extract(services, ds_, exp_, f0_, enc_, ver_, progress=progress)

    def _curve(path_: str, method_: str, progress=gr.Progress()) -> tuple[Any, Any, str]:
        return f0_curve(services, path_, method_, progress=progress)

    extracted = queued(services, run.click, JOB, "Extract features", _extract, [dataset, experiment, f0_method, encoder, version], [message, status],
                          **COMPUTE_QUEUE)
    halt.click(lambda: stop(services), None, [status], queue=False)
    show.click(_curve, [audio, curve_method], [plot, csv, summary], **COMPUTE_QUEUE)
    return [follow(services, dataset, ws.list_datasets, key="features-dataset", fallback="keep")], extracted
