"""`voiceapp cover SONG --model NAME --out FILE`: separate, convert the vocals, remix, in one step."""

from __future__ import annotations

import argparse
from pathlib import Path

from voiceapp.cover.pipeline import OUTPUT_FORMATS, CoverConfig
from voiceapp.progress import TqdmProgress


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from voiceapp.infer.cli import add_conversion_options

    d = CoverConfig()
    p = subparsers.add_parser("cover", parents=[common], help="a song sung by a voice model, in one step",
                              description="Separate a song into vocals and instrumental, convert the (lead) vocals "
                                          "into a voice model with the infer settings, and mix them back over the "
                                          "instrumental, as loud as the song. Writes FILE and the stems "
                                          "(vocals, converted_vocals, instrumental, backing) as wav files. The "
                                          "cover keeps the song's rate unless --resample-sr sets one.")
    p.add_argument("song", type=Path, metavar="SONG", help="the song (any audio format)")
    p.add_argument("--model", required=True,
                   help="model name under models/voices/, or the path of a .pth (rvc) or .safetensors (instant, "
                        "quick) file")
    p.add_argument("--out", required=True, type=Path,
                   help="the cover file (wav, flac, mp3 or ogg), or an existing folder for <song>.<format>")
    add_conversion_options(p, "retrieval .index file for rvc models (default: the one beside the model; 'none' "
                              "for no retrieval)")
    p.add_argument("--format", default=None, choices=OUTPUT_FORMATS,
                   help="format of the cover (default: from the --out suffix, else wav)")
    p.add_argument("--separator", default=d.separator,
                   help="vocals/instrumental separator (`python -m voiceapp separate --help` lists them; "
                        "default: dsp)")
    p.add_argument("--backing-separator", default=d.backing_separator, metavar="KARAOKE_SEPARATOR",
                   help="split the lead from the backing vocals with this karaoke separator (only the lead is "
                        "converted; the backing vocals are mixed back); default: no split")
    p.add_argument("--vocals-db", type=float, default=d.vocals_gain_db, help="level of the converted vocals (dB)")
    p.add_argument("--instrumental-db", type=float, default=d.instrumental_gain_db,
                   help="level of the instrumental (dB)")
    p.add_argument("--backing-db", type=float, default=d.backing_gain_db, help="level of the backing vocals (dB)")
    p.add_argument("--no-shift", action="store_true",
                   help="keep the music in its key even when --transpose is not a whole number of octaves")
    p.add_argument("--no-loudness-match", action="store_true",
                   help="do not make the cover as loud as the song (BS.1770)")
    p.add_argument("--stems", type=Path, default=None, metavar="DIR",
                   help="folder for the stems (default: <out name>_stems/ beside the cover)")
    p.add_argument("--no-stems", action="store_true", help="write only the cover")
    p.add_argument("--chunk-s", type=float, default=d.chunk_s, help="seconds processed per step (memory bound)")
    p.set_defaults(func=run_cover)


def cover_config(args: argparse.Namespace) -> CoverConfig:
    fmt = args.format or (args.out.suffix.lstrip(".").lower() if args.out.suffix.lstrip(".").lower()
                          in OUTPUT_FORMATS else "wav")
    return CoverConfig(separator=args.separator, backing_separator=args.backing_separator,
                       vocals_gain_db=args.vocals_db, instrumental_gain_db=args.instrumental_db,
                       backing_gain_db=args.backing_db, shift_instrumental=not args.no_shift,
                       match_loudness=not args.no_loudness_match, output_format=fmt,
                       write_stems=not args.no_stems, chunk_s=args.chunk_s)


def run_cover(args: argparse.Namespace, services) -> int:
    from voiceapp.cover.pipeline import make_cover
    from voiceapp.errors import InputError
    from voiceapp.infer.cli import index_for, infer_config
    from voiceapp.infer.pipeline import load_voice

    infer_cfg, cfg = infer_config(args), cover_config(args)
    if not args.song.is_file():
        raise InputError(f"{args.song}: song not found. Give the path of an audio file.")
    out = args.out / f"{args.song.stem}.{cfg.output_format}" if args.out.is_dir() else args.out
    voice = load_voice(args.model, services)
    index = index_for(args, Path(str(voice.path)), services) if getattr(voice, "engine", "rvc") == "rvc" else None
    print(f"model: {voice.path}; index: {index or 'none'}")
    with TqdmProgress("cover") as bar:
        result = make_cover(args.song, voice, infer_cfg, cfg, out_path=out, stems_dir=args.stems,
                            index_path=index, services=services, progress=bar, cancel=services.cancel)
    print(result.summary())
    return 0
