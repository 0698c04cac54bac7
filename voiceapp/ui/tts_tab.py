"""TTS tab: type or upload text, speak it with an offline engine, optionally convert it into a voice model."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.tts.engine import RATE_PERCENT_MAX, RATE_PERCENT_MIN
from voiceapp.tts.engines import DEFAULT_ENGINE
from voiceapp.tts.speak import TARGET_SEXES, TtsConfig
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, named, queued, run_job

log = logging.getLogger(__name__)

_T = TtsConfig()
_MAX_TEXT_FILE_BYTES = 2_000_000
AUTO = "auto"
# The settings of the base speech (TtsConfig's field names); the tab's other settings are the conversion's
# (InferConfig's field names, `_infer_config`'s keywords).
SPEECH_SETTINGS = ("rate_percent", "pause_s", "auto_transpose", "target_sex")


def engine_choices(services: Services) -> list[tuple[str, str]]:
    from voiceapp.tts.engines import available_engines, engine_label

    return [(engine_label(name), name) for name in available_engines(services.workspace)]


def voice_choices(services: Services, engine: str | None) -> tuple[list[tuple[str, str]], str, str]:
    """(dropdown choices, default voice id, notice markdown) for an engine."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.tts.engines import get_engine

    try:
        tts = get_engine(engine or DEFAULT_ENGINE, services.workspace)
        voices = tts.voices()
    except VoiceAppError as err:
        return [], "", f"⚠️ {err}"
    notice = (f"⚠️ **Online engine: {tts.online_notice}.** Pick an offline engine to keep your text on this "
              f"computer." if tts.online else "")
    return [(f"{v.id} — {v.label}", v.id) for v in voices], tts.default_voice, notice


def engine_changed(services: Services, engine: str) -> tuple[Any, Any]:
    choices, default, notice = voice_choices(services, engine)
    return gr.update(choices=choices, value=default), gr.update(value=notice, visible=bool(notice))


def model_choices(services: Services) -> list[tuple[str, str]]:
    """The Inference tab's model list after a "none" entry."""
    from voiceapp.ui.infer_tab import model_choices as infer_models

    return [("(none: base speech only)", "")] + infer_models(services)


def index_choices(services: Services) -> list[tuple[str, str]]:
    """"auto" (the index beside the model), then the Inference tab's list ("no index" and every index)."""
    from voiceapp.ui.infer_tab import index_choices as infer_indexes

    return [("auto: the index beside the model", AUTO)] + infer_indexes(services)


def refresh_models(services: Services, current: str | None) -> tuple[Any, Any]:
    choices = model_choices(services)
    keep = current if current in {value for _, value in choices} else ""
    return gr.update(choices=choices, value=keep), gr.update(choices=index_choices(services))


def read_text(text: str | None, text_file: str | None) -> str:
    """The text box, or the uploaded .txt file when one is given."""
    from pathlib import Path

    if text_file:
        path = Path(text_file)
        if path.stat().st_size > _MAX_TEXT_FILE_BYTES:
            raise gr.Error(f"{path.name} is larger than 2 MB; split it into smaller files.")
        try:
            return path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise gr.Error(f"{path.name} is not UTF-8 text; save it as UTF-8 and upload it again.") from err
    return text or ""


def _tts_config(*, rate_percent: float, pause_s: float, auto_transpose: bool, target_sex: str | None) -> TtsConfig:
    return TtsConfig(rate_percent=float(rate_percent), pause_s=float(pause_s), auto_transpose=bool(auto_transpose),
                     target_sex=target_sex or "auto")


def _infer_config(*, transpose_semitones: float, f0_method: str | None, index_rate: float, protect: float,
                  rms_mix_rate: float, filter_radius: float) -> Any:
    from voiceapp.infer.pipeline import InferConfig

    return InferConfig(transpose_semitones=int(transpose_semitones),
                       f0_method=None if f0_method in (AUTO, "", None) else f0_method, index_rate=float(index_rate),
                       protect=float(protect), rms_mix_rate=float(rms_mix_rate), filter_radius=int(filter_radius))


