"""Inference tab: pick a voice model, drop audio (or record), convert; one file or many."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr

from voiceapp.audio import SAVE_FORMATS
from voiceapp.infer.pipeline import InferConfig
from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, named, queued, run_job, typed_folder

_D = InferConfig()
NO_INDEX = ""
RESAMPLE_CHOICES = [("model's own rate", 0), ("16000", 16000), ("22050", 22050), ("24000", 24000),
                    ("32000", 32000), ("44100", 44100), ("48000", 48000)]
STATUS_HEADERS = ["file", "status", "output"]


# ----------------------------------------------------------------------------------------------- choices

def model_choices(services: Services, every_save: bool = False) -> list[tuple[str, str]]:
    """(label, voice file path): one entry per model, as the Models tab lists them; with `every_save`, also the
    voice files saved during training (`<name>_e10_s100`, `<name>_best`) to compare epochs."""
    from voiceapp.voices.store import list_models, voice_files

    if not every_save:
        return [(m.name, str(m.path)) for m in list_models(services.workspace)]
    return [(p.stem if p.stem == p.parent.name else f"{p.parent.name} / {p.stem}", str(p))
            for p in voice_files(services.workspace)]


def index_choices(services: Services) -> list[tuple[str, str]]:
    from voiceapp.voices.store import list_indexes

    return [("no index", NO_INDEX)] + [(f"{p.parent.name} / {p.name}", str(p))
                                        for p in list_indexes(services.workspace)]


def f0_choices(services: Services) -> tuple[list[tuple[str, str]], str]:
    from voiceapp.features.f0 import available_f0_methods, default_f0_method, f0_method_choices

    usable = set(available_f0_methods(services.workspace))
    return [c for c in f0_method_choices() if c[1] in usable], default_f0_method(services.workspace)


def refresh(services: Services, current: str | None) -> tuple[Any, Any]:
    """Handler of the refresh button: re-read the model and index lists."""
    models = model_choices(services)
    values = [v for _, v in models]
    value = current if current in values else (values[0] if values else None)
    return gr.update(choices=models, value=value), gr.update(choices=index_choices(services))


def select_model(services: Services, model: str | None) -> tuple[Any, str, Any]:
    """Handler of the model dropdown: (index matched by name, model description, speaker id range)."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.voices.store import describe_model, find_index

    if not model:
        return gr.update(choices=index_choices(services), value=NO_INDEX), "No model selected.", gr.update()
    index = find_index(Path(model), services.workspace)
    try:
        description = describe_model(model)
        n_speakers = _speakers(model)
    except VoiceAppError as err:
        description, n_speakers = f"Cannot read {Path(model).name}: {err}", 1
    index_note = f"\n\nIndex: `{index.name}`" if index else "\n\nNo index found beside this model (retrieval off)."
    return (gr.update(choices=index_choices(services), value=str(index) if index else NO_INDEX),
            description + index_note, gr.update(maximum=max(n_speakers - 1, 0), value=0))


def _speakers(model: str) -> int:
    from voiceapp.voices.file import read_voice_info

    return max(read_voice_info(Path(model)).speakers, 1)


def check_input(audio_path: str | None) -> Any:
    """Handler of an upload to "Input": says at once when the file cannot be read as audio (instead of at
    Convert), else shows its length and format; for the message box under Convert."""
    from voiceapp.audio.io import audio_info
    from voiceapp.errors import VoiceAppError

    if not audio_path:
        return gr.update(value="", visible=False)
    try:
        info = audio_info(audio_path)
    except VoiceAppError as err:
        return gr.update(value=f"⚠ **Cannot use this upload** — {err}", visible=True)
    if info.frames <= 0:
        return gr.update(value=f"⚠ **Cannot use this upload** — {Path(audio_path).name} holds no audio; upload "
                               f"or record another file.", visible=True)
    return gr.update(value="", visible=False)


# ----------------------------------------------------------------------------------------------- convert

