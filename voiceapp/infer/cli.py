"""`voiceapp infer --model NAME --input FILE_OR_DIR --out PATH`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from voiceapp.audio import SAVE_FORMATS
from voiceapp.errors import InputError
from voiceapp.features.f0 import F0_METHODS
from voiceapp.infer.pipeline import InferConfig, Precision
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("infer", parents=[common], help="convert audio into a voice model's voice",
                              description="Convert speech or singing (a file, several files or folders) into the "
                                          "voice of a model (models/voices/NAME/NAME.pth or any RVC .pth).")
    p.add_argument("--model", required=True,
                   help="model name under models/voices/, or the path of a .pth (rvc) or .safetensors (instant, "
                        "quick) file")
    p.add_argument("--input", required=True, nargs="+", type=Path, metavar="FILE_OR_DIR",
                   help="audio file(s) or folder(s) (folders are searched recursively)")
    p.add_argument("--out", required=True, type=Path,
                   help="output file (one input file) or folder (several inputs or a folder)")
    add_conversion_options(p, "retrieval .index file (default: the one beside the model; 'none' for no retrieval)")
    p.add_argument("--format", default="wav", choices=SAVE_FORMATS, help="output format")
    p.set_defaults(func=run_infer)


def add_conversion_options(p: argparse.ArgumentParser, index_help: str) -> None:
    """The conversion settings (InferConfig's fields) as flags; `infer` and `cover` both take them."""
    d = InferConfig()
    p.add_argument("--index", default=None, help=index_help)
    p.add_argument("--f0-method", default=d.f0_method, choices=list(F0_METHODS), type=lambda s: s.strip().lower(),
                   help="pitch method (default: rmvpe when present, else fcpe)")
    p.add_argument("--transpose", type=float, default=d.transpose_semitones, help="pitch shift in semitones")
    p.add_argument("--index-rate", type=float, default=d.index_rate, help="0..1, share of retrieved features")
    p.add_argument("--neighbour-blend", type=float, default=d.neighbour_blend,
                   help="instant/quick voices: 1 = only the target's matched frames; lower keeps more of the "
                        "input's own content (quick)")
    p.add_argument("--protect", type=float, default=d.protect, help="0..0.5, keep consonants/breaths (0.5 = off)")
    p.add_argument("--rms-mix", type=float, default=d.rms_mix_rate,
                   help="0..1; 1 keeps the output's loudness, 0 copies the input's loudness envelope")
    p.add_argument("--filter-radius", type=int, default=d.filter_radius, help="harvest median filter (>2: on)")
    p.add_argument("--resample-sr", type=int, default=d.resample_sr, help="output rate (0: the model's)")
    p.add_argument("--speaker-id", type=int, default=d.speaker_id)
    p.add_argument("--seed", type=int, default=d.seed, help="noise seed (same seed, same output)")
    p.add_argument("--f0-curve", default=None, help="'time_s,f0_hz' csv replacing the pitch")
    p.add_argument("--encoder", default=d.encoder, help="content encoder (default: the model's own)")
    p.add_argument("--precision", default=d.precision, choices=get_args(Precision),
                   help="auto: bfloat16 decoder on CPUs with AMX/AVX-512 BF16 (3-4x faster, differs less than "
                        "another seed), float32 in ONNX Runtime on AVX2 CPUs (ort), else PyTorch float32; "
                        "ort: float32 ONNX Runtime decoder (same sound as fp32, ~1.45x faster on AVX2; exported "
                        "once per model, cached in models/cache/decoders/); int8: ONNX Runtime int8 decoder "
                        "(faster still, changes the sound more than another seed); fp32: PyTorch float32")


def infer_config(args: argparse.Namespace) -> InferConfig:
    return InferConfig(transpose_semitones=args.transpose, f0_method=args.f0_method, index_rate=args.index_rate,
                       filter_radius=args.filter_radius, rms_mix_rate=args.rms_mix, protect=args.protect,
                       resample_sr=args.resample_sr, speaker_id=args.speaker_id, seed=args.seed,
                       f0_curve=args.f0_curve, encoder=args.encoder, precision=args.precision,
                       neighbour_blend=args.neighbour_blend)


def index_for(args: argparse.Namespace, model_path: Path, services) -> Path | None:
    from voiceapp.voices.store import find_index

    if args.index is None:
        return find_index(model_path, services.workspace)
    if args.index.strip().lower() in ("none", ""):
        return None
    path = Path(args.index).expanduser()
    if not path.is_file():
        raise InputError(f"Index {path} not found. Give an existing .index file, or --index none.")
    return path


def run_infer(args: argparse.Namespace, services) -> int:
    from voiceapp.infer.pipeline import check_file_output, check_folder_outputs, convert_file, convert_folder, load_voice

    cfg = infer_config(args)
    single = len(args.input) == 1 and args.input[0].is_file() and not args.out.is_dir()
    if single:  # refused before the model loads when the output would replace an input
        check_file_output(args.input[0], args.out, args.format)
    else:
        check_folder_outputs(args.input, args.out, args.format)
    voice = load_voice(args.model, services)
    index = index_for(args, Path(str(voice.path)), services)
    print(f"model: {voice.path} ({voice.version}, {voice.sample_rate} Hz, f0={'yes' if voice.use_f0 else 'no'}); "
          f"index: {index or 'none'}")
    with TqdmProgress("convert") as bar:
        if single:
            result = convert_file(args.input[0], voice, cfg, out_path=args.out, fmt=args.format, index_path=index,
                                  services=services, progress=bar, cancel=services.cancel)
            bar.close()
            print(result.summary())
            return 0
        statuses = convert_folder(args.input, args.out, voice, cfg, fmt=args.format, index_path=index,
                                  services=services, progress=bar, cancel=services.cancel)
    failed = [s for s in statuses if not s.ok]
    for status in statuses:
        print(f"{'ok  ' if status.ok else 'FAIL'} {status.path}: {status.message}"
              + (f" -> {status.output_path}" if status.output_path else ""))
    print(f"{len(statuses) - len(failed)} converted, {len(failed)} failed; output in {args.out}")
    return 2 if failed else 0