def _index_path(index: str | None) -> str | None:
    """Dropdown value -> speak()'s index_path: None finds the model's own, "" uses none."""
    return None if index in (AUTO, None) else index


def speak_clicked(services: Services, text: str, text_file: str | None, engine: str, voice: str, model: str | None,
                  index: str | None, settings: Mapping[str, Any], progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Speak": returns (status markdown, base audio, base file, converted audio, converted file,
    transpose slider update). `settings`: the settings controls' values by name, SPEECH_SETTINGS (`_tts_config`'s
    keywords) and the conversion's (`_infer_config`'s keywords)."""
    from voiceapp.tts.speak import save_result, speak

    words = read_text(text, text_file)
    token = services.start_job("tts")

    def job(progress: Any) -> tuple[Any, ...]:
        cfg = _tts_config(**{k: v for k, v in settings.items() if k in SPEECH_SETTINGS})
        conversion = {k: v for k, v in settings.items() if k not in SPEECH_SETTINGS}
        infer_cfg = _infer_config(**conversion) if model else None
        result = speak(words, engine, voice, cfg, voice_model=model or None, infer_cfg=infer_cfg,
                       index_path=_index_path(index), services=services, progress=progress, cancel=token)
        base_path, converted_path = save_result(result, services.workspace.tts_outputs_dir)
        lines = [f"{len(result.sentences)} sentence(s), {result.base_duration_s:.1f} s of speech "
                 f"({result.engine}, voice `{result.voice}`)."]
        if result.transpose is not None:
            lines.append(result.transpose.message)
        lines += result.notes
        if converted_path is not None:
            lines.append(f"Converted with `{result.model_name}` in {result.timings.get('convert_s', 0.0):.1f} s.")
        new_transpose = (result.transpose.semitones if result.transpose and result.transpose.applied
                         else settings["transpose_semitones"])
        converted = str(converted_path) if converted_path else None
        return ("\n\n".join(lines), str(base_path), str(base_path), converted, converted,
                gr.update(value=new_transpose))

    return run_job(job, progress=progress)


def stop_clicked(services: Services) -> str:
    return "Stopping after the current sentence..." if services.cancel_job("tts") else "Nothing is running."


def _conversion_controls(services: Services) -> dict[str, Any]:
    """The conversion settings' components by name (TtsConfig's and InferConfig's field names)."""
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.ui.infer_tab import f0_choices

    d = InferConfig()
    c: dict[str, Any] = {}
    with gr.Row():
        c["auto_transpose"] = gr.Checkbox(value=_T.auto_transpose, label="Match the model's pitch automatically",
                                          info="Sets the transpose from the base voice's median pitch and the "
                                               "model's training pitch. Untick to use the slider.")
        c["target_sex"] = gr.Radio(list(TARGET_SEXES), value=_T.target_sex, label="Model voice",
                                   info="Used for the automatic pitch only when the model file has no pitch "
                                        "statistics: male ~120 Hz, female ~210 Hz.")
        c["transpose_semitones"] = gr.Slider(-24, 24, value=d.transpose_semitones, step=1,
                                             label="Transpose (semitones)",
                                             info="+12 is one octave up. Overwritten by the automatic value when "
                                                  "ticked.")
    with gr.Row():
        methods = [("auto", AUTO)] + f0_choices(services)[0]
        c["f0_method"] = gr.Dropdown(methods, value=d.f0_method or AUTO, label="Pitch method",
                                     info="How the pitch of the base speech is tracked; auto = rmvpe when "
                                          "downloaded, else fcpe.")
        c["index_rate"] = gr.Slider(0, 1, value=d.index_rate, step=0.05, label="Index rate",
                                    info="How much of the model's retrieval index (its timbre) to use; 0 = none.")
        c["protect"] = gr.Slider(0, 0.5, value=d.protect, step=0.01, label="Protect consonants",
                                 info="Keeps breath and voiceless consonants clear; 0.5 = off.")
    with gr.Row():
        c["rms_mix_rate"] = gr.Slider(0, 1, value=d.rms_mix_rate, step=0.05, label="Loudness envelope mix",
                                      info="0 = follow the base speech's loudness, 1 = the model's own.")
        c["filter_radius"] = gr.Slider(0, 7, value=d.filter_radius, step=1, label="Pitch smoothing",
                                       info="Median filter on harvest pitch when 3 or more.")
    return c