def make_config(*, transpose_semitones: float, f0_method: str | None, index_rate: float, filter_radius: float,
                rms_mix_rate: float, protect: float, resample_sr: Any, speaker_id: float, seed: float,
                f0_curve: str | None, neighbour_blend: float = _D.neighbour_blend) -> InferConfig:
    """The settings controls' values, by InferConfig field name (see `_settings`) -> the frozen config."""
    return InferConfig(transpose_semitones=float(transpose_semitones), f0_method=f0_method or None,
                       index_rate=float(index_rate), filter_radius=int(filter_radius),
                       rms_mix_rate=float(rms_mix_rate), protect=float(protect), resample_sr=int(resample_sr or 0),
                       speaker_id=int(speaker_id or 0), seed=int(seed or 0), f0_curve=f0_curve or None,
                       neighbour_blend=float(neighbour_blend))


def engine_controls(model: str | None) -> tuple[Any, Any, Any]:
    """Visibility of (index picker, index rate, neighbour blend) for the picked model's engine: rvc models use an
    index, instant/quick models match against their own frames."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.voices.file import read_voice_info

    try:
        own = bool(model) and read_voice_info(Path(model)).engine != "rvc"
    except VoiceAppError:
        own = False
    return gr.update(visible=not own), gr.update(visible=not own), gr.update(visible=own)


def convert_one(services: Services, model: str | None, index: str | None, audio_path: str | None, fmt: str,
                settings: Mapping[str, Any], progress: Any = None) -> tuple[str, str]:
    """Handler of "Convert": returns (path of the converted file, result text with time breakdown and RTF).
    `settings`: the settings controls' values by name (`make_config`'s keywords)."""
    from voiceapp.infer.models import conversion_output_path
    from voiceapp.infer.pipeline import convert_file, load_voice
    from voiceapp.train.monitor import validation_still_falling
    from voiceapp.voices.store import quality_hint

    if not model:
        raise gr.Error("Pick a voice model first (import one in the Models tab, or train one).")
    if not audio_path:
        raise gr.Error("Upload or record the audio to convert.")
    token = services.start_job("infer")

    def job(progress: Any) -> tuple[str, str]:
        cfg = make_config(**settings)
        voice = load_voice(model, services)
        out = conversion_output_path(services.workspace, model, audio_path, fmt)
        result = convert_file(audio_path, voice, cfg, out_path=out, fmt=fmt, index_path=index or None,
                              services=services, progress=progress, cancel=token)
        hint = quality_hint(model, validation_still_falling(model, services.workspace))
        return str(result.output_path), result.summary() + (f"\n{hint}" if hint else "")

    return run_job(job, progress=progress)


def convert_many(services: Services, model: str | None, index: str | None, files: list[str] | None, folder: str,
                 out_folder: str, fmt: str, settings: Mapping[str, Any],
                 progress: Any = None) -> tuple[list[list[str]], str]:
    """Handler of "Convert all": returns (per-file status rows, summary); `settings` as for `convert_one`."""
    from voiceapp.infer.models import conversion_output_dir
    from voiceapp.infer.pipeline import check_folder_outputs, convert_folder, load_voice

    if not model:
        raise gr.Error("Pick a voice model first.")
    inputs = [Path(f) for f in files or []]
    typed = typed_folder(services, folder, "input folder")
    if typed is not None:
        inputs.append(typed)
    if not inputs:
        raise gr.Error("Upload files or type the path of a folder of audio files.")
    typed_out = typed_folder(services, out_folder, "output folder", inside=services.workspace.outputs_dir)
    token = services.start_job("infer")

    def job(progress: Any) -> tuple[list[list[str]], str]:
        cfg = make_config(**settings)
        out_dir = conversion_output_dir(services.workspace, model, str(typed_out) if typed_out else None)
        check_folder_outputs(inputs, out_dir, fmt)  # before loading anything: never write over an input
        voice = load_voice(model, services)
        statuses = convert_folder(inputs, out_dir, voice, cfg, fmt=fmt, index_path=index or None,
                                  services=services, progress=progress, cancel=token)
        rows = [[s.path.name, s.message, str(s.output_path or "")] for s in statuses]
        ok = sum(s.ok for s in statuses)
        return rows, f"{ok} of {len(statuses)} file(s) converted into `{out_dir}`."

    return run_job(job, progress=progress)


# ----------------------------------------------------------------------------------------------- layout

def _settings(services: Services) -> dict[str, Any]:
    """The conversion settings' components by name: InferConfig's field names, `make_config`'s keywords."""
    f0_list, f0_default = f0_choices(services)
    with gr.Row():
        transpose = gr.Slider(-24, 24, value=_D.transpose_semitones, step=1, label="Transpose (semitones)",
                              info="Raise or lower the pitch: +12 is one octave up (male to female), -12 down.")
        f0_method = gr.Dropdown(f0_list, value=f0_default, label="Pitch method",
                                info="How the melody is followed. rmvpe or fcpe are best; harvest is slow.")
        index_rate = gr.Slider(0, 1, value=_D.index_rate, step=0.05, label="Index rate",
                               info="How much of the trained voice's sound to pull in from the index. "
                                    "Lower it if words get blurry.")
    with gr.Row():
        protect = gr.Slider(0, 0.5, value=_D.protect, step=0.01, label="Protect consonants",
                            info="Keeps breaths and 's' sounds natural; 0.5 turns it off, lower protects more. "
                                 "RVC models only.")
        rms_mix = gr.Slider(0, 1, value=_D.rms_mix_rate, step=0.05, label="Loudness envelope",
                            info="0 follows the input's loudness, 1 keeps the model's own.")
        filter_radius = gr.Slider(0, 7, value=_D.filter_radius, step=1, label="Pitch smoothing",
                                  info="Above 2, smooths harvest's pitch over 3 frames to remove jumps.")
    with gr.Row():
        resample = gr.Dropdown(RESAMPLE_CHOICES, value=_D.resample_sr, label="Output sample rate",
                               info="Keep the model's rate, or resample the result.")
        speaker = gr.Number(value=_D.speaker_id, precision=0, minimum=0, label="Speaker id",
                            info="Only for models trained with several speakers (0 otherwise).")
        seed = gr.Number(value=_D.seed, precision=0, label="Seed",
                         info="The same seed gives exactly the same result; change it for a variation.")
        f0_curve = gr.File(label="Pitch curve (optional)", file_types=[".csv", ".txt"], type="filepath",
                           file_count="single")
    gr.Markdown("<span class='va-small'>Pitch curve: a `time,f0` csv (seconds, Hz) that replaces the detected "
                "pitch, e.g. from `python -m voiceapp f0`.</span>")
    blend = gr.Slider(0, 1, value=_D.neighbour_blend, step=0.05, label="Neighbour blend", visible=False,
                      info="instant/quick voices: 1 uses only the target's own matched frames (most like the "
                           "target); lower keeps more of the input's own sounds (quick only).")
    return {"transpose_semitones": transpose, "f0_method": f0_method, "index_rate": index_rate,
            "filter_radius": filter_radius, "rms_mix_rate": rms_mix, "protect": protect, "resample_sr": resample,
            "speaker_id": speaker, "seed": seed, "f0_curve": f0_curve, "neighbour_blend": blend}


