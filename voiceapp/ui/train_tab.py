"""Train tab: 1. Extract features, 2. Train (a child process, live loss curves, TensorBoard), 3. Index.

Training runs in its own process (`python -m voiceapp train --config logs/<exp>/train.json`), so the app survives
a crash and Stop really stops; this tab only starts, stops and watches it through `logs/<exp>/events.jsonl`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.nets.presets import SAMPLE_RATES, VERSIONS
from voiceapp.train.config import PRETRAINED_CHOICES, TrainConfig
from voiceapp.ui import extract_section, index_section
from voiceapp.ui.jobs import beside, message_box, named, run_job

log = logging.getLogger(__name__)

_D = TrainConfig(experiment="defaults")
REFRESH_S = 5.0


def make_config(experiment: str, *, sample_rate: Any, version: str, preset: str, epochs: float,
                save_every_epochs: float, batch_size: float, save_latest_only: bool, save_voice_each_save: bool,
                pretrained: str, engine: str = "rvc", minutes: float = _D.minutes) -> TrainConfig:
    """The experiment and the settings controls' values by TrainConfig field name -> the frozen config."""
    if not (experiment or "").strip():
        raise gr.Error("Pick the experiment to train (the name you extracted features under).")
    if engine != "rvc":   # the quick and instant engines take the clips' rate and have one size
        return TrainConfig(experiment=experiment, engine=engine, minutes=float(minutes))
    return TrainConfig(experiment=experiment, sample_rate=int(sample_rate) if sample_rate else None,
                       version=version or None, preset=preset, epochs=int(epochs),
                       save_every_epochs=int(save_every_epochs), batch_size=int(batch_size),
                       save_latest_only=bool(save_latest_only), save_voice_each_save=bool(save_voice_each_save),
                       pretrained=pretrained)


def start_training(runner: Any, experiment: str, settings: Mapping[str, Any]) -> str:
    """Handler of Start: write train.json and start the child process (it resumes if checkpoints exist).
    `settings`: the settings controls' values by name (`make_config`'s keywords)."""
    def job(progress: Any) -> str:
        cfg = make_config(experiment, **settings)
        pid = runner.start(cfg)
        what = {"instant": "Building the instant voice of", "quick": f"Training the quick voice ({cfg.minutes:g} min) of"}
        return (f"{what.get(cfg.engine, 'Started training')} **{cfg.experiment}** (process {pid}). The status and "
                f"curves below update every few seconds.")

    return run_job(job)


def resume_training(runner: Any, experiment: str, epochs: float, batch_size: float,
                    minutes: float | None = None) -> str:
    """Handler of Resume: the saved settings, with the epochs and batch size (rvc) or minutes (quick) of the form."""
    def job(progress: Any) -> str:
        if not (experiment or "").strip():
            raise gr.Error("Pick the experiment to resume.")
        changes = {"epochs": int(epochs), "batch_size": int(batch_size)}
        if minutes is not None:
            changes["minutes"] = float(minutes)
        pid = runner.resume(experiment, **changes)
        return f"Resumed **{experiment}** from its last save (process {pid})."

    return run_job(job)


def stop_training(runner: Any, experiment: str) -> str:
    """Handler of Stop: asks the child to stop and returns at once; the status then says "Stopping…" until
    the child has saved and ended, and "Stopped at epoch N" after."""
    if not experiment:
        return "Nothing to stop."
    stopped = runner.stop(experiment, wait=False)
    return (f"**Stopping…** {experiment} finishes its current step and saves; **Resume** continues from there." if
            stopped else f"{experiment} is not training.")


def status_markdown(runner: Any, experiment: str) -> str:
    if not experiment:
        return "Pick an experiment."
    try:
        status = runner.status(experiment)
    except Exception as err:  # noqa: BLE001 - a status line must never break the page
        return f"Status unavailable: {err}"
    lines = [f"**{status.state.capitalize()}** — {status.message}"]  # Running, Stopping, Stopped, Done, Failed
    if status.pretrained:
        lines.append(status.pretrained)
    if status.last_mel_l1 is not None:
        lines.append(f"Validation mel L1: last {status.last_mel_l1:.3f}, best {status.best_mel_l1:.3f} "
                     f"(epoch {status.best_epoch}). When it stops improving for a while, the model is overtraining: "
                     f"use the `_best` voice model.")
    return "\n\n".join(lines)


def refresh(runner: Any, services: Services, experiment: str, last_seen: float | None) -> tuple[Any, Any, Any]:
    """Timer handler: (status markdown, loss figure or gr.skip(), last events mtime)."""
    from voiceapp.train.monitor import loss_figure

    md = status_markdown(runner, experiment)
    if not experiment:
        return md, None, None
    path = services.workspace.experiment(experiment).events_path
    mtime = path.stat().st_mtime if path.exists() else None
    if mtime is None:
        return md, None, None
    if last_seen is not None and mtime == last_seen:
        return md, gr.skip(), last_seen
    return md, loss_figure(path), mtime


