"""`voiceapp models list | import PATH_OR_URL... | info NAME | rename OLD NEW | delete NAME --yes | export NAME --out F.zip`"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("models", parents=[common], help="import, list, inspect, rename, delete, export voice models",
                              description="Manage the voice models in models/voices/<name>/ (<name>.pth or .safetensors, + .index).")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    s = sub.add_parser("list", parents=[common], help="list the voice models")
    s.set_defaults(func=run_list)

    s = sub.add_parser("import", parents=[common], help="import a .pth/.index/.zip from disk or an http(s) URL")
    s.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
    s.add_argument("--name", help="model name (default: the .pth file's name); with only an .index: the model "
                                  "to add it to")
    s.add_argument("--overwrite", action="store_true",
                   help="replace the .pth (and the index, when one comes) of an existing model of the same name; "
                        "the folder's other files are kept")
    s.set_defaults(func=run_import)

    s = sub.add_parser("info", parents=[common], help="version, sample rate, f0, epochs, encoder, size, sha256")
    s.add_argument("name")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=run_info)

    s = sub.add_parser("rename", parents=[common], help="rename a model (its folder and files)")
    s.add_argument("old")
    s.add_argument("new")
    s.set_defaults(func=run_rename)

    s = sub.add_parser("delete", parents=[common], help="delete a model folder")
    s.add_argument("name")
    s.add_argument("--yes", action="store_true", help="confirm the deletion")
    s.set_defaults(func=run_delete)

    s = sub.add_parser("export", parents=[common], help="write the model and its index into a zip")
    s.add_argument("name")
    s.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
    s.set_defaults(func=run_export)


def run_list(args: argparse.Namespace, services) -> int:
    from voiceapp.voices.store import list_models

    models = list_models(services.workspace)
    if not models:
        print(f"No voice models in {services.workspace.voices_dir}. Import one with `python -m voiceapp models import`.")
        return 0
    for m in models:
        print(f"{m.name}\t{m.size_bytes / 1e6:.1f} MB\tindex: {m.index.name if m.index else '-'}")
    return 0


def run_import(args: argparse.Namespace, services) -> int:
    from voiceapp.voices.importer import import_model

    with TqdmProgress("import") as bar:
        result = import_model(services.workspace, [str(s) for s in args.sources], name=args.name,
                              overwrite=args.overwrite, progress=bar, cancel=services.cancel)
    for note in result.notes:
        print(f"note: {note}")
    verb = "replaced" if result.replaced else "imported"
    print(f"{verb} {result.name}: {result.pth}" + (f" + {result.index.name}" if result.index else " (no index)"))
    return 0


def run_info(args: argparse.Namespace, services) -> int:
    from voiceapp.voices.store import model_info

    info = model_info(services.workspace, args.name)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if value not in ("", None):
            print(f"{key:12s} {value}")
    return 0


def run_rename(args: argparse.Namespace, services) -> int:
    from voiceapp.voices.store import rename_model

    print(f"renamed: {rename_model(services.workspace, args.old, args.new)}")
    return 0


def run_delete(args: argparse.Namespace, services) -> int:
    from voiceapp.voices.store import delete_model

    delete_model(services.workspace, args.name, confirm=args.yes)
    print(f"deleted {args.name}")
    return 0


def run_export(args: argparse.Namespace, services) -> int:
    from voiceapp.voices.store import export_model

    print(f"exported: {export_model(services.workspace, args.name, args.out)}")
    return 0
