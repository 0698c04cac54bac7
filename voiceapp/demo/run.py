"""`run_demo`: clone a real voice offline, end to end, with a report that puts before and after side by side.

    LJ Speech (shipped, 3.3 min) -> dataset -> features (fcpe + whisper-mid) -> instant voice (seconds)
    -> quick voice (a few CPU minutes) -> the source speaker (Allison Smith, your file, or eSpeak NG) converted
    with both -> a typed sentence spoken into the quick voice -> report.md with similarity, WER, naturalness,
    spectrograms and the audio.

Everything is written under `out_dir` (its own workspace in `out_dir/workspace`), so the user's models and
datasets are never touched.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.demo.material import ALLISON_DIR, Material, load_clips, make_material
from voiceapp.demo.report import DemoResult, Take, write_report
from voiceapp.errors import ConfigError, InputError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.services import Services
from voiceapp.workspace import Workspace

log = logging.getLogger(__name__)

DEMO_NAME = "lj-demo"
SIMILARITY_RATE = 16_000


@dataclass(frozen=True)
class DemoConfig:
    quick_minutes: float = 6.0            # CPU training budget of the quick voice; the rest takes ~3-4 min (2 cores)
    quick_max_steps: int | None = None    # stop the quick training at this step instead (tests)
    quick_preset: str = "full"            # "tiny": the test-sized network
    target_clips: int | None = None       # LJ clips to train on (None: all 29 that are not held out, 3.3 min)
    reference_clips: int = 3              # LJ clips held out as the similarity reference (21 s)
    source: str | None = None             # audio file to convert (None: Allison Smith's prompts, else eSpeak NG)
    source_max_s: float = 60.0            # a longer source is cut to this
    fallback_voice: str = "en-us+m3"      # eSpeak NG voice of the source when no real speaker is installed
    allison_dir: str = str(ALLISON_DIR)   # where asterisk-core-sounds-en-g722 puts the prompts
    tts_voice: str = "en-us+f3"           # eSpeak NG voice of the typed sentence (female: near LJ's pitch)
    sample_rate: int = 40000
    f0_method: str = "fcpe"
    encoder: str = "whisper-mid"
    measure: bool = True                  # similarity, WER and DNSMOS (resemblyzer, Whisper tiny.en, speechmos)
    seed: int = 1234

    def __post_init__(self) -> None:
        if not 0 < self.quick_minutes <= 600:
            raise ConfigError(f"DemoConfig.quick_minutes must be in (0, 600], got {self.quick_minutes}")
        if self.quick_max_steps is not None and self.quick_max_steps < 1:
            raise ConfigError(f"DemoConfig.quick_max_steps must be >= 1, got {self.quick_max_steps}")
        if not 1 <= self.reference_clips <= 10:
            raise ConfigError(f"DemoConfig.reference_clips must be 1..10, got {self.reference_clips}")
        if self.target_clips is not None and self.target_clips < 1:
            raise ConfigError(f"DemoConfig.target_clips must be >= 1 (or None: all), got {self.target_clips}")
        if self.source_max_s < 1:
            raise ConfigError(f"DemoConfig.source_max_s must be >= 1 s, got {self.source_max_s}")


class StageClock:
    """Seconds spent in each named stage, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._start, 1)
        self._start = now


def _fresh_workspace(out: Path) -> Workspace:
    """out/workspace, emptied first: a quick voice left from an earlier run would resume with no budget left."""
    root = out / "workspace"
    if root.exists():
        shutil.rmtree(root)
    return Workspace(root).ensure()


def _save_take(out: Path, name: str, label: str, audio: np.ndarray, rate: int, rtf: float | None = None) -> Take:
    from voiceapp.audio import save_audio

    path = save_audio(out / "audio" / f"{name}.wav", np.clip(audio, -1.0, 1.0), rate, "wav", "PCM_16")
    return Take(label, np.asarray(audio, np.float32), int(rate), Path(path), rtf)