def open_tensorboard(runner: Any, services: Services, experiment: str) -> str:
    logdir = services.workspace.experiment(experiment).root if experiment else services.workspace.logs_dir
    try:
        url = runner.start_tensorboard(logdir)
    except OSError as err:
        raise gr.Error(f"Could not start TensorBoard ({err}). Run `tensorboard --logdir {logdir}` yourself.") from err
    return f"TensorBoard (starting, give it a few seconds): [{url}]({url}) — logs from `{logdir}`"


def experiment_settings(services: Services, experiment: str) -> tuple[Any, Any, str]:
    """When an experiment is picked: its sample rate and version from the features (or saved train.json)."""
    from voiceapp.errors import MissingArtifactError
    from voiceapp.manifests import FeatureManifest

    if not experiment:
        return gr.update(), gr.update(), ""
    exp = services.workspace.experiment(experiment)
    try:
        manifest = FeatureManifest.read(exp)
    except MissingArtifactError:
        return gr.update(), gr.update(), (f"No features for **{exp.name}** yet: run *1. Extract features* first.")
    rate, version = manifest.sample_rate or None, manifest.version
    note = (f"Features: {len(manifest.clips)} clips at {rate} Hz, encoder `{manifest.encoder}` "
            f"({manifest.dim}-wide, {version}), f0 `{manifest.f0_method}`.")
    return (gr.update(value=str(rate)) if rate else gr.update(), gr.update(value=version) if version else gr.update(),
            note)


# The form's settings (TrainConfig field names), in the order `_train_section` lists their components.
SETTING_NAMES: tuple[str, ...] = ("sample_rate", "version", "preset", "epochs", "save_every_epochs", "batch_size",
                                  "save_latest_only", "save_voice_each_save", "pretrained", "engine", "minutes")


def saved_settings(services: Services, experiment: str | None) -> dict[str, Any]:
    """The settings saved with an experiment (logs/<exp>/train.json), by TrainConfig field name; {} when it has
    none. Read as plain JSON, so an older experiment's settings show even when this version would refuse them."""
    from voiceapp.workspace import read_json

    if not (experiment or "").strip():
        return {}
    try:
        data = read_json(services.workspace.experiment(experiment).train_config_path) or {}
    except Exception:  # noqa: BLE001 - an unreadable file: the form keeps its values, Start says what is wrong
        return {}
    return {k: data[k] for k in SETTING_NAMES if k in data and data[k] is not None} if isinstance(data, dict) else {}


def load_experiment(services: Services, experiment: str | None) -> list[Any]:
    """Handler of the experiment picker: the form shows the experiment's saved settings (the features' rate and
    version when it has none); returns one update per SETTING_NAMES, then the note under the form."""
    rate, version, note = experiment_settings(services, experiment)
    saved = saved_settings(services, experiment)
    updates: dict[str, Any] = {"sample_rate": rate, "version": version}
    for key, value in saved.items():
        if key == "sample_rate":
            updates[key] = gr.update(value=str(value))
        elif key == "preset":   # RVC's one trainable size; an older experiment's other size is shown as it is
            updates[key] = gr.update(choices=sorted({"full", str(value)}), value=value, visible=value != "full")
        else:
            updates[key] = gr.update(value=value)
    if saved:
        note = (note + "\n\n" if note else "") + (f"Showing the settings saved with **{experiment}** "
                                                  f"(`logs/{experiment}/train.json`).")
    return [updates.get(key, gr.update()) for key in SETTING_NAMES] + [note]


CPU_DEFAULTS: dict[str, Any] = {"epochs": 20, "save_every_epochs": 2}   # rvc on a CPU: an epoch takes minutes


def cpu_aware(services: Services, name: str) -> Any:
    """The form's default for TrainConfig field `name`: smaller where the app trains on the CPU."""
    if services.device == "cpu" and name in CPU_DEFAULTS:
        return CPU_DEFAULTS[name]
    return getattr(_D, name)


ENGINE_CHOICES = [
    ("quick: learns the voice in CPU minutes (Voiceapp only)", "quick"),
    ("instant: no training, ready in seconds (Voiceapp only)", "instant"),
    ("rvc: RVC's model, loads in RVC WebUI / Applio (needs RVC's base assets; a GPU to train in useful time)", "rvc"),
]


def engine_visibility(engine: str) -> tuple[Any, Any]:
    """(quick settings, rvc settings) visibility for the chosen engine."""
    return gr.update(visible=engine == "quick"), gr.update(visible=engine == "rvc")


