"""Separate tab: songs -> vocals + instrumental, with players, downloads and spectrograms; UVR models (pick,
download, import); train a separator."""

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


def model_choices(services: Services) -> list[Any]:
    """The separator picker: usable separators by name, then every UVR catalogue model, labelled with its facts
    (grouped by purpose; "download first" until its files are on disk)."""
    from voiceapp.separate import list_separators
    from voiceapp.separate.separator import installed_uvr_models

    own = [n for n in list_separators(services.workspace) if n not in installed_uvr_models(services.workspace)]
    return [*own, *uvr_choices(services.workspace)]


def uvr_choices(workspace: Any) -> list[tuple[str, str]]:
    """(label, name) for every UVR catalogue model, in purpose order."""
    from voiceapp.assets.uvr import catalogue_rows

    return [(f"UVR {row['purpose_title'].split(':')[0].lower()}: {row['title']} ({row['family'].split(' (')[0]}, "
             f"{row['size']}, {'on disk' if row['on_disk'] else 'not downloaded'})", row["name"])
            for row in catalogue_rows(workspace)]


def uvr_table(workspace: Any) -> str:
    """Markdown: the UVR catalogue grouped by purpose, with size, licence, checksum and whether it is on disk."""
    from voiceapp.assets.uvr import catalogue_rows

    lines, purpose = [], None
    for row in catalogue_rows(workspace):
        if row["purpose"] != purpose:
            purpose = row["purpose"]
            lines += ["", f"**{row['purpose_title']}**", "",
                      "| model | name | kind | size | on disk | licence |", "|---|---|---|---|---|---|"]
        state = "on disk" if row["on_disk"] else row["detail"]
        lines.append(f"| {row['title']} | `{row['name']}` | {row['family']} | {row['size']} | {state} | "
                     f"{row['licence']} |")
    return "\n".join(lines).strip()


def _uvr_updates(services: Services, selected: str | None) -> tuple[Any, Any]:
    choices = model_choices(services)
    return gr.update(value=uvr_table(services.workspace)), gr.update(choices=choices, value=selected)


