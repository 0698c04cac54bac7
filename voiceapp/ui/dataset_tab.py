"""Dataset tab: recordings -> training clips, with the report, the cut points and the clips to listen to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from voiceapp.dataset.prepare import SAMPLE_RATES, DatasetConfig
from voiceapp.dataset.report import CLIP_HEADERS
from voiceapp.dataset.slicer import ChunkConfig, SlicerConfig
from voiceapp.errors import InputError
from voiceapp.services import Services
from voiceapp.ui.jobs import COMPUTE_QUEUE, message_box, queued, run_job, typed_folder

_D, _S, _C = DatasetConfig(), SlicerConfig(), ChunkConfig()


def _config(sample_rate: Any, use_highpass: bool, isolate: bool, separator: str | None, threshold_db: float,
            min_length_ms: float, min_interval_ms: float, hop_ms: float, max_sil_kept_ms: float, chunk_s: float,
            overlap_s: float, no_chunk: bool) -> DatasetConfig:
    return DatasetConfig(
        sample_rate=int(sample_rate), highpass=bool(use_highpass), copy_raw=True,
        isolate_vocals=(separator or "dsp") if isolate else None,
        slicer=SlicerConfig(threshold_db=float(threshold_db), min_length_ms=int(min_length_ms),
                            min_interval_ms=int(min_interval_ms), hop_ms=int(hop_ms),
                            max_sil_kept_ms=int(max_sil_kept_ms)),
        chunk=ChunkConfig(chunk_s=0.0 if no_chunk else float(chunk_s), overlap_s=float(overlap_s)))


def _separators(services: Services) -> list[str]:
    from voiceapp.separate.separator import list_separators

    return list_separators(services.workspace)


def _sources(services: Services, name: str) -> list[tuple[str, str]]:
    """(file name, numbered when two inputs share one; source key) for each input of the dataset."""
    from voiceapp.dataset.prepare import load_manifest
    from voiceapp.dataset.report import source_labels

    manifest = load_manifest(services.workspace.dataset(name))
    labels = source_labels(manifest) if manifest else {}
    return [(labels[key], key) for key in (manifest.ok_sources() if manifest else {})]


def clip_table(services: Services, name: str) -> list[list[Any]]:
    """The clips of a dataset with the file and time span each was cut from (the manifest's record)."""
    from voiceapp.dataset.prepare import load_manifest
    from voiceapp.dataset.report import clip_rows

    manifest = load_manifest(services.workspace.dataset(name)) if name else None
    return clip_rows(manifest) if manifest else []


def _clips(services: Services, name: str) -> list[tuple[str, str]]:
    """(clip file · source file start–end s, clip file) for the clip picker; clips the manifest does not know
    (a hand-copied file) are listed by name."""
    ds = services.workspace.dataset(name)
    present = sorted(p.name for p in ds.clips_dir.glob("*.wav")) if ds.clips_dir.is_dir() else []
    where = {row[0]: f"{row[0]} · {row[1]} {row[2]:.2f}–{row[3]:.2f} s" for row in clip_table(services, name)}
    return [(where.get(clip, clip), clip) for clip in present]


def prepare(services: Services, files: list[str] | None, folder: str, name: str, *settings: Any,
            progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Prepare dataset": returns (report markdown, histogram, source choices, clip choices, datasets,
    clip table)."""
    from voiceapp.dataset.prepare import prepare_dataset
    from voiceapp.dataset.report import report_markdown
    from voiceapp.plots import clip_length_histogram

    inputs: list[Path] = [Path(f) for f in files or []]
    typed = typed_folder(services, folder, "folder of recordings")
    if typed is not None:
        inputs.append(typed)
    if not (name or "").strip():
        raise gr.Error("Give the dataset a name (for example the speaker's name).")
    if not inputs:
        raise gr.Error("Upload recordings or type the path of a folder that holds them.")
    token = services.start_job("dataset")

    def job(progress: Any) -> tuple[Any, ...]:
        cfg = _config(*settings)
        result = prepare_dataset(inputs, services.workspace.dataset(name), cfg, progress, token, services=services)
        summary = (f"{len(result.processed)} file(s) processed, {len(result.skipped_known)} already in the dataset, "
                   f"{len(result.rejected)} rejected"
                   + (f", {len(result.own_files)} of the dataset's own clips left out" if result.own_files else "")
                   + ".\n\n")
        sources = _sources(services, name)
        clips = _clips(services, name)
        return (summary + report_markdown(result.report), clip_length_histogram(result.report),
                gr.update(choices=sources, value=sources[0][1] if sources else None),
                gr.update(choices=clips, value=clips[0][1] if clips else None),
                gr.update(choices=services.workspace.list_datasets(), value=result.dataset.name),
                clip_table(services, result.dataset.name))

    return run_job(job, progress=progress)


def show_dataset(services: Services, name: str) -> tuple[Any, ...]:
    """Handler of the dataset picker: (report, histogram, source choices, clip choices, clip table)."""
    from voiceapp.dataset.report import report_markdown
    from voiceapp.plots import clip_length_histogram
    from voiceapp.workspace import read_json

    if not name:
        return "", None, gr.update(choices=[]), gr.update(choices=[]), []
    try:
        report = read_json(services.workspace.dataset(name).report_path)
    except InputError as err:
        raise gr.Error(str(err)) from err
    if not report:
        return f"Dataset `{name}` has no report yet.", None, gr.update(choices=[]), gr.update(choices=[]), []
    sources, clips = _sources(services, name), _clips(services, name)
    return (report_markdown(report), clip_length_histogram(report),
            gr.update(choices=sources, value=sources[0][1] if sources else None),
            gr.update(choices=clips, value=clips[0][1] if clips else None), clip_table(services, name))


def picked_row(rows: Any, evt: gr.SelectData) -> Any:
    """Handler of a click in the clip table: that row's clip goes to the clip picker (and plays)."""
    try:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else int(evt.index)
        values = rows.values.tolist() if hasattr(rows, "values") else rows
        return values[row][0]
    except (IndexError, TypeError, ValueError, KeyError):
        return gr.skip()


def show_cuts(services: Services, name: str, source_key: str | None) -> Any:
    """Handler: waveform of one input file with its cut points."""
    from voiceapp.dataset.prepare import load_manifest
    from voiceapp.plots import waveform_with_cuts

    if not name or not source_key:
        return None
    manifest = load_manifest(services.workspace.dataset(name))
    source = manifest.sources.get(source_key) if manifest else None
    if not source:
        return None
    path = Path(source.get("raw") or source["path"])
    if not path.exists():
        raise gr.Error(f"{path.name} is no longer at {path.parent}; the cut points cannot be drawn.")
    return waveform_with_cuts(path, source.get("cuts_s", []))


def clip_path(services: Services, name: str, clip: str | None) -> str | None:
    if not name or not clip:
        return None
    path = services.workspace.dataset(name).clips_dir / Path(clip).name
    return str(path) if path.exists() else None


def build(services: Services) -> list[Any]:
    from voiceapp.ui.pickers import follow

    gr.Markdown("Turn recordings of one voice into a training set: cut at pauses, split into short clips, "
                "normalise. Any format and sample rate; folders are searched recursively.")
    with gr.Row():
        with gr.Column(scale=3):
            files = gr.File(label="Recordings", file_count="multiple", type="filepath")
            folder = gr.Textbox(label="...or a folder on this computer", placeholder="/path/to/recordings",
                                info="A folder inside the workspace; all audio files in it (and its subfolders) "
                                     "are used. Nothing is modified.")
        with gr.Column(scale=2):
            name = gr.Dropdown(label="Dataset name", choices=services.workspace.list_datasets(), value=None,
                               allow_custom_value=True,
                               info="A new name makes a new dataset; an existing one adds the new files to it.")
            sample_rate = gr.Radio([str(r) for r in SAMPLE_RATES], value=str(_D.sample_rate), label="Sample rate (Hz)",
                                   info="The rate of the model you will train. 40000 is the usual choice.")
            use_highpass = gr.Checkbox(value=_D.highpass, label="Remove rumble (48 Hz high-pass)",
                                       info="Filters out hum and handling noise below 48 Hz, as RVC does.")
            with gr.Row():
                isolate = gr.Checkbox(value=False, label="Isolate vocals first",
                                      info="For songs or music in the background: keep only the voice before slicing.")
                separator = gr.Dropdown(_separators(services), value="dsp", label="Separator",
                                        info="'dsp' needs no download; trained U-Nets appear here too (Separate tab).")
    with gr.Accordion("Slicing settings", open=False):
        with gr.Row():
            threshold = gr.Slider(-70, -20, value=_S.threshold_db, step=1, label="Silence threshold (dB)",
                                  info="Quieter than this counts as a pause. Lower it if quiet words get cut.")
            min_length = gr.Slider(300, 10000, value=_S.min_length_ms, step=100, label="Minimum piece (ms)",
                                   info="Pieces are at least this long before the next cut.")
            min_interval = gr.Slider(50, 2000, value=_S.min_interval_ms, step=10, label="Minimum pause (ms)",
                                     info="A pause must last this long to be cut there.")
        with gr.Row():
            hop = gr.Slider(5, 50, value=_S.hop_ms, step=1, label="Analysis step (ms)",
                            info="Resolution of the pause detector.")
            max_sil = gr.Slider(50, 3000, value=_S.max_sil_kept_ms, step=10, label="Silence kept (ms)",
                                info="How much of a pause stays at the edges of a piece.")
            chunk_s = gr.Slider(1.0, 10.0, value=_C.chunk_s, step=0.1, label="Clip length (s)",
                                info="Pieces are split into clips this long (RVC uses 3.7 s).")
            overlap_s = gr.Slider(0.0, 1.0, value=_C.overlap_s, step=0.05, label="Clip overlap (s)",
                                  info="Consecutive clips share this much audio.")
            no_chunk = gr.Checkbox(value=False, label="No chunking", info="Keep the pieces whole.")
    with gr.Row():
        run = gr.Button("Prepare dataset", variant="primary")
        stop = gr.Button("Stop", variant="stop")
    message = message_box()
    with gr.Row():
        with gr.Column(scale=3):
            report = gr.Markdown()
        with gr.Column(scale=2):
            histogram = gr.Plot(label="Clip lengths")
    with gr.Accordion("Inspect", open=True):
        with gr.Row():
            source = gr.Dropdown(label="Input file", choices=[], info="Shows where the file was cut.")
            clip = gr.Dropdown(label="Clip", choices=[], info="Listen to a training clip.")
        waveform = gr.Plot(label="Waveform and cut points")
        player = gr.Audio(label="Clip", type="filepath", interactive=False)
        clips_table = gr.Dataframe(headers=CLIP_HEADERS, label="Clips and where they were cut (click one to "
                                   "listen)", interactive=False, max_height=320, elem_id="dataset-clips")

    settings = [sample_rate, use_highpass, isolate, separator, threshold, min_length, min_interval, hop, max_sil,
                chunk_s, overlap_s, no_chunk]

    def _prepare(files_, folder_, name_, *rest, progress=gr.Progress()):
        return prepare(services, files_, folder_, name_, *rest, progress=progress)

    queued(services, run.click, "dataset", "Prepare dataset", _prepare, [files, folder, name, *settings], [message, report, histogram, source, clip, name, clips_table],
              **COMPUTE_QUEUE)
    stop.click(lambda: services.cancel_job("dataset") and None, None, None, queue=False)
    name.change(lambda n: show_dataset(services, n), [name], [report, histogram, source, clip, clips_table])
    clips_table.select(picked_row, [clips_table], [clip])
    source.change(lambda n, s: show_cuts(services, n, s), [name, source], [waveform])
    clip.change(lambda n, c: clip_path(services, n, c), [name, clip], [player])
    return [follow(services, name, services.workspace.list_datasets, fallback="keep"),
            follow(services, separator, lambda: _separators(services))]
