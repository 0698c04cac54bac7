"""Per-file level statistics and the dataset report (`datasets/<name>/report.json`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voiceapp.audio.dsp import db
from voiceapp.manifests import DatasetManifest
from voiceapp.workspace import distinct_names

# The noise floor is the level of the quietest 5% of 20 ms frames. Short frames and a low percentile find the
# gaps between words even in a single read sentence; the earlier 50 ms frames at the 10th percentile landed on
# soft speech and warned about 10 of the 35 clean LJ Speech files (measured: clean LJ Speech floors -44 dBFS or
# lower, the same clips over music at -10 dB -52 to -30 dBFS, median -36).
_FRAME_S = 0.02
FLOOR_PERCENTILE = 5
SPEECH_PERCENTILE = 90
CLIPPING_FRACTION = 1e-3       # more samples than this at full scale: clipping warning
LOW_PEAK_DB = -20.0            # quieter peaks: low-level warning
NOISE_FLOOR_DB = -42.0         # a louder floor between words: noise warning ...
MIN_SNR_DB = 30.0              # ... unless the voice is this much louder than the floor


@dataclass
class FileStats:
    """Levels of one input file, gathered block by block while it streams."""

    duration_s: float
    source_rate: int
    channels: int
    peak: float = 0.0
    clipped: int = 0
    samples: int = 0
    sum_squares: float = 0.0
    frame_rms: list[float] = field(default_factory=list)
    dropped_short: int = 0
    dropped_loud: int = 0
    dropped_silent: int = 0

    def add_block(self, block: np.ndarray, sample_rate: int) -> None:
        self.duration_s += len(block) / sample_rate
        if not len(block):
            return
        mag = np.abs(block)
        self.peak = max(self.peak, float(mag.max()))
        self.clipped += int(np.count_nonzero(mag >= 0.999))
        self.samples += len(block)
        self.sum_squares += float(np.dot(block.astype(np.float64), block.astype(np.float64)))
        frame = max(1, int(_FRAME_S * sample_rate))
        usable = len(block) - len(block) % frame
        if usable:
            frames = block[:usable].reshape(-1, frame)
            self.frame_rms.extend(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)).tolist())

    @property
    def peak_db(self) -> float:
        return db(self.peak)

    def to_json(self) -> dict[str, Any]:
        rms = np.asarray(self.frame_rms) if self.frame_rms else np.zeros(1)
        floor = float(np.percentile(rms, FLOOR_PERCENTILE))
        loud = float(np.percentile(rms, SPEECH_PERCENTILE))
        return {
            "duration_s": round(self.duration_s, 3), "source_rate": self.source_rate, "channels": self.channels,
            "peak_db": round(self.peak_db, 1),
            "rms_db": round(db(np.sqrt(self.sum_squares / max(self.samples, 1))), 1),
            "clipped_fraction": round(self.clipped / max(self.samples, 1), 6),
            "noise_floor_db": round(db(floor), 1),
            "speech_level_db": round(db(loud), 1),
            "dropped_short": self.dropped_short, "dropped_loud": self.dropped_loud,
            "dropped_silent": self.dropped_silent,
        }


def file_warnings(name: str, stats: dict[str, Any]) -> list[str]:
    """Plain-language warnings about one file's levels."""
    out = []
    if stats["clipped_fraction"] > CLIPPING_FRACTION:
        out.append(f"{name}: {100 * stats['clipped_fraction']:.2f}% of samples at full scale (clipping). The model "
                   "learns the distortion; use a cleaner take or record with less gain.")
    if stats["peak_db"] > 0.5:
        out.append(f"{name}: samples above full scale (peak {stats['peak_db']:+.1f} dBFS, a float file); "
                   "clips were normalised.")
    if stats["peak_db"] < LOW_PEAK_DB:
        out.append(f"{name}: very low level (peak {stats['peak_db']:.0f} dBFS); the noise gets loud once normalised.")
    snr_db = stats.get("speech_level_db", 0.0) - stats["noise_floor_db"]
    if stats["noise_floor_db"] > NOISE_FLOOR_DB and snr_db < MIN_SNR_DB:
        out.append(f"{name}: background noise around {stats['noise_floor_db']:.0f} dBFS between words. Remove music "
                   "(Separate tab) or noise first, or the model learns it.")
    return out


def advice(kept_minutes: float) -> list[str]:
    if kept_minutes < 1:
        return ["Under 1 minute of audio: RVC training does not succeed with this little. Add recordings "
                "(10 minutes or more)."]
    if kept_minutes < 10:
        return [f"{kept_minutes:.1f} minutes: enough to try, but expect lower quality. 10 to 50 minutes of clean "
                "speech or singing is recommended."]
    if kept_minutes <= 60:
        return [f"{kept_minutes:.1f} minutes: a good amount. Clean, dry recordings matter more than more minutes."]
    return [f"{kept_minutes:.0f} minutes: plenty. Epochs take longer; 100-200 epochs are usually enough."]