def build(services: Services) -> list[Any]:
    from voiceapp.ui.pickers import follow

    gr.Markdown("Type a text (or upload a .txt), hear it spoken by an offline speech engine, and convert it "
                "into one of your voice models with the same settings as the Inference tab.")
    engines = engine_choices(services)
    voices, default_voice, notice_text = voice_choices(services, DEFAULT_ENGINE)
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=6, placeholder="Hello! This is my voice model speaking.",
                              info="Long texts are split into sentences and joined with short pauses.")
            text_file = gr.File(label="...or a .txt file", file_types=[".txt"], type="filepath")
        with gr.Column(scale=2):
            engine = gr.Dropdown(engines, value=DEFAULT_ENGINE, label="Speech engine",
                                 info="eSpeak NG is built in and offline. Others appear when installed.")
            notice = gr.Markdown(notice_text, visible=bool(notice_text))
            voice = gr.Dropdown(voices, value=default_voice, label="Engine voice", allow_custom_value=True,
                                info="Language and voice of the base speech; for eSpeak NG add a variant such "
                                     "as en-us+f3 (female) or en-us+m3.")
            rate = gr.Slider(RATE_PERCENT_MIN, RATE_PERCENT_MAX, value=_T.rate_percent, step=5,
                             label="Speaking rate (%)", info="+50 speaks 1.5x as fast, -50 half as fast.")
            pause = gr.Slider(0, 0.5, value=_T.pause_s, step=0.05, label="Pause between sentences (s)",
                              info="0 joins sentences with a short crossfade.")
    with gr.Row():
        model = gr.Dropdown(model_choices(services), value="", label="Voice model",
                            info="Converts the speech into this voice. None: keep the engine's voice.")
        index = gr.Dropdown(index_choices(services), value=AUTO, label="Index",
                            info="The model's retrieval index (its timbre); auto picks the one beside the model.")
    with gr.Accordion("Conversion settings", open=False):
        controls = _conversion_controls(services)
    with gr.Row():
        go = gr.Button("Speak", variant="primary")
        stop = gr.Button("Stop", variant="stop")
    message = message_box()
    status = gr.Markdown()
    with gr.Row():
        with gr.Column():
            base_audio = gr.Audio(label="Base speech", type="filepath", interactive=False)
            base_file = gr.File(label="Download base speech", interactive=False)
        with gr.Column():
            converted_audio = gr.Audio(label="In the voice model", type="filepath", interactive=False)
            converted_file = gr.File(label="Download converted speech", interactive=False)

    engine.change(lambda e: engine_changed(services, e), [engine], [voice, notice])
    settings = {"rate_percent": rate, "pause_s": pause, **controls}
    names = list(settings)

    def on_speak(text_: str, file_: str | None, engine_: str, voice_: str, model_: str | None, index_: str | None,
                 *values: Any, progress: Any = gr.Progress()) -> tuple[Any, ...]:
        return speak_clicked(services, text_, file_, engine_, voice_, model_, index_, named(names, values),
                             progress=progress)

    queued(services, go.click, "tts", "Speak (TTS)", on_speak, [text, text_file, engine, voice, model, index, *settings.values()],
             [message, status, base_audio, base_file, converted_audio, converted_file, controls["transpose_semitones"]],
             **COMPUTE_QUEUE)
    stop.click(lambda: stop_clicked(services), None, [status])
    return [follow(services, model, lambda: model_choices(services), key="tts-model"),
            follow(services, index, lambda: index_choices(services))]