def build(services: Services) -> list[Any]:
    from voiceapp.ui import cover_section
    from voiceapp.ui.pickers import follow, refreshed

    gr.Markdown("Convert speech or singing into a trained voice. Clean, dry vocals work best; separate "
                "songs first in the Separate tab.")
    models = model_choices(services)
    first = models[0][1] if models else None
    index_start, description_start, _ = select_model(services, first)
    with gr.Row():
        with gr.Column(scale=4, min_width=240):
            model = gr.Dropdown(models, value=first, label="Voice model",
                                info="Models in models/voices/ (train one, or import a .pth in the Models tab).")
            every_save = gr.Checkbox(False, label="Show every save (the files training saved: _best, _e<epoch>…)",
                                     container=False)
        index = gr.Dropdown(index_choices(services), value=index_start.get("value", NO_INDEX), label="Index",
                            scale=4, info="The model's feature index; picked automatically by name. 'no index' = off.")
    fmt = gr.Radio(list(SAVE_FORMATS), value="wav", label="Output format",
                   info="wav is lossless; mp3/ogg are smaller.")
    description = gr.Markdown(description_start)
    with gr.Tab("One file"):
        with gr.Row():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Input (upload or record)")
            output = gr.Audio(type="filepath", label="Converted", interactive=False)
        with gr.Row():
            run_one = gr.Button("Convert", variant="primary")
            stop_one = gr.Button("Stop", variant="stop")
        message_one = message_box()
        result = gr.Textbox(label="Result", lines=4, interactive=False,
                            info="Time per step and the real-time factor (below 1 = faster than real time).")
    with gr.Tab("Many files"):
        with gr.Row():
            files = gr.File(label="Audio files", file_count="multiple", type="filepath")
            with gr.Column():
                folder = gr.Textbox(label="...or a folder on this computer", placeholder="/path/to/audio",
                                    info="A folder inside the workspace; every audio file inside it (and its "
                                         "subfolders) is converted.")
                out_folder = gr.Textbox(label="Output folder", placeholder="outputs/converted/<model>",
                                        info="Where converted files go, inside outputs/; empty = "
                                             "outputs/converted/<model>/.")
        with gr.Row():
            run_many = gr.Button("Convert all", variant="primary")
            stop_many = gr.Button("Stop", variant="stop")
        message_many = message_box()
        summary = gr.Markdown()
        table = gr.Dataframe(headers=STATUS_HEADERS, label="Files", interactive=False, wrap=True)

    with gr.Accordion("Conversion settings (pitch, index, consonants, loudness…)", open=False):
        settings = _settings(services)   # the main path (model, input, Convert) comes first; these fold away
    names, components = list(settings), list(settings.values())
    engine_outputs = [index, settings["index_rate"], settings["neighbour_blend"]]
    for component, update in zip(engine_outputs, engine_controls(first)):
        component.visible = update["visible"]   # the first model's engine, before any change event

    def _one(model_, index_, audio_, fmt_, *values, progress=gr.Progress()):
        return convert_one(services, model_, index_, audio_, fmt_, named(names, values), progress=progress)

    def _many(model_, index_, files_, folder_, out_, fmt_, *values, progress=gr.Progress()):
        return convert_many(services, model_, index_, files_, folder_, out_, fmt_, named(names, values),
                            progress=progress)

    queued(services, run_one.click, "infer", "Convert (Inference)", _one, [model, index, audio, fmt, *components], [message_one, output, result],
                  **COMPUTE_QUEUE)
    queued(services, run_many.click, "infer", "Convert all (Inference)", _many, [model, index, files, folder, out_folder, fmt, *components],
                   [message_many, table, summary], **COMPUTE_QUEUE)
    audio.upload(check_input, [audio], [message_one], queue=False)
    for stop in (stop_one, stop_many):
        stop.click(lambda: services.cancel_job("infer") and None, None, None, queue=False)
    model.change(lambda m: select_model(services, m), [model], [index, description, settings["speaker_id"]])
    model.change(engine_controls, [model], engine_outputs)
    models_picker = follow(services, model, lambda every=False: model_choices(services, bool(every)),
                           key="voice-model", inputs=[every_save])
    every_save.change(lambda every, current: refreshed(models_picker, current, None, every), [every_save, model],
                      [model], queue=False, show_progress="hidden")
    cover_pickers = cover_section.build(services, model, index, fmt, settings, make_config)   # the Cover section
    return [models_picker,
            follow(services, index, lambda: index_choices(services)), *cover_pickers]
