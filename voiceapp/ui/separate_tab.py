"""Separate tab: songs -> vocals + instrumental, with players, downloads and spectrograms; train a separator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from voiceapp.separate.separator import DEFAULT_SEPARATOR, OUTPUT_FORMATS, SeparateConfig
from voiceapp.separate.train import SeparatorTrainConfig
from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, queued, run_job, typed_folder

_T = SeparatorTrainConfig()


def _inputs(services: Services, files: list[str] | None, folder: str) -> list[Path]:
    inputs = [Path(f) for f in files or []]
    typed = typed_folder(services, folder, "folder of songs")
    return inputs + ([typed] if typed is not None else [])


def model_choices(services: Services) -> list[str]:
    from voiceapp.separate import list_separators

    return list_separators(services.workspace)


def separate_songs(services: Services, files: list[str] | None, folder: str, model: str, fmt: str,
                   progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Separate": (summary, song picker, results state, vocals, instrumental, downloads, before, after)."""
    from voiceapp.separate import load_separator, separate_files
    from voiceapp.separate.views import batch_markdown

    inputs = _inputs(services, files, folder)
    if not inputs:
        raise gr.Error("Upload songs or type the path of a folder that holds them.")
    token = services.start_job("separate")

    def job(progress: Any) -> tuple[Any, ...]:
        separator = load_separator(model or DEFAULT_SEPARATOR, services.workspace, services.device, services.cache)
        batch = separate_files(inputs, services.workspace.separated_dir, separator,
                               SeparateConfig(output_format=fmt or "wav"), progress, token)
        results = [{"name": r.source.name, "mixture": str(r.source), "vocals": str(r.vocals),
                    "instrumental": str(r.instrumental)} for r in batch.results]
        from voiceapp.workspace import distinct_names

        choices = [(label, i) for i, label in enumerate(distinct_names([r["name"] for r in results]))]
        shown = show_song(results, 0 if results else None)
        return (batch_markdown(batch), gr.update(choices=choices, value=0 if results else None), results, *shown)

    return run_job(job, progress=progress)


def show_song(results: list[dict] | None, index: int | None) -> tuple[Any, ...]:
    """Handler of the song picker: (vocals, instrumental, downloads, spectrogram before, after)."""
    from voiceapp.separate.views import spectrogram_pair

    if not results or index is None or not 0 <= int(index) < len(results):
        return None, None, None, None, None
    song = results[int(index)]
    before, after = spectrogram_pair(song["mixture"], song["vocals"])
    return song["vocals"], song["instrumental"], [song["vocals"], song["instrumental"]], before, after


def train_separator_ui(services: Services, stems_folder: str, name: str, epochs: float, size: str,
                       progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Start training": (summary markdown, model dropdown update)."""
    from voiceapp.separate.train import train_separator
    from voiceapp.separate.views import training_markdown

    if not (name or "").strip():
        raise gr.Error("Give the separator a name.")
    if not (stems_folder or "").strip():
        raise gr.Error("Type the path of a folder with one sub-folder per song (vocals + accompaniment files).")
    stems = typed_folder(services, stems_folder, "stems folder")
    token = services.start_job("separator-train")

    def job(progress: Any) -> tuple[Any, ...]:
        cfg = SeparatorTrainConfig(size=size or _T.size, epochs=int(epochs))
        result = train_separator(name.strip(), stems, services.workspace, cfg, services.device, progress, token)
        services.cache.clear()
        return (training_markdown(result.folder.name, result.history, result.best_val_loss, result.folder),
                gr.update(choices=model_choices(services), value=result.folder.name))

    return run_job(job, progress=progress)


def _train_section(services: Services, model: Any) -> None:
    with gr.Accordion("Train a separator", open=False):
        gr.Markdown("Train your own U-Net vocal isolator on songs with separate vocal and accompaniment tracks. "
                    "Training on a CPU takes hours for a useful model; a GPU is recommended. Stopping keeps the "
                    "best model so far, and starting again with the same name continues where it stopped.")
        with gr.Row():
            stems = gr.Textbox(label="Stems folder", placeholder="/path/to/stems",
                               info="One sub-folder per song with vocals.wav and accompaniment.wav (or mixture.wav, "
                                    "or MUSDB18-HQ stems). Folders with only vocals or only music are mixed too.")
            name = gr.Textbox(label="Separator name", placeholder="my-separator",
                              info="Saved under models/separators/<name>/ and added to the model list.")
        with gr.Row():
            epochs = gr.Slider(1, 500, value=_T.epochs, step=1, label="Epochs",
                               info=f"One epoch = {_T.steps_per_epoch} steps of {_T.batch_size} random remixes.")
            size = gr.Radio(["small", "full"], value=_T.size, label="Network size",
                            info="small: 1.6 M parameters, trains faster; full: the paper's 9.8 M, for a GPU.")
        with gr.Row():
            start = gr.Button("Start training", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        message = message_box()
        summary = gr.Markdown()

    def _train(stems_, name_, epochs_, size_, progress=gr.Progress()):
        return train_separator_ui(services, stems_, name_, epochs_, size_, progress=progress)

    queued(services, start.click, "separator-train", "Train a separator", _train, [stems, name, epochs, size], [message, summary, model], **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("separator-train") and None, None, None, queue=False)


def build(services: Services) -> list[Any]:
    from voiceapp.ui.pickers import follow

    gr.Markdown("Split songs into **vocals** and **instrumental**. Use the vocals to build a clean training set, "
                "and the instrumental to put a converted voice back on the music. Any format and sample rate; "
                "the output keeps the song's rate and channels.")
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(label="Songs", file_count="multiple", type="filepath")
            folder = gr.Textbox(label="...or a folder on this computer", placeholder="/path/to/songs",
                                info="A folder inside the workspace; every audio file in it (and its subfolders) "
                                     "is separated.")
        with gr.Column(scale=2):
            choices = model_choices(services)
            model = gr.Dropdown(label="Separator", choices=choices, value=DEFAULT_SEPARATOR,
                                info="dsp: works without any download (centre of the stereo image, harmonic "
                                     "sounds, voice band). dsp-centre: faster, stereo-only cue. Trained U-Nets "
                                     "from models/separators/ appear here too.")
            fmt = gr.Radio(list(OUTPUT_FORMATS), value=SeparateConfig().output_format, label="Output format",
                           info="wav keeps full precision; flac is smaller (24-bit).")
    with gr.Row():
        run = gr.Button("Separate", variant="primary")
        stop = gr.Button("Stop", variant="stop")
    message = message_box()
    summary = gr.Markdown()
    results = gr.State([])
    song = gr.Dropdown(label="Song", choices=[], info="Pick a separated song to listen to and inspect.")
    with gr.Row():
        vocals = gr.Audio(label="Vocals", type="filepath", interactive=False)
        instrumental = gr.Audio(label="Instrumental", type="filepath", interactive=False)
    downloads = gr.File(label="Download", file_count="multiple", interactive=False)
    with gr.Row():
        before = gr.Plot(label="Spectrogram before (mixture)")
        after = gr.Plot(label="Spectrogram after (vocals)")
    _train_section(services, model)

    def _separate(files_, folder_, model_, fmt_, progress=gr.Progress()):
        return separate_songs(services, files_, folder_, model_, fmt_, progress=progress)

    queued(services, run.click, "separate", "Separate", _separate, [files, folder, model, fmt],
              [message, summary, song, results, vocals, instrumental, downloads, before, after], **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("separate") and None, None, None, queue=False)
    song.input(show_song, [results, song], [vocals, instrumental, downloads, before, after])
    return [follow(services, model, lambda: model_choices(services), key="separator")]