def length_histogram(durations: list[float], bin_s: float = 0.5) -> dict[str, list[float]]:
    top = max([4.0, *durations]) if durations else 4.0
    edges = np.arange(0.0, top + bin_s, bin_s)
    counts, edges = np.histogram(durations, bins=edges)
    return {"edges_s": [round(float(e), 2) for e in edges], "counts": [int(c) for c in counts]}


def source_labels(manifest: DatasetManifest) -> dict[str, str]:
    """{source key: its file name as the user knows it}, numbered where two inputs share a name (two uploads
    called `mixture.flac` become `mixture.flac` and `mixture (2).flac`)."""
    keys = list(manifest.sources)
    names = [manifest.sources[k]["path"].replace("\\", "/").split("/")[-1] for k in keys]
    return dict(zip(keys, distinct_names(names)))


CLIP_HEADERS = ["clip", "source file", "start (s)", "end (s)"]


def clip_rows(manifest: DatasetManifest) -> list[list[Any]]:
    """One row per clip: [clip file, source file, start s, end s] (where in its source the clip was cut)."""
    labels = source_labels(manifest)
    rows = []
    for key, source in manifest.ok_sources().items():
        for clip in source["clips"]:
            start = float(clip.get("start_s", 0.0))
            end = float(clip.get("end_s", start + float(clip.get("duration_s", 0.0))))
            rows.append([clip["name"], labels[key], round(start, 2), round(end, 2)])
    return rows


def build_report(manifest: DatasetManifest, cfg: Any,
                 extra_rejected: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Summarise a dataset manifest: minutes in and kept, clips, lengths, rejects, warnings, advice."""
    ok = list(manifest.ok_sources().values())
    rejected = [{"file": s["path"], "reason": s["reason"]} for s in manifest.sources.values()
                if s.get("status") == "rejected"]
    known = {r["file"] for r in rejected}
    rejected += [{"file": f, "reason": r} for f, r in extra_rejected or [] if f not in known]
    durations = [c["duration_s"] for s in ok for c in s["clips"]]
    labels = source_labels(manifest)
    warnings = [w for key, s in manifest.ok_sources().items() for w in file_warnings(labels[key], s["stats"])]
    input_s = sum(s["stats"]["duration_s"] for s in ok)
    kept_s = float(sum(durations))
    dropped = {k: sum(s["stats"].get(k, 0) for s in ok) for k in ("dropped_short", "dropped_loud", "dropped_silent")}
    return {
        "name": manifest.name, "sample_rate": manifest.sample_rate,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files_ok": len(ok), "files_rejected": len(rejected),
        "input_minutes": round(input_s / 60, 2), "kept_minutes": round(kept_s / 60, 2),
        "clip_count": len(durations),
        "clip_seconds": {"min": round(min(durations), 2) if durations else 0,
                         "median": round(float(np.median(durations)), 2) if durations else 0,
                         "max": round(max(durations), 2) if durations else 0},
        "length_histogram": length_histogram(durations),
        "clips_dropped": dropped,
        "rejected": rejected, "warnings": warnings, "advice": advice(kept_s / 60),
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown for the Dataset tab and the CLI."""
    lines = [f"### Dataset `{report['name']}` ({report['sample_rate'] // 1000} kHz)",
             f"- **{report['clip_count']} clips** holding {report['kept_minutes']:.1f} min (consecutive clips "
             f"share their overlap), from {report['input_minutes']:.1f} min of input in {report['files_ok']} "
             f"file(s)",
             f"- clip length {report['clip_seconds']['min']}–{report['clip_seconds']['max']} s "
             f"(median {report['clip_seconds']['median']} s)"]
    dropped = report["clips_dropped"]
    if any(dropped.values()):
        lines.append(f"- dropped pieces: {dropped['dropped_short']} too short, {dropped['dropped_loud']} too loud, "
                     f"{dropped['dropped_silent']} silent")
    for item in report["advice"]:
        lines.append(f"\n**Advice:** {item}")
    if report["warnings"]:
        lines.append("\n**Warnings**")
        lines += [f"- {w}" for w in report["warnings"][:30]]
        if len(report["warnings"]) > 30:
            lines.append(f"- ... and {len(report['warnings']) - 30} more (see report.json)")
    if report["rejected"]:
        lines.append(f"\n**Rejected files ({len(report['rejected'])})**")
        lines += [f"- {r['reason']}" for r in report["rejected"][:30]]
        if len(report["rejected"]) > 30:
            lines.append(f"- ... and {len(report['rejected']) - 30} more (see report.json)")
    return "\n".join(lines)
