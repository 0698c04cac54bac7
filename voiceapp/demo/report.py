"""The demo's measurements and report: before/after tables, spectrograms, the loss curve and the audio.

Speaker similarity: resemblyzer cosine against the held-out LJ clips. WER: Whisper tiny.en's transcript of an
output against its transcript of the input (for the typed sentence: against the text). Naturalness: DNSMOS P.835
OVRL (natural speech ~3.1-3.4). Each family is skipped, with a note, when its package or weights are missing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import MissingArtifactError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress
from voiceapp.workspace import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

CONVERTED = ("instant", "quick")
COLUMNS = ("source", "instant", "quick", "target_reference")
HEADINGS = {"source": "source (before)", "instant": "instant (after)", "quick": "quick (after)",
            "target_reference": "target (held-out LJ)", "tts_base": "eSpeak NG (typed text)",
            "tts_quick": "into the quick voice"}


@dataclass
class Take:
    """One piece of audio in the report: the source, the target reference, an output."""
    label: str
    audio: np.ndarray
    sample_rate: int
    path: Path
    rtf: float | None = None


@dataclass
class DemoResult:
    out_dir: Path
    report_path: Path
    figures: dict[str, Any]
    audio: dict[str, Path] = field(default_factory=dict)    # take name -> wav (source, instant, quick, ...)
    images: dict[str, Path] = field(default_factory=dict)
    summary: str = ""                                         # the report's tables (markdown), for the app
    notes: list[str] = field(default_factory=list)


def _similarities(takes: dict[str, Any], figures: dict[str, Any]) -> None:
    from voiceapp.metrics import SpeakerEmbedder

    embedder = SpeakerEmbedder()
    ref = takes["target_reference"]
    ref_embedding = embedder.embed(ref.audio, ref.sample_rate)
    for name, take in takes.items():
        if name != "target_reference":
            e = embedder.embed(take.audio, take.sample_rate)
            cosine = float(np.dot(e, ref_embedding) / (np.linalg.norm(e) * np.linalg.norm(ref_embedding) + 1e-9))
            figures["similarity"][name] = round(cosine, 3)


def _word_errors(takes: dict[str, Any], figures: dict[str, Any], typed_text: str) -> None:
    from voiceapp.metrics import Transcriber, word_error_rate

    asr = Transcriber()
    said = {name: asr.transcribe(t.audio, t.sample_rate) for name, t in takes.items() if name != "target_reference"}
    figures["transcripts"] = said
    for name in CONVERTED:
        figures["wer"][name] = round(word_error_rate(said["source"], said[name]), 3) if said["source"].strip() \
            else None
    for name in ("tts_base", "tts_quick"):
        figures["wer"][name] = round(word_error_rate(typed_text, said[name]), 3)


def _naturalness(takes: dict[str, Any], figures: dict[str, Any]) -> None:
    from voiceapp.metrics import naturalness

    for name, take in takes.items():
        figures["dnsmos"][name] = round(naturalness(take.audio, take.sample_rate), 2)


def measure(takes: dict[str, Any], typed_text: str, progress: Progress = no_progress,
            cancel: CancelToken = NEVER) -> tuple[dict[str, Any], list[str]]:
    """Similarity, WER and DNSMOS of every take; (figures, notes on what was skipped)."""
    figures: dict[str, Any] = {"similarity": {}, "wer": {}, "dnsmos": {}}
    notes: list[str] = []
    steps = (("speaker similarity", _similarities, ()), ("word error rate", _word_errors, (typed_text,)),
             ("naturalness", _naturalness, ()))
    for i, (label, fn, extra) in enumerate(steps):
        cancel.raise_if_set()
        progress(i / len(steps), f"measuring {label}")
        try:
            fn(takes, figures, *extra)
        except MissingArtifactError as err:
            notes.append(f"{label} skipped: {err}")
    return figures, notes


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _cell(value: Any, fmt: str = "{:.3f}") -> str:
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else fmt.format(value)


def tables(figures: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """The before/after table and the typed-text table, as markdown lines."""
    sim, wer, mos = figures["similarity"], figures["wer"], figures["dnsmos"]
    quick = facts["quick"]
    made = {"instant": f"{_duration(facts['stage_seconds'].get('instant voice', 0))}, no training",
            "quick": f"{_duration(quick.trained_s)}, {quick.step} steps"}
    rows = [("speaker similarity to the target ↑", lambda c: _cell(sim.get(c))),
            ("WER vs the input's transcript ↓", lambda c: _cell(wer.get(c), "{:.2f}") if c in CONVERTED else "—"),
            ("naturalness, DNSMOS OVRL ↑", lambda c: _cell(mos.get(c), "{:.2f}")),
            ("conversion RTF (2 cores) ↓", lambda c: _cell(figures["rtf"].get(c), "{:.2f}")),
            ("time to make the voice", lambda c: made.get(c, "—"))]
    lines = ["| | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(c) for c in COLUMNS) + " |" for label, cell in rows]
    lines += ["", "| typed sentence | " + HEADINGS["tts_base"] + " | " + HEADINGS["tts_quick"] + " |", "|---|---|---|",
              f"| speaker similarity to the target ↑ | {_cell(sim.get('tts_base'))} | "
              f"{_cell(sim.get('tts_quick'))} |",
              f"| WER vs the typed text ↓ | {_cell(wer.get('tts_base'), '{:.2f}')} | "
              f"{_cell(wer.get('tts_quick'), '{:.2f}')} |",
              f"| naturalness, DNSMOS OVRL ↑ | {_cell(mos.get('tts_base'), '{:.2f}')} | "
              f"{_cell(mos.get('tts_quick'), '{:.2f}')} |"]
    return lines


def _save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _loss_figure(events_path: Path) -> Any:
    from voiceapp.plots import line_chart
    from voiceapp.train.events import read_events

    steps = [e for e in read_events(events_path, {"step"}) if "l1" in e.get("losses", {})]
    series = {"training L1": ([e["step"] for e in steps], [e["losses"]["l1"] for e in steps])}
    validation = read_events(events_path, {"validation"})
    if validation:
        series["validation L1"] = ([e["step"] for e in validation], [e["mel_l1"] for e in validation])
    return line_chart(series, "step", "L1 (WORLD envelope + aperiodicity)", "Quick voice: training loss", log_y=True)


def pictures(out: Path, takes: dict[str, Any], events_path: Path, f0_method: str) -> dict[str, Path]:
    """Spectrograms with f0 of the source, the target reference and both outputs, and the quick loss curve."""
    from voiceapp.audio import resample
    from voiceapp.features.f0 import load_f0_method
    from voiceapp.plots import spectrogram

    f0 = load_f0_method(f0_method, "cpu")
    images = {}
    for name in COLUMNS:
        take = takes[name]
        track = f0(resample(take.audio, take.sample_rate, 16_000))
        images[name] = _save_figure(spectrogram(take.audio, take.sample_rate, f"{take.label}, with f0", track,
                                                max_hz=8000), out / "img" / f"{name}.png")
    if events_path.exists():
        images["quick_loss"] = _save_figure(_loss_figure(events_path), out / "img" / "quick_loss.png")
    return images


def _markdown(out: Path, material: Any, takes: dict[str, Any], facts: dict[str, Any], figures: dict[str, Any],
              images: dict[str, Path], notes: list[str]) -> tuple[str, str]:
    """(summary: intro + tables + notes, the whole report)."""
    rel = lambda p: Path(p).resolve().relative_to(out).as_posix()  # noqa: E731
    report = facts["dataset"]
    intro = [
        "# Voiceapp demo: cloning a real voice", "",
        f"Made {time.strftime('%Y-%m-%d %H:%M')} offline on the CPU. Target: **LJ Speech** (Linda Johnson, public "
        f"domain), {report['kept_minutes']:.1f} min in {len(material.train_files)} clips, "
        f"{len(material.reference_files)} more held out as the reference. Source: **{material.source_label}**, "
        f"{len(material.source) / material.source_rate:.0f} s, "
        f"converted with transpose {facts['transpose']:+d}.", ""]
    summary = intro + tables(figures, facts) + [""]
    summary += [f"> {note}" for note in notes] + ([""] if notes else [])
    stages = facts["stage_seconds"]
    full = summary + ["## Time per stage (s)", "", "| stage | seconds |", "|---|---|"]
    full += [f"| {name} | {sec} |" for name, sec in stages.items()]
    full += [f"| **total** | **{sum(stages.values()):.0f}** ({sum(stages.values()) / 60:.1f} min) |", "",
             "## Pictures", ""] + [f"![{name}]({rel(path)})" for name, path in images.items()]
    full += ["", "## Audio", ""]
    for name, take in takes.items():
        full += [f"- {take.label}: [{rel(take.path)}]({rel(take.path)})",
                 f"  <audio controls src=\"{rel(take.path)}\"></audio>"]
    full += ["- voice files: " + ", ".join(f"[{rel(p)}]({rel(p)})" for p in facts["voices"].values()), "",
             "How to read it: speaker similarity is the cosine of resemblyzer speaker embeddings against the held-out "
             "LJ clips (the source's own score is the do-nothing baseline; 1 = same voice). WER compares Whisper "
             "tiny.en's transcript of each output with its transcript of the input (0 = every word kept). DNSMOS "
             "OVRL rates naturalness 1-5 (natural speech ~3.1-3.4). RTF: seconds of CPU per second of audio.", ""]
    return "\n".join(summary), "\n".join(full)


def write_report(out: Path, material: Any, takes: dict[str, Any], facts: dict[str, Any], cfg: Any,
                 progress: Progress = no_progress, cancel: CancelToken = NEVER) -> Any:
    """Measure the takes, draw the pictures, write out/report.md and out/report.json; returns the DemoResult."""
    from voiceapp.demo.text import TTS_SENTENCE

    started = time.perf_counter()
    if cfg.measure:
        figures, notes = measure(takes, TTS_SENTENCE, progress, cancel)
    else:
        figures, notes = {"similarity": {}, "wer": {}, "dnsmos": {}}, ["Measurements were turned off."]
    figures["rtf"] = {name: round(t.rtf, 3) for name, t in takes.items() if t.rtf is not None}
    notes = list(material.notes) + notes
    progress(0.9, "drawing the spectrograms")
    images = pictures(out, takes, facts["events"], cfg.f0_method)
    facts["stage_seconds"]["measure + report"] = round(time.perf_counter() - started, 1)
    summary, full = _markdown(out, material, takes, facts, figures, images, notes)
    quick = facts["quick"]
    rel = lambda p: Path(p).resolve().relative_to(out).as_posix()  # noqa: E731
    write_json_atomic(out / "report.json", {
        "config": asdict(cfg), "figures": figures, "notes": notes, "source": material.source_label,
        "source_kind": material.source_kind, "transpose_semitones": facts["transpose"],
        "dataset": {"clips": facts["dataset"]["clip_count"], "minutes": facts["dataset"]["kept_minutes"]},
        "quick": {"steps": quick.step, "trained_s": round(quick.trained_s, 1), "best_l1": quick.best_l1},
        "stage_seconds": facts["stage_seconds"], "total_seconds": round(sum(facts["stage_seconds"].values()), 1),
        "audio": {k: rel(t.path) for k, t in takes.items()}, "images": {k: rel(v) for k, v in images.items()},
        "voices": {k: rel(v) for k, v in facts["voices"].items()}})
    path = write_text_atomic(out / "report.md", full)
    progress(1.0, f"report: {path}")
    log.info("demo report %s: %s", path, json.dumps(figures.get("similarity", {})))
    return DemoResult(out, Path(path), figures, {k: t.path for k, t in takes.items()}, images, summary, notes)
