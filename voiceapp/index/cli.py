"""`voiceapp index EXP`: build the retrieval index of an experiment."""

from __future__ import annotations

import argparse

from voiceapp.index.build import IndexConfig
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    d = IndexConfig()
    p = subparsers.add_parser("index", parents=[common], help="build the retrieval index of an experiment",
                              description="Build logs/EXP/added_IVF<n>_Flat_nprobe_1_EXP_<v>.index from the "
                                          "experiment's features and copy it beside models/voices/EXP/.")
    p.add_argument("experiment", metavar="EXP", help="experiment name (a folder under logs/)")
    p.add_argument("--n-lists", type=int, default=d.n_lists, help="inverted lists (default: RVC's rule)")
    p.add_argument("--kmeans-above-rows", type=int, default=d.kmeans_above_rows,
                   help="cluster to 10,000 centroids when there are more feature rows than this")
    p.set_defaults(func=run_index)


def run_index(args: argparse.Namespace, services) -> int:
    from voiceapp.index.build import build_index, index_summary

    cfg = IndexConfig(n_lists=args.n_lists, kmeans_above_rows=args.kmeans_above_rows)
    exp = services.workspace.experiment(args.experiment)
    with TqdmProgress("index") as bar:
        path = build_index(exp, cfg, bar, services.cancel, voices_dir=services.workspace.voice_dir(exp.name))
    print(index_summary(path))
    return 0