def _train_section(services: Services, runner: Any) -> list[Any]:
    from voiceapp.train.cli import default_engine
    from voiceapp.ui.pickers import follow

    names = services.workspace.list_experiments()
    chosen, why = default_engine(services.workspace)
    with gr.Row():
        experiment = gr.Dropdown(label="Experiment", choices=names, value=names[-1] if names else None,
                                 allow_custom_value=True, scale=2,
                                 info="The name you extracted features under (a folder in logs/).")
        engine = gr.Radio(ENGINE_CHOICES, value=chosen, label="Voice engine", scale=3, info=why.split(": ", 1)[-1])
    with gr.Row(visible=chosen == "quick") as quick_row:
        minutes = gr.Slider(1, 120, value=_D.minutes, step=1, label="Training minutes",
                            info="Total training time of the quick engine (CPU), saved every minute; Resume "
                                 "continues up to it (raise it to train longer). Little is gained past ~20.")
    with gr.Column(visible=chosen == "rvc") as rvc_rows:
        with gr.Row():
            sample_rate = gr.Radio([str(r) for r in SAMPLE_RATES], value="40000", label="Sample rate (Hz)",
                                   info="Must match the dataset's clips; filled in from the features.")
            version = gr.Radio(list(VERSIONS), value="v2", label="Model version",
                               info="v2 is the current RVC model; filled in from the features.")
            preset = gr.Radio(["full"], value="full", label="Model size", visible=False)  # RVC's only size
        with gr.Row():
            epochs = gr.Slider(1, 1000, value=cpu_aware(services, "epochs"), step=1, label="Epochs",
                               info="Passes over the dataset. 200 is typical for clean data on a GPU; 20-50 for "
                                    "noisy data" + (" (proposed: 20, since this app trains on the CPU)." if
                                                    services.device == "cpu" else "."))
            save_every = gr.Slider(1, 100, value=cpu_aware(services, "save_every_epochs"), step=1,
                                   label="Save every N epochs",
                                   info="Checkpoint and validation frequency. A crash loses at most this many epochs.")
            batch_size = gr.Slider(1, 40, value=_D.batch_size, step=1, label="Batch size",
                                   info="Clips per step (per GPU). Lower it if the GPU runs out of memory.")
        with gr.Row():
            keep_latest = gr.Checkbox(value=_D.save_latest_only, label="Keep only the latest checkpoint",
                                      info="Saves disk: each checkpoint pair of the full model is about 1.3 GB.")
            voice_each_save = gr.Checkbox(value=_D.save_voice_each_save, label="Save a voice model at each save",
                                          info="Writes models/voices/<exp>/<exp>_e<epoch>_s<step>.pth (~55 MB each) "
                                               "so you can compare epochs.")
            pretrained = gr.Radio(list(PRETRAINED_CHOICES), value=_D.pretrained, label="Pretrained base",
                                  info="auto: start from RVC's pretrained f0G/f0D when they are in models/base and fit "
                                       "(much better results); none: from scratch.")
    features_note = gr.Markdown()
    with gr.Row():
        start = gr.Button("Start", variant="primary")
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
        resume = gr.Button("Resume")
        board = gr.Button("Open TensorBoard")
    message = message_box()
    status = gr.Markdown("Pick an experiment.")
    board_link = gr.Markdown()
    curves = gr.Plot(label="Losses (training by step; validation at each save)")
    seen = gr.State(None)
    timer = gr.Timer(REFRESH_S)

    settings = {"sample_rate": sample_rate, "version": version, "preset": preset, "epochs": epochs,
                "save_every_epochs": save_every, "batch_size": batch_size, "save_latest_only": keep_latest,
                "save_voice_each_save": voice_each_save, "pretrained": pretrained, "engine": engine,
                "minutes": minutes}   # by TrainConfig field name: make_config's keywords
    names = list(settings)
    engine.change(engine_visibility, [engine], [quick_row, rvc_rows])
    start.click(beside(lambda exp, *values: start_training(runner, exp, named(names, values)), 1),
                [experiment, *settings.values()], [message, status])
    resume.click(beside(lambda exp, e, b, m: resume_training(runner, exp, e, b, m), 1),
                 [experiment, epochs, batch_size, minutes], [message, status])
    stop.click(lambda exp: stop_training(runner, exp), [experiment], [status])
    board.click(beside(lambda exp: open_tensorboard(runner, services, exp), 1), [experiment], [message, board_link])
    experiment.change(lambda exp: load_experiment(services, exp), [experiment],
                      [*(settings[k] for k in SETTING_NAMES), features_note])
    experiment.change(lambda exp: refresh(runner, services, exp, None), [experiment], [status, curves, seen])
    timer.tick(lambda exp, last: refresh(runner, services, exp, last), [experiment, seen], [status, curves, seen],
               show_progress="hidden")
    return [follow(services, experiment, services.workspace.list_experiments, key="train-experiment",
                   fallback="last")]


def build(services: Services) -> list[Any]:
    from voiceapp.train.process import TrainingRunner
    from voiceapp.ui.pickers import after

    runner = TrainingRunner(services.workspace, services.device)
    gr.Markdown("Train a voice model from a dataset: extract features, train (checkpoints every few epochs; "
                "Stop and Resume any time), then build the retrieval index.")
    with gr.Accordion("1. Extract features", open=True):
        followers, extracted = extract_section.build(services)
    with gr.Accordion("2. Train", open=True):
        experiments = _train_section(services, runner)
    with gr.Accordion("3. Index", open=True):
        followers += experiments + index_section.build(services)
    after(extracted, followers[1:])   # a new experiment appears in both lists once its features are extracted
    return followers