def download_uvr_ui(services: Services, name: str | None, mirror: str, progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Download": (message, catalogue table, separator picker)."""
    from voiceapp.assets.uvr import UVR_MODELS, uvr_status
    from voiceapp.assets.uvr_files import download_uvr_model

    if name not in UVR_MODELS:
        raise gr.Error("Pick a UVR model in the Separator list first (the built-in and trained separators need no "
                       "download).")
    if uvr_status(services.workspace, name).usable:
        return (f"{UVR_MODELS[name].title} is already on disk.", *_uvr_updates(services, name))
    token = services.start_job("uvr-download")
    run_job(lambda progress: download_uvr_model(services.workspace, name, (mirror or "").strip() or None, progress,
                                                token), progress=progress)
    return (f"Downloaded **{UVR_MODELS[name].title}**; it is picked for separating.", *_uvr_updates(services, name))


def import_uvr_ui(services: Services, files: list[str] | None, progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Import": (message, catalogue table, separator picker)."""
    from voiceapp.assets.uvr import uvr_status
    from voiceapp.assets.uvr_files import import_uvr_files

    if not files:
        raise gr.Error("Upload the model files: a UVR .onnx or .pth, a Demucs .th, or a .ckpt together with its .yaml config.")
    token = services.start_job("uvr-download")
    placed = run_job(lambda progress: import_uvr_files(services.workspace, list(files), progress, token),
                     progress=progress)
    ready = [m for m in dict.fromkeys(m for m, _ in placed) if uvr_status(services.workspace, m.name).usable]
    waiting = [m for m in dict.fromkeys(m for m, _ in placed) if m not in ready]
    lines = [f"Imported {', '.join(p.name for _, p in placed)}."]
    lines += [f"- **{m.title}** is ready." for m in ready]
    lines += [f"- {m.title} still needs {uvr_status(services.workspace, m.name).detail}." for m in waiting]
    return ("\n".join(lines), *_uvr_updates(services, ready[0].name if ready else None))


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


STEM_LABELS = {"vocals": "Vocals", "instrumental": "Instrumental", "lead_vocals": "Lead vocals",
               "backing": "Backing (everything but the lead voice)", "dry": "Dry voice (reverb removed)",
               "reverb": "Reverb"}


def stem_label(path: str | None, default: str) -> str:
    """The player label for a separated file: its stem name in words (karaoke and de-reverb models name theirs)."""
    return STEM_LABELS.get(Path(path).stem, default) if path else default


def show_song(results: list[dict] | None, index: int | None) -> tuple[Any, ...]:
    """Handler of the song picker: (vocals, instrumental, downloads, spectrogram before, after); the players are
    labelled with what the separator wrote (vocals / instrumental, lead vocals / backing, dry voice / reverb)."""
    from voiceapp.separate.views import spectrogram_pair

    if not results or index is None or not 0 <= int(index) < len(results):
        return None, None, None, None, None
    song = results[int(index)]
    before, after = spectrogram_pair(song["mixture"], song["vocals"])
    return (gr.update(value=song["vocals"], label=stem_label(song["vocals"], "Vocals")),
            gr.update(value=song["instrumental"], label=stem_label(song["instrumental"], "Instrumental")),
            [song["vocals"], song["instrumental"]], before, after)


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


def _uvr_section(services: Services, model: Any, download: Any, message: Any, note: Any) -> None:
    from voiceapp.assets.uvr import MIRROR_ENV
    from voiceapp.assets.uvr_files import resolve_mirror
    from voiceapp.ui.models_tab import DOWNLOAD_QUEUE

    with gr.Accordion("UVR models: download or import", open=False):
        gr.Markdown("Ultimate Vocal Remover's models, by purpose. Pick one in the **Separator** list, then "
                    "**Download** it there (once; progress shown, resumed if the connection breaks, checked before use), "
                    "or import the files you already have. They run on a CPU (MDX-Net: a few times the song's "
                    "length; RoFormer, VR arch and Demucs need a GPU to be practical). Files live in models/uvr/.")
        table = gr.Markdown(uvr_table(services.workspace))
        with gr.Row():
            mirror = gr.Textbox(label="Mirror (optional)", value=resolve_mirror() or "",
                                placeholder="https://my-mirror/uvr-models",
                                info=f"A base address that has every file by its published name (default: "
                                     f"${MIRROR_ENV}, else the UVR release on GitHub).")
        with gr.Row():
            files = gr.File(label="Model files you already have (.onnx, .pth, .th, or .ckpt + .yaml)",
                            file_count="multiple", type="filepath")
            do_import = gr.Button("Import")

    def _download(name_, mirror_, progress=gr.Progress()):
        return download_uvr_ui(services, name_, mirror_, progress=progress)

    def _import(files_, progress=gr.Progress()):
        return import_uvr_ui(services, files_, progress=progress)

    queued(services, download.click, "uvr-download", "Download a UVR model", _download, [model, mirror],
           [message, note, table, model], **DOWNLOAD_QUEUE)
    queued(services, do_import.click, "uvr-download", "Import UVR model files", _import, [files],
           [message, note, table, model], **DOWNLOAD_QUEUE)


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
                                     "from models/separators/ appear here too, then UVR's models (vocals, karaoke = "
                                     "lead vs backing vocals, de-reverb): download them below.")
            download = gr.Button("Download the picked UVR model", size="sm")
            uvr_message = message_box()
            uvr_note = gr.Markdown()
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
    _uvr_section(services, model, download, uvr_message, uvr_note)
    _train_section(services, model)

    def _separate(files_, folder_, model_, fmt_, progress=gr.Progress()):
        return separate_songs(services, files_, folder_, model_, fmt_, progress=progress)

    queued(services, run.click, "separate", "Separate", _separate, [files, folder, model, fmt],
              [message, summary, song, results, vocals, instrumental, downloads, before, after], **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("separate") and None, None, None, queue=False)
    song.input(show_song, [results, song], [vocals, instrumental, downloads, before, after])
    return [follow(services, model, lambda: model_choices(services), key="separator")]