def _prepare(material: Material, ws: Workspace, services: Services, cfg: DemoConfig, progress: Progress,
             cancel: CancelToken) -> Any:
    """Dataset and features of the LJ training clips; returns the DatasetResult."""
    from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
    from voiceapp.features.extract import FeatureConfig, extract_features

    progress(0.0, "preparing the LJ Speech dataset")
    dataset = prepare_dataset(material.train_files, ws.dataset(DEMO_NAME), DatasetConfig(sample_rate=cfg.sample_rate),
                              sub_progress(progress, 0.0, 0.15), cancel, services=services)
    extract_features(ws.dataset(DEMO_NAME), ws.experiment(DEMO_NAME),
                     FeatureConfig(f0_method=cfg.f0_method, encoder=cfg.encoder),
                     sub_progress(progress, 0.15, 1.0), cancel, services=services)
    return dataset


def _make_instant(ws: Workspace, out: Path, progress: Progress, cancel: CancelToken) -> Path:
    """The instant voice, copied to out/voices/ (the quick voice is written to the same workspace path)."""
    from voiceapp.train.instant import build_instant

    path = build_instant(ws.experiment(DEMO_NAME), ws, progress, cancel)
    kept = out / "voices" / f"{DEMO_NAME}-instant.safetensors"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, kept)
    return kept


def _make_quick(ws: Workspace, out: Path, cfg: DemoConfig, clips: int, progress: Progress,
                cancel: CancelToken) -> tuple[Path, Any]:
    """The quick voice trained for `cfg.quick_minutes` (or `quick_max_steps`), copied to out/voices/."""
    from voiceapp.train.config import TrainConfig
    from voiceapp.train.quick import train_quick

    train_cfg = TrainConfig(experiment=DEMO_NAME, engine="quick", minutes=cfg.quick_minutes,
                            max_steps=cfg.quick_max_steps, preset=cfg.quick_preset, seed=cfg.seed,
                            validation_clips=min(2, max(0, clips - 1)))
    result = train_quick(ws.experiment(DEMO_NAME), train_cfg, ws, progress, cancel)
    if result.voice_model is None:
        raise InputError("The quick voice was not saved (no training step ran); give it more minutes.")
    kept = out / "voices" / f"{DEMO_NAME}-quick.safetensors"
    shutil.copyfile(result.voice_model, kept)
    return kept, result


def _transpose(source: np.ndarray, rate: int, voice: Any) -> int:
    """Semitones from the source's median pitch to the target's (0 when the source has no clear pitch)."""
    from voiceapp.tts.speak import median_f0_hz, suggest_transpose

    try:
        return suggest_transpose(median_f0_hz(source, rate), voice.median_f0_hz, "the LJ features").semitones
    except InputError as err:
        log.warning("no transpose: %s", err)
        return 0


def _convert(voice: Any, material: Material, transpose: int, cfg: DemoConfig, services: Services,
             progress: Progress, cancel: CancelToken) -> Any:
    from voiceapp.infer.pipeline import InferConfig, convert

    return convert(material.source, material.source_rate, voice,
                   InferConfig(f0_method=cfg.f0_method, transpose_semitones=transpose),
                   services=services, progress=progress, cancel=cancel)


def _speak(quick_path: Path, cfg: DemoConfig, services: Services, progress: Progress, cancel: CancelToken) -> Any:
    from voiceapp.demo.text import TTS_SENTENCE
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.tts.speak import TtsConfig, speak

    return speak(TTS_SENTENCE, "espeak", cfg.tts_voice, TtsConfig(), voice_model=str(quick_path),
                 infer_cfg=InferConfig(f0_method=cfg.f0_method), services=services, progress=progress,
                 cancel=cancel)


