"""Models tab: import community voice models, inspect / rename / delete / export them; base-asset downloads."""

from __future__ import annotations

from typing import Any

import gradio as gr

from voiceapp.services import Services
from voiceapp.ui.jobs import beside, message_box, queued, run_job

DOWNLOAD_QUEUE: dict[str, Any] = {"concurrency_id": "downloads", "concurrency_limit": 1}
VOICE_HEADERS = ["name", "version", "sample rate", "f0", "epochs", "encoder", "size (MB)", "index", "engine",
                 "loads in", "target (min)"]
ASSET_HEADERS = ["asset", "status", "size", "where", "needed for", "licence"]


# --- voice models --------------------------------------------------------------------------------------------


def voice_rows(services: Services) -> list[list[Any]]:
    """One row per voice model; a model that cannot be read shows why instead of its details."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.voices.store import list_models, model_info

    rows = []
    for entry in list_models(services.workspace):
        try:
            i = model_info(services.workspace, entry.name, with_hash=False)
        except VoiceAppError as err:
            rows.append([entry.name, "unreadable", "", "", "", str(err)[:60], round(entry.size_bytes / 1e6, 1), "",
                         "", "", ""])
            continue
        own = i["engine"] != "rvc"   # instant/quick: no index of their own, trained for steps not epochs
        rows.append([i["name"], i["version"], i["sample_rate"], "yes" if i["f0"] else "no",
                     (f"{i['step']} steps" if own and i["step"] else "") if own or i["epochs"] is None else i["epochs"],
                     i["encoder"], round(i["size_bytes"] / 1e6, 1),
                     "own frames" if own else ("yes" if i["index_present"] else "no"), i["engine"],
                     ", ".join(i["apps"]), "" if i["minutes_of_data"] is None else round(i["minutes_of_data"], 1)])
    return rows


def _refreshed(services: Services, selected: str | None = None) -> tuple[Any, Any]:
    from voiceapp.voices.store import voice_choices

    names = voice_choices(services.workspace)
    value = selected if selected in names else (names[0] if names else None)
    return gr.update(value=voice_rows(services)), gr.update(choices=names, value=value)


def import_voice(services: Services, files: list[str] | None, url: str, name: str, overwrite: bool,
                 progress: Any = None) -> tuple[Any, ...]:
    """Handler of "Import": returns (message, table, model picker)."""
    from voiceapp.voices.importer import import_model

    sources: list[Any] = [str(f) for f in files or []]
    if (url or "").strip():
        sources.append(url.strip())
    if not sources:
        raise gr.Error("Upload a .pth / .index / .zip file, or paste a download link.")
    token = services.start_job("models")

    def job(progress: Any) -> Any:
        return import_model(services.workspace, sources, name=(name or "").strip() or None,
                            overwrite=bool(overwrite), progress=progress, cancel=token)

    result = run_job(job, progress=progress)
    verb = "Replaced" if result.replaced else "Imported"
    lines = [f"{verb} **{result.name}**" + (" with its index." if result.index else " (no index found).")]
    lines += [f"- {note}" for note in result.notes]
    return ("\n".join(lines), *_refreshed(services, result.name))


def show_info(services: Services, name: str | None) -> str:
    """Handler of the model picker: the details of one model, with its sha256."""
    from voiceapp.voices.store import model_info

    if not name:
        return "No voice model selected."
    info = run_job(lambda progress: model_info(services.workspace, name))
    labels = {"engine": "Engine", "apps": "Loads in", "minutes_of_data": "Minutes of target speech",
              "version": "Version", "sample_rate": "Sample rate (Hz)", "f0": "Pitch-guided (f0)",
              "epochs": "Epochs", "step": "Steps", "encoder": "Content encoder",
              "speakers": "Speaker slots in the file",
              "author": "Author", "created": "Created", "info": "Notes", "size_bytes": "Size (bytes)",
              "sha256": "sha256", "path": "File", "index": "Index"}
    info = {**info, "apps": ", ".join(info.get("apps") or [])}
    rows = [f"| {label} | {info.get(key)} |" for key, label in labels.items() if info.get(key) not in (None, "")]
    return f"### {info['name']}\n\n| | |\n|---|---|\n" + "\n".join(rows)


def rename_voice(services: Services, old: str | None, new: str) -> tuple[Any, ...]:
    from voiceapp.voices.store import rename_model

    if not old or not (new or "").strip():
        raise gr.Error("Pick a model and type its new name.")
    path = run_job(lambda progress: rename_model(services.workspace, old, new))
    return (f"Renamed **{old}** to **{path.stem}**.", *_refreshed(services, path.stem))


def delete_voice(services: Services, name: str | None, confirm: bool) -> tuple[Any, ...]:
    from voiceapp.voices.store import delete_model

    if not name:
        raise gr.Error("Pick the model to delete.")
    run_job(lambda progress: delete_model(services.workspace, name, confirm=bool(confirm)))
    return (f"Deleted **{name}**.", *_refreshed(services), gr.update(value=False))


def export_voice(services: Services, name: str | None, progress: Any = None) -> str:
    from voiceapp.voices.store import export_model

    if not name:
        raise gr.Error("Pick the model to export.")
    return str(run_job(lambda progress: export_model(services.workspace, name, progress=progress),
                       progress=progress))


def export_note(services: Services, name: str | None) -> str:
    """Which apps can load the zip of `name` (RVC WebUI / Applio only for RVC-compatible models)."""
    from voiceapp.errors import VoiceAppError
    from voiceapp.voices.store import model_info

    if not name:
        return ""
    try:
        info = model_info(services.workspace, name, with_hash=False)
    except VoiceAppError as err:
        return str(err)
    apps = list(info.get("apps") or ["Voiceapp"])
    if apps == ["Voiceapp"]:
        return (f"**{name}** ({info['engine']} engine) loads in Voiceapp only: RVC WebUI and Applio cannot read "
                f"it. The zip carries it to another Voiceapp.")
    return f"**{name}** loads in {', '.join(apps)}."


# --- base assets ---------------------------------------------------------------------------------------------


def asset_rows(services: Services) -> list[list[Any]]:
    from voiceapp.assets import status_table

    return [[r["name"], r["state"], r["size"], r["where"], r["needed_by"], r["licence"]]
            for r in status_table(services.workspace)]


def download_assets_ui(services: Services, names: list[str] | None, progress: Any = None) -> tuple[str, Any]:
    """Handler of "Download": returns (message, status table)."""
    from voiceapp.assets import download_assets

    if not names:
        raise gr.Error("Pick the assets to download.")
    token = services.start_job("assets")
    paths = run_job(lambda progress: download_assets(services.workspace, list(names), progress=progress,
                                                     cancel=token), progress=progress)
    return "Ready:\n" + "\n".join(f"- `{p}`" for p in paths), gr.update(value=asset_rows(services))


def import_asset_ui(services: Services, files: list[str] | None, as_name: str | None,
                    progress: Any = None) -> tuple[str, Any]:
    """Handler of "Import files": places files the user already downloaded."""
    from voiceapp.assets import import_asset

    if not files:
        raise gr.Error("Upload the asset file(s) you downloaded.")
    token = services.start_job("assets")
    placed: list[Any] = []
    for f in files:
        placed += run_job(lambda progress, f=f: import_asset(services.workspace, f, as_name or None,
                                                             progress=progress, cancel=token), progress=progress)
    return "Placed:\n" + "\n".join(f"- `{p}`" for p in placed), gr.update(value=asset_rows(services))


# --- layout --------------------------------------------------------------------------------------------------


def build(services: Services) -> list[Any]:
    from voiceapp.assets import ASSETS, GROUPS
    from voiceapp.ui.pickers import follow
    from voiceapp.voices.store import voice_choices

    gr.Markdown("Voice models live in `models/voices/<name>/`: RVC models as a `.pth` and its `.index`, Voiceapp's "
                "instant and quick voices as one `.safetensors`. Import models made with RVC WebUI or Applio "
                "unchanged; export yours (RVC-compatible ones load in those apps; the table says which).")
    with gr.Accordion("Import a voice model", open=True):
        with gr.Row():
            files = gr.File(label="Model files (.pth, .index or .zip)", file_count="multiple", type="filepath",
                            file_types=[".pth", ".index", ".zip"])
            with gr.Column():
                url = gr.Textbox(label="...or a download link", placeholder="https://huggingface.co/.../model.zip",
                                 info="A direct link to a .zip, .pth or .index (Hugging Face page links work too).")
                name = gr.Textbox(label="Name", placeholder="(from the file name)",
                                  info="The model's name in this app. Leave empty to use the .pth file's name. "
                                       "With only an .index, the model to add it to.")
                overwrite = gr.Checkbox(value=False, label="Replace existing",
                                        info="Tick to replace a model that already has this name.")
        with gr.Row():
            do_import = gr.Button("Import", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        import_error = message_box()
        import_msg = gr.Markdown()
    gr.Markdown("### Your voice models")
    table = gr.Dataframe(headers=VOICE_HEADERS, value=lambda: voice_rows(services), interactive=False, wrap=True)
    with gr.Row():
        choices = voice_choices(services.workspace)
        picked = gr.Dropdown(label="Model", choices=choices, value=choices[0] if choices else None,
                             info="The model the buttons below act on; its details appear underneath.")
    info = gr.Markdown()
    with gr.Row():
        new_name = gr.Textbox(label="New name", info="Renames the folder and the files named after the model.")
        do_rename = gr.Button("Rename")
    with gr.Row():
        confirm = gr.Checkbox(value=False, label="Yes, delete this model",
                              info="Deleting removes the model's folder and everything in it, for good.")
        do_delete = gr.Button("Delete", variant="stop")
    with gr.Row():
        do_export = gr.Button("Export as zip")
        export_file = gr.File(label="Exported zip (the model file + its index)", interactive=False)
    manage_error = message_box()
    manage_msg = gr.Markdown()
    asset_table = assets_section(services, ASSETS, GROUPS)

    def _import(f, u, n, o, progress=gr.Progress()):
        return import_voice(services, f, u, n, o, progress=progress)

    def _export(n, progress=gr.Progress()):
        return export_voice(services, n, progress=progress)

    queued(services, do_import.click, "models", "Import a voice model", _import, [files, url, name, overwrite], [import_error, import_msg, table, picked],
                    **DOWNLOAD_QUEUE)
    stop.click(lambda: services.cancel_job("models") and None, None, None, queue=False)
    picked.change(lambda n: show_info(services, n), [picked], [info])
    do_rename.click(beside(lambda o, n: rename_voice(services, o, n), 3), [picked, new_name],
                    [manage_error, manage_msg, table, picked])
    do_delete.click(beside(lambda n, c: delete_voice(services, n, c), 4), [picked, confirm],
                    [manage_error, manage_msg, table, picked, confirm])
    do_export.click(beside(_export, 1), [picked], [manage_error, export_file])
    do_export.click(lambda n: export_note(services, n), [picked], [manage_msg])
    return [follow(services, table, lambda: voice_rows(services)),
            follow(services, picked, lambda: voice_choices(services.workspace), key="models-model"),
            follow(services, asset_table, lambda: asset_rows(services))]


def assets_section(services: Services, assets: dict, groups: dict) -> Any:
    """The base-asset table, downloads and imports; returns the status table."""
    gr.Markdown("### Base assets\nShared weights that features, pitch tracking and training use, downloaded once "
                "into `models/base/`. Without internet, download them elsewhere and import the files here.")
    table = gr.Dataframe(headers=ASSET_HEADERS, value=lambda: asset_rows(services), interactive=False, wrap=True)
    with gr.Row():
        names = gr.Dropdown(label="Assets", choices=[*assets, *groups], multiselect=True,
                            info="contentvec: content features for RVC models; rmvpe: the best pitch tracker; "
                                 "pretrained-v2-*: base models that training starts from; whisper-tiny.en: the "
                                 "offline encoder.")
        with gr.Column():
            download = gr.Button("Download", variant="primary")
            refresh = gr.Button("Refresh status", size="sm")
    with gr.Row():
        files = gr.File(label="Asset files you already have", file_count="multiple", type="filepath")
        as_name = gr.Dropdown(label="They belong to", choices=["", *assets], value="",
                              info="Leave empty to recognise each file by its checksum.")
        do_import = gr.Button("Import files")
    error = message_box()
    message = gr.Markdown()

    def _download(n, progress=gr.Progress()):
        return download_assets_ui(services, n, progress=progress)

    def _import(f, a, progress=gr.Progress()):
        return import_asset_ui(services, f, a, progress=progress)

    queued(services, download.click, "assets", "Download base assets", _download, [names], [error, message, table], **DOWNLOAD_QUEUE)
    queued(services, do_import.click, "assets", "Import base assets", _import, [files, as_name], [error, message, table], **DOWNLOAD_QUEUE)
    refresh.click(lambda: gr.update(value=asset_rows(services)), None, [table])
    return table
