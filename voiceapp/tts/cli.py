"""`voiceapp tts --text TEXT | --text-file F [--engine E] [--voice V] [--rate R] [--model NAME] --out FILE`
and `voiceapp tts --list-voices [--engine E]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from voiceapp.errors import InputError
from voiceapp.progress import TqdmProgress
from voiceapp.tts.engine import RATE_PERCENT_MAX, RATE_PERCENT_MIN
from voiceapp.tts.engines import DEFAULT_ENGINE, ENGINES
from voiceapp.tts.speak import TARGET_SEXES, TtsConfig

_MAX_TEXT_FILE_BYTES = 2_000_000


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    t = TtsConfig()
    p = subparsers.add_parser(
        "tts", parents=[common], help="text to speech, optionally in a voice model",
        description="Speak a text with an offline TTS engine (eSpeak NG by default) and, with --model, convert "
                    "it into that voice model with the same settings as `infer`. Without --model the base speech "
                    "is written. The edge-tts engine (only when installed) sends the text to Microsoft.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text to speak")
    source.add_argument("--text-file", type=Path, help="a UTF-8 .txt file to speak")
    p.add_argument("--engine", choices=list(ENGINES),
                   help=f"TTS engine (default {DEFAULT_ENGINE}; see --list-voices for what is available here)")
    p.add_argument("--voice", help="engine voice id, e.g. en-us, en-us+f3, fr-fr (default: the engine's default)")
    p.add_argument("--rate", type=float, default=t.rate_percent,
                   help=f"speaking rate change in percent, {RATE_PERCENT_MIN}..{RATE_PERCENT_MAX} (default 0)")
    p.add_argument("--pause", type=float, default=t.pause_s, help="seconds of silence between sentences")
    p.add_argument("--model", help="voice model name (models/voices/NAME) or .pth path; omit for the base speech")
    p.add_argument("--index", type=Path, help="retrieval index (default: the one beside the model)")
    p.add_argument("--transpose", default="auto",
                   help="semitones, or 'auto' to match the base voice's pitch to the model's (default auto)")
    p.add_argument("--model-voice", default=t.target_sex, choices=TARGET_SEXES,
                   help="the model's voice for the auto transpose when the model has no pitch statistics")
    p.add_argument("--f0-method", help="pitch method for the conversion (default: as infer)")
    p.add_argument("--index-rate", type=float, help="how much of the index's timbre to use, 0..1")
    p.add_argument("--neighbour-blend", type=float, help="instant/quick voices: 1 = only the target's frames")
    p.add_argument("--protect", type=float, help="protect voiceless consonants, 0..0.5")
    p.add_argument("--rms-mix", type=float, help="loudness envelope mix, 0..1")
    p.add_argument("--encoder", help="content encoder (default: the one the model was trained with)")
    p.add_argument("--base-out", help="with --model: also write the base speech here (a file, or a folder)")
    p.add_argument("--out", help="output audio file (.wav, .flac, .mp3, ...), or a folder (an existing one, or "
                                 "a path ending in '/') that gets tts_<time>.wav")
    p.add_argument("--list-voices", action="store_true", help="list the engines available here and their voices")
    p.set_defaults(func=run)


def _read_text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return args.text
    if args.text_file is None:
        raise InputError("Give the text with --text \"...\" or --text-file FILE.txt.")
    path = args.text_file
    if not path.is_file():
        raise InputError(f"Text file {path} does not exist.")
    if path.stat().st_size > _MAX_TEXT_FILE_BYTES:
        raise InputError(f"{path.name} is larger than {_MAX_TEXT_FILE_BYTES // 1_000_000} MB; split it.")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path.name} is not UTF-8 text ({err}); save it as UTF-8.") from err


def list_voices(engine: str | None, services) -> int:
    from voiceapp.tts.engines import available_engines, engine_label, get_engine

    names = [engine] if engine else available_engines(services.workspace)
    for name in names:
        tts = get_engine(name, services.workspace)
        voices = tts.voices()
        print(f"# {name}: {engine_label(name)} - {len(voices)} voices (default {tts.default_voice})")
        for v in voices:
            print(f"{v.id}\t{v.name}\t{v.language}\t{v.gender}")
    missing = [n for n in ENGINES if n not in names and not engine]
    if missing:
        print(f"# not available here: {', '.join(missing)}", file=sys.stderr)
    return 0


def output_file(text: str, label: str = "tts") -> Path:
    """The file `--out TEXT` names: TEXT itself, or a new `<label>_<time>.wav` inside TEXT when it is a folder
    (an existing one, or a path ending in a separator). A file is never written where a folder is."""
    import time

    raw = str(text)
    path = Path(raw).expanduser()
    if path.is_dir() or raw.endswith(("/", "\\", os.sep)):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target, n = path / f"{label}_{stamp}.wav", 1
        while target.exists():  # never replace a file: number the new one instead
            n += 1
            target = path / f"{label}_{stamp}_{n}.wav"
        return target
    from voiceapp.audio.io import saved_path

    if saved_path(path).is_dir():
        raise InputError(f"--out {raw}: {saved_path(path)} is a folder. Give a file name, or end the path with "
                         f"'/' to write into a folder.")
    return path


def _infer_config(args: argparse.Namespace):
    from voiceapp.infer.pipeline import InferConfig

    overrides = {"f0_method": args.f0_method, "index_rate": args.index_rate, "protect": args.protect,
                 "neighbour_blend": args.neighbour_blend,
                 "rms_mix_rate": args.rms_mix, "encoder": args.encoder}
    if args.transpose != "auto":
        try:
            overrides["transpose_semitones"] = int(args.transpose)
        except ValueError as err:
            raise InputError(f"--transpose must be a whole number of semitones or 'auto', got {args.transpose!r}.") \
                from err
    return InferConfig(**{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace, services) -> int:
    from voiceapp.audio import save_audio
    from voiceapp.tts.engines import ENGINES as engines
    from voiceapp.tts.speak import speak

    if args.list_voices:
        return list_voices(args.engine, services)
    if args.out is None:
        raise InputError("Give the output file with --out FILE.wav.")
    out = output_file(args.out)
    base_out = output_file(args.base_out, "tts_base") if args.base_out else None
    from voiceapp.audio.io import saved_path
    from voiceapp.workspace import same_file

    targets = [saved_path(p) for p in (out, base_out) if p is not None]
    if base_out is not None and same_file(*targets):
        raise InputError(f"--out and --base-out both name {targets[0]}; give the base speech another file.")
    replaced = saved_path(out).exists()
    text = _read_text(args)
    if engines[args.engine or DEFAULT_ENGINE]().online:
        print(f"warning: the {args.engine} engine sends your text to Microsoft's servers over the internet.",
              file=sys.stderr)
    cfg = TtsConfig(rate_percent=args.rate, pause_s=args.pause, auto_transpose=args.transpose == "auto",
                    target_sex=args.model_voice)
    infer_cfg = _infer_config(args) if args.model else None
    with TqdmProgress("tts") as bar:
        result = speak(text, args.engine, args.voice, cfg, voice_model=args.model, infer_cfg=infer_cfg,
                       index_path=args.index, services=services, progress=bar, cancel=services.cancel)
    if result.audio is None:
        written = save_audio(out, result.base_audio, result.base_sample_rate)
    else:
        written = save_audio(out, result.audio, result.sample_rate)
        if base_out is not None:
            save_audio(base_out, result.base_audio, result.base_sample_rate)
    if result.transpose is not None:
        print(result.transpose.message)
    for note in result.notes:
        print(note)
    print(f"{len(result.sentences)} sentence(s), {result.duration_s:.1f} s of speech -> {written}"
          + (" (replaced the file that was there)" if replaced else ""))
    return 0