def run_demo(out_dir: Path | str, services: Services, cfg: DemoConfig = DemoConfig(),
             progress: Progress = no_progress, cancel: CancelToken = NEVER) -> DemoResult:
    """Clone LJ Speech's voice into `out_dir` and write `out_dir/report.md` (+ report.json, img/, audio/, voices/).

    Reads the shipped LJ clips and the source (see `material.py`); writes nothing outside `out_dir`:
    the demo has its own workspace; only `services.device` is used (for the features).
    """
    from voiceapp.infer.models import load_voice_file

    out = Path(out_dir).resolve()
    ws = _fresh_workspace(out)
    run_services = Services(workspace=ws, device=services.device)
    clock = StageClock()
    progress(0.0, "loading the target (LJ Speech) and the source speaker")
    material = make_material(cfg, cancel)
    source = _save_take(out, "source", f"source: {material.source_label}", material.source, material.source_rate)
    reference = _save_take(out, "target_reference", "target reference (held-out LJ Speech)",
                           load_clips(material.reference_files, SIMILARITY_RATE), SIMILARITY_RATE)
    clock("material")
    dataset = _prepare(material, ws, run_services, cfg, sub_progress(progress, 0.01, 0.16), cancel)
    clock("dataset + features")
    instant_path = _make_instant(ws, out, sub_progress(progress, 0.16, 0.2), cancel)
    clock("instant voice")
    quick_path, quick = _make_quick(ws, out, cfg, len(material.train_files), sub_progress(progress, 0.2, 0.82),
                                    cancel)
    clock("quick voice")
    takes = {"source": source, "target_reference": reference}
    transpose = 0
    for name, path, (lo, hi) in (("instant", instant_path, (0.82, 0.85)), ("quick", quick_path, (0.85, 0.88))):
        voice = load_voice_file(path)
        transpose = _transpose(material.source, material.source_rate, voice)
        progress(lo, f"converting the source into the {name} voice")
        done = _convert(voice, material, transpose, cfg, run_services, sub_progress(progress, lo, hi), cancel)
        takes[name] = _save_take(out, name, f"{name} voice (after)", done.audio, done.sample_rate, done.rtf)
    clock("conversion")
    spoken = _speak(quick_path, cfg, run_services, sub_progress(progress, 0.88, 0.91), cancel)
    takes["tts_base"] = _save_take(out, "tts_base", "typed text, eSpeak NG", spoken.base_audio,
                                   spoken.base_sample_rate)
    takes["tts_quick"] = _save_take(out, "tts_quick", "typed text in the quick voice", spoken.audio,
                                    spoken.sample_rate)
    clock("TTS")
    facts = {"dataset": dataset.report, "quick": quick, "transpose": transpose, "stage_seconds": clock.seconds,
             "voices": {"instant": instant_path, "quick": quick_path}, "events": ws.experiment(DEMO_NAME).events_path}
    return write_report(out, material, takes, facts, cfg, sub_progress(progress, 0.91, 1.0), cancel)


def train_for_minutes(ws: Workspace, name: str, minutes: float, *, preset: str = "light", batch_size: int = 4,
                      seed: int = 1234, min_epochs: int = 2, max_epochs: int = 200, device: str = "cpu",
                      progress: Progress = no_progress, cancel: CancelToken = NEVER) -> tuple[Any, int, float]:
    """Train RVC experiment `name` from scratch for about `minutes`: one epoch to measure, then as many as fit.

    The demo no longer uses RVC; `bench/quality.py` does (its rvc row). Returns (TrainResult, epochs, seconds).
    """
    from voiceapp.train.config import TrainConfig
    from voiceapp.train.loop import train

    exp = ws.experiment(name)
    base = dict(experiment=name, preset=preset, batch_size=batch_size, pretrained="none", save_latest_only=True,
                save_voice_each_save=False, validation_clips=2, seed=seed, log_every_steps=5)
    started = time.perf_counter()
    train(exp, TrainConfig(epochs=1, save_every_epochs=1, **base), sub_progress(progress, 0.0, 0.1), cancel,
          workspace=ws, device=device)
    first_epoch_s = time.perf_counter() - started
    epochs = int(min(max_epochs, max(min_epochs, minutes * 60 // max(first_epoch_s, 1e-3))))
    result = train(exp, TrainConfig(epochs=epochs, save_every_epochs=max(1, epochs // 4), **base),
                   sub_progress(progress, 0.1, 1.0), cancel, workspace=ws, device=device)
    return result, epochs, time.perf_counter() - started
