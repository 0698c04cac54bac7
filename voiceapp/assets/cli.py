"""`voiceapp assets list | download NAME... | import PATH [--as NAME]`: the base assets and the UVR separation models
(voiceapp/assets/uvr.py, uvr_files.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from voiceapp.assets import ASSETS, GROUPS
    from voiceapp.assets.uvr import MIRROR_ENV, UVR_MODELS

    names = ", ".join([*ASSETS, *GROUPS]) + "; UVR separation models: " + ", ".join(UVR_MODELS)
    p = subparsers.add_parser("assets", parents=[common], help="base assets: ContentVec, RMVPE, pretrained, Whisper",
                              description="Download or import the base weights (models/base/): " + names)
    sub = p.add_subparsers(dest="assets_command", metavar="ACTION", required=True)

    s = sub.add_parser("list", parents=[common], help="what each asset is, where it comes from, and whether it is here")
    s.add_argument("--verify", action="store_true", help="also check the sha256 of present files (slow)")
    s.set_defaults(func=run_list)

    s = sub.add_parser("download", parents=[common], help="download assets from Hugging Face (or $HF_ENDPOINT)")
    s.add_argument("names", nargs="+", metavar="NAME", help=names)
    s.add_argument("--endpoint", help="hub address (default: $HF_ENDPOINT or https://huggingface.co)")
    s.add_argument("--mirror", help=f"UVR models: a base address that has every file by its name "
                                    f"(default: ${MIRROR_ENV}, else the published addresses)")
    s.set_defaults(func=run_download)

    s = sub.add_parser("import", parents=[common], help="place a file (or folder) you already downloaded "
                                                        "(UVR models: .onnx, .ckpt and its .yaml)")
    s.add_argument("path", type=Path)
    s.add_argument("--as", dest="as_name", metavar="NAME",
                   help="the asset it belongs to (default: recognised by its sha256)")
    s.set_defaults(func=run_import)


def run_list(args: argparse.Namespace, services) -> int:
    from voiceapp.assets import ASSETS, asset_status

    for name, asset in ASSETS.items():
        st = asset_status(services.workspace, name, verify=args.verify)
        print(f"{name:18s} {st.state:10s} {asset.size / 1e6:8.1f} MB  {st.detail}")
        print(f"{'':18s} from {asset.repo_id}: {', '.join(f.remote_path for f in asset.files)}")
        print(f"{'':18s} licence: {asset.licence}; needed for: {asset.needed_by}")
    _list_uvr(services)
    return 0


def _list_uvr(services) -> None:
    from voiceapp.assets.uvr import catalogue_rows

    purpose = None
    for row in catalogue_rows(services.workspace):
        if row["purpose"] != purpose:
            purpose = row["purpose"]
            print(f"\nUVR models - {row['purpose_title']} (separate --model NAME):")
        print(f"{row['name']:22s} {row['state']:8s} {row['size']:>16s}  {row['title']} [{row['family']}]")
        print(f"{'':22s} {row['about']}")
        print(f"{'':22s} licence: {row['licence']}; {row['checksum']}")


def run_download(args: argparse.Namespace, services) -> int:
    from voiceapp.assets import DownloadConfig, download_assets
    from voiceapp.progress import TqdmProgress

    from voiceapp.assets.uvr import UVR_MODELS
    from voiceapp.assets.uvr_files import download_uvr_model

    uvr_names = [n for n in args.names if n in UVR_MODELS]
    base_names = [n for n in args.names if n not in UVR_MODELS]
    paths = []
    with TqdmProgress("download") as bar:
        if base_names:
            paths += download_assets(services.workspace, base_names, DownloadConfig(endpoint=args.endpoint), bar,
                                     services.cancel)
        for name in uvr_names:
            paths += download_uvr_model(services.workspace, name, args.mirror, bar, services.cancel)
    for path in paths:
        print(f"ready: {path}")
    return 0


def run_import(args: argparse.Namespace, services) -> int:
    from voiceapp.assets import import_asset
    from voiceapp.progress import TqdmProgress

    from voiceapp.assets.uvr import UVR_MODELS
    from voiceapp.assets.uvr_files import import_uvr_files

    with TqdmProgress("import") as bar:
        if args.path.suffix.lower() in (".onnx", ".ckpt", ".yaml", ".yml") or args.as_name in UVR_MODELS:
            placed = [path for _, path in import_uvr_files(services.workspace, [args.path], bar, services.cancel)]
        else:
            placed = import_asset(services.workspace, args.path, args.as_name, bar, services.cancel)
    for path in placed:
        print(f"placed: {path}")
    return 0
