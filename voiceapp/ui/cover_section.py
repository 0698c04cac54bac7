"""The Inference tab's Cover section: a song in, the same song in the picked voice out (separate, convert, remix)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from voiceapp.cover.pipeline import CoverConfig
from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, named, queued, run_job

_C = CoverConfig()
NO_SPLIT = ""


def separator_choices(services: Services) -> list[str]:
    from voiceapp.separate import list_separators

    return list_separators(services.workspace)


def backing_choices(services: Services) -> list[tuple[str, str]]:
    """"off" first, then every installed karaoke separator (lead vs backing vocals). With none installed, the
    "off" entry says so (the list is read again on every page load, so a downloaded one appears)."""
    from voiceapp.cover import karaoke_separators

    found = karaoke_separators(services.workspace)
    off = "off (convert all the vocals)" if found else \
        "off: no karaoke separator installed (get one in the Separate tab)"
    return [(off, NO_SPLIT)] + [(n, n) for n in found]


BACKING_INFO = ("Split the lead voice from the backing vocals with a karaoke separator (e.g. UVR-MDX-NET Karaoke 2 "
                "from the Separate tab's model list): only the lead is converted, the backing vocals are mixed back "
                "at their own level.")


def make_cover_ui(services: Services, model: str | None, index: str | None, song: str | None, separator: str | None,
                  backing: str | None, vocals_db: float, instrumental_db: float, backing_db: float, shift: bool,
                  match: bool, fmt: str, settings: Mapping[str, Any], make_config: Callable[..., Any],
                  progress: Any = None) -> tuple[str, str, list]:
    """Handler of "Make cover": (cover file, result text, stem files). `settings`: the Inference tab's conversion
    settings by name; `make_config(**settings)` makes the InferConfig of them (the tab's `make_config`)."""
    from voiceapp.cover import cover_output_path, make_cover
    from voiceapp.infer.pipeline import load_voice

    if not model:
        raise gr.Error("Pick a voice model first (import one in the Models tab, or train one).")
    if not song:
        raise gr.Error("Upload the song to cover.")
    token = services.start_job("cover")

    def job(progress: Any) -> tuple[str, str, list]:
        infer_cfg = make_config(**settings)
        cfg = CoverConfig(separator=separator or None, backing_separator=backing or None,
                          vocals_gain_db=float(vocals_db), instrumental_gain_db=float(instrumental_db),
                          backing_gain_db=float(backing_db), shift_instrumental=bool(shift),
                          match_loudness=bool(match), output_format=fmt or "wav")
        voice = load_voice(model, services)
        out = cover_output_path(services.workspace, model, song, cfg.output_format)
        result = make_cover(song, voice, infer_cfg, cfg, out_path=out, index_path=index or None, services=services,
                            progress=progress, cancel=token)
        return str(result.output_path), result.summary(), [str(p) for p in result.stems.values()]

    return run_job(job, progress=progress)


def build(services: Services, model: Any, index: Any, fmt: Any, settings: Mapping[str, Any],
          make_config: Callable[..., Any]) -> list[Any]:
    """The Cover section, under the Inference tab's settings; `model`, `index`, `fmt` and `settings` are that
    tab's components, `make_config` its settings -> InferConfig. Returns its pickers (they follow the workspace)."""
    from voiceapp.ui.pickers import follow

    names, components = list(settings), list(settings.values())
    with gr.Accordion("Song cover: a whole song sung by this voice, in one step", open=True):
        gr.Markdown("Separates the song into vocals and music, converts the vocals with the model and the "
                    "conversion settings above, and mixes them back over the music, as loud as the original. "
                    "When the transpose is not whole octaves, the music is shifted with it so the key matches.")
        with gr.Row():
            song = gr.Audio(sources=["upload"], type="filepath", label="Song")
            cover = gr.Audio(type="filepath", label="Cover", interactive=False)
        with gr.Row():
            separator = gr.Dropdown(separator_choices(services), value=_C.separator or "dsp", label="Separator",
                                    info="How the vocals are taken out of the song (the Separate tab's models).")
            backing = gr.Dropdown(backing_choices(services), value=NO_SPLIT, label="Lead / backing vocals",
                                  info=BACKING_INFO)
        with gr.Row():
            vocals_db = gr.Slider(-24, 12, value=_C.vocals_gain_db, step=0.5, label="Vocals level (dB)")
            instrumental_db = gr.Slider(-24, 12, value=_C.instrumental_gain_db, step=0.5,
                                        label="Instrumental level (dB)")
            backing_db = gr.Slider(-24, 12, value=_C.backing_gain_db, step=0.5, label="Backing vocals level (dB)",
                                   info="Used with a lead/backing split.")
        with gr.Row():
            shift = gr.Checkbox(value=_C.shift_instrumental, label="Shift the music with the transpose",
                                info="Off: the music keeps its key (right for whole octaves, which never shift).")
            match = gr.Checkbox(value=_C.match_loudness, label="As loud as the song",
                                info="Matches the original's loudness (ITU-R BS.1770), without clipping.")
        with gr.Row():
            run = gr.Button("Make cover", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        message = message_box()
        summary = gr.Textbox(label="Cover result", lines=5, interactive=False)
        stems = gr.File(label="Stems (vocals, converted vocals, instrumental, backing)", file_count="multiple",
                        interactive=False)

    def _cover(model_, index_, song_, separator_, backing_, vocals_, instrumental_, backing_db_, shift_, match_,
               fmt_, *values, progress=gr.Progress()):
        return make_cover_ui(services, model_, index_, song_, separator_, backing_, vocals_, instrumental_,
                             backing_db_, shift_, match_, fmt_, named(names, values), make_config,
                             progress=progress)

    queued(services, run.click, "cover", "Song cover (Inference)", _cover,
           [model, index, song, separator, backing, vocals_db, instrumental_db, backing_db, shift, match, fmt,
            *components], [message, cover, summary, stems], **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("cover") and None, None, None, queue=False)
    return [follow(services, separator, lambda: separator_choices(services)),
            follow(services, backing, lambda: backing_choices(services))]
