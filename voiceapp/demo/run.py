"""`run_demo`: the whole pipeline offline on material it makes itself, with a report.

    eSpeak NG (bundled) speaks ~2 minutes in a target voice and two sentences in another voice
    -> dataset -> features (fcpe + whisper-tiny) -> short CPU training (light preset) -> index
    -> conversion of the other voice -> TTS into the trained voice -> report.md with pictures and figures.

Everything is written under `out_dir` (its own workspace in `out_dir/workspace`), so the user's models and
datasets are never touched.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import ConfigError, MissingArtifactError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.services import Services
from voiceapp.workspace import Workspace, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

DEMO_NAME = "demo-voice"


@dataclass(frozen=True)
class DemoConfig:
    target_voice: str = "en-us+f3"       # eSpeak NG voice that becomes the trained voice
    source_voice: str = "en-gb+m3"       # a different voice that gets converted
    training_sentences: int = 48         # about 2 minutes of speech
    train_minutes: float = 9.0           # CPU time budget for training (epochs are chosen to fit it)
    min_epochs: int = 2
    max_epochs: int = 200
    preset: str = "light"
    sample_rate: int = 40000
    f0_method: str = "fcpe"
    encoder: str = "whisper-tiny"
    batch_size: int = 4
    seed: int = 1234

    def __post_init__(self) -> None:
        if not 0.2 <= self.train_minutes <= 600:
            raise ConfigError(f"DemoConfig.train_minutes must be 0.2..600, got {self.train_minutes}")
        if not 4 <= self.training_sentences <= 200:
            raise ConfigError(f"DemoConfig.training_sentences must be 4..200, got {self.training_sentences}")


@dataclass
class DemoResult:
    out_dir: Path
    report_path: Path
    figures: dict[str, Any]
    audio: dict[str, Path] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)


def _speak_to_file(engine: Any, text: str, voice: str, path: Path) -> tuple[np.ndarray, int]:
    from voiceapp.audio import save_audio

    audio, rate = engine.synthesize(text, voice)
    save_audio(path, audio, rate, "wav")
    return audio, rate


def make_material(out: Path, cfg: DemoConfig, progress: Progress, cancel: CancelToken) -> dict[str, Any]:
    """Speak the training sentences (target voice), a held-out reference (target) and the source sentences."""
    from voiceapp.demo.text import SOURCE_SENTENCES, TRAINING_SENTENCES
    from voiceapp.tts.engines import get_engine

    engine = get_engine("espeak")
    engine.voice(cfg.target_voice), engine.voice(cfg.source_voice)  # unknown voice -> InputError now
    sentences = [TRAINING_SENTENCES[i % len(TRAINING_SENTENCES)] for i in range(cfg.training_sentences)]
    reference_n = min(4, len(TRAINING_SENTENCES) // 4)
    train_dir = out / "material" / "target"
    for i, sentence in enumerate(sentences[reference_n:] or sentences):
        cancel.raise_if_set()
        _speak_to_file(engine, sentence, cfg.target_voice, train_dir / f"target_{i:03d}.wav")
        progress((i + 1) / len(sentences), f"speaking training sentence {i + 1}")
    reference, ref_rate = engine.synthesize(" ".join(sentences[:reference_n]), cfg.target_voice)
    source, src_rate = engine.synthesize(" ".join(SOURCE_SENTENCES), cfg.source_voice)
    from voiceapp.audio import save_audio

    paths = {"reference": save_audio(out / "material" / "target_reference.wav", reference, ref_rate),
             "source": save_audio(out / "source.wav", source, src_rate)}
    return {"train_dir": train_dir, "reference": (reference, ref_rate), "source": (source, src_rate),
            "paths": paths, "source_text": " ".join(SOURCE_SENTENCES)}


def _median_f0(audio: np.ndarray, rate: int, f0: Any) -> float:
    from voiceapp.audio import resample

    track = f0(resample(audio, rate, 16_000))
    voiced = track[track > 0]
    return float(np.median(voiced)) if voiced.size else 0.0


def train_for_minutes(ws: Workspace, name: str, minutes: float, *, preset: str = "light", batch_size: int = 4,
                      seed: int = 1234, min_epochs: int = 2, max_epochs: int = 200, device: str = "cpu",
                      progress: Progress = no_progress, cancel: CancelToken = NEVER) -> tuple[Any, int, float]:
    """Train experiment `name` from scratch for about `minutes`: one epoch to measure, then as many epochs as fit.

    Returns (TrainResult, epochs, seconds).
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


def _loss_figure(events_path: Path) -> Any:
    from voiceapp.plots import line_chart
    from voiceapp.train.events import read_events

    steps = read_events(events_path, {"step"})
    series: dict[str, tuple[list[float], list[float]]] = {}
    for name in ("mel", "kl", "fm", "g", "d"):
        xs = [e["step"] for e in steps if name in e.get("losses", {})]
        ys = [e["losses"][name] for e in steps if name in e.get("losses", {})]
        if xs:
            series[name] = (xs, ys)
    validation = read_events(events_path, {"validation"})
    if validation:
        series["validation mel"] = ([e["step"] for e in validation], [e["mel_l1"] for e in validation])
    return line_chart(series, "step", "loss", "Training losses", log_y=True)


def _save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_demo(out_dir: Path | str, services: Services, cfg: DemoConfig = DemoConfig(),
             progress: Progress = no_progress, cancel: CancelToken = NEVER) -> DemoResult:
    """Run the whole pipeline offline into `out_dir` and write `out_dir/report.md` (+ report.json, PNGs, audio)."""
    from voiceapp.audio import save_audio
    from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
    from voiceapp.features.extract import FeatureConfig, extract_features
    from voiceapp.features.f0 import load_f0_method
    from voiceapp.index.build import build_index
    from voiceapp.infer.models import load_voice
    from voiceapp.infer.pipeline import InferConfig, convert
    from voiceapp.plots import spectrogram
    from voiceapp.tts.speak import TtsConfig, speak

    out = Path(out_dir).resolve()
    ws = Workspace(out / "workspace").ensure()
    device = services.device
    run_services = Services(workspace=ws, device=device)
    timings: dict[str, float] = {}
    stage_start = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal stage_start
        now = time.perf_counter()
        timings[name] = round(now - stage_start, 1)
        stage_start = now

    progress(0.0, "speaking the demo material")
    material = make_material(out, cfg, sub_progress(progress, 0.0, 0.05), cancel)
    stage("material (TTS)")
    progress(0.05, "preparing the dataset")
    dataset = prepare_dataset([material["train_dir"]], ws.dataset(DEMO_NAME),
                              DatasetConfig(sample_rate=cfg.sample_rate), sub_progress(progress, 0.05, 0.08), cancel,
                              services=run_services)
    stage("dataset")
    features = extract_features(ws.dataset(DEMO_NAME), ws.experiment(DEMO_NAME),
                                FeatureConfig(f0_method=cfg.f0_method, encoder=cfg.encoder, version="v2"),
                                sub_progress(progress, 0.08, 0.15), cancel, services=run_services)
    stage("features")
    trained, epochs, train_s = train_for_minutes(
        ws, DEMO_NAME, cfg.train_minutes, preset=cfg.preset, batch_size=cfg.batch_size, seed=cfg.seed,
        min_epochs=cfg.min_epochs, max_epochs=cfg.max_epochs, device=device,
        progress=sub_progress(progress, 0.15, 0.85), cancel=cancel)
    stage("training")
    voice_dir = ws.voice_dir(DEMO_NAME)
    index_path = build_index(ws.experiment(DEMO_NAME), progress=sub_progress(progress, 0.85, 0.87), cancel=cancel,
                             voices_dir=voice_dir)
    stage("index")
    model_path = ws.voice_model_path(DEMO_NAME)
    voice = load_voice(model_path, run_services)
    f0 = load_f0_method(cfg.f0_method, device)
    source, src_rate = material["source"]
    reference, ref_rate = material["reference"]
    transpose = round(12 * math.log2(max(_median_f0(reference, ref_rate, f0), 1.0)
                                     / max(_median_f0(source, src_rate, f0), 1.0)))
    transpose = int(max(-24, min(24, transpose)))
    converted = convert(source, src_rate, voice, InferConfig(f0_method=cfg.f0_method, transpose_semitones=transpose),
                        index_path=index_path, services=run_services, progress=sub_progress(progress, 0.87, 0.92),
                        cancel=cancel)
    converted_path = save_audio(out / "converted.wav", converted.audio, converted.sample_rate)
    stage("conversion")
    from voiceapp.demo.text import TTS_SENTENCE

    spoken = speak(TTS_SENTENCE, "espeak", cfg.source_voice, TtsConfig(), voice_model=model_path,
                   infer_cfg=InferConfig(f0_method=cfg.f0_method), services=run_services,
                   progress=sub_progress(progress, 0.92, 0.96), cancel=cancel)
    tts_base_path = save_audio(out / "tts_base.wav", spoken.base_audio, spoken.base_sample_rate)
    tts_path = save_audio(out / "tts_converted.wav", spoken.audio, spoken.sample_rate)
    stage("TTS")
    progress(0.96, "measuring and writing the report")
    figures = _measure(material, converted, spoken, features, trained, epochs, train_s, transpose, timings, cfg,
                       dataset.report, index_path)
    images = {
        "losses": _save_figure(_loss_figure(ws.experiment(DEMO_NAME).events_path), out / "img" / "losses.png"),
        "source": _save_figure(spectrogram(source, src_rate, "source voice (before) with f0",
                                           f0(_to16k(source, src_rate)), max_hz=5000), out / "img" / "source.png"),
        "converted": _save_figure(spectrogram(converted.audio, converted.sample_rate, "converted (after) with f0",
                                              f0(_to16k(converted.audio, converted.sample_rate)), max_hz=5000),
                                  out / "img" / "converted.png"),
    }
    audio = {"source": material["paths"]["source"], "converted": converted_path, "target reference":
             material["paths"]["reference"], "tts base": tts_base_path, "tts converted": tts_path,
             "voice model": model_path, "index": index_path}
    report_path = _write_report(out, figures, images, audio, cfg)
    progress(1.0, f"report: {report_path}")
    return DemoResult(out, report_path, figures, audio, images)


def _to16k(audio: np.ndarray, rate: int) -> np.ndarray:
    from voiceapp.audio import resample

    return resample(audio, rate, 16_000)


def _measure(material: dict, converted: Any, spoken: Any, features: Any, trained: Any, epochs: int, train_s: float,
             transpose: int, timings: dict[str, float], cfg: DemoConfig, dataset_report: dict,
             index_path: Path) -> dict[str, Any]:
    source, src_rate = material["source"]
    reference, ref_rate = material["reference"]
    figures: dict[str, Any] = {
        "dataset": {"clips": dataset_report["clip_count"], "minutes": dataset_report["kept_minutes"]},
        "features": {"f0_method": cfg.f0_method, "encoder": cfg.encoder, "clips": len(features.clips)},
        "training": {"preset": cfg.preset, "epochs": epochs, "steps": trained.step, "seconds": round(train_s, 1),
                     "best_epoch": trained.best_epoch, "best_validation_mel_l1": trained.best_mel_l1},
        "conversion": {"transpose_semitones": transpose, "rtf": round(converted.rtf, 3),
                       "timings_s": {k: round(v, 2) for k, v in converted.timings.items()}},
        "stage_seconds": timings, "total_seconds": round(sum(timings.values()), 1),
        "index": index_path.name,
    }
    try:
        from voiceapp.metrics import SpeakerEmbedder

        embedder = SpeakerEmbedder()
        figures["speaker_similarity"] = {
            "source_vs_target (before)": round(embedder.similarity(source, src_rate, reference, ref_rate), 3),
            "converted_vs_target (after)": round(embedder.similarity(converted.audio, converted.sample_rate,
                                                                     reference, ref_rate), 3),
            "converted_vs_source": round(embedder.similarity(converted.audio, converted.sample_rate, source,
                                                             src_rate), 3),
            "tts_base_vs_target": round(embedder.similarity(spoken.base_audio, spoken.base_sample_rate, reference,
                                                            ref_rate), 3),
            "tts_converted_vs_target": round(embedder.similarity(spoken.audio, spoken.sample_rate, reference,
                                                                 ref_rate), 3),
        }
    except MissingArtifactError as err:
        figures["speaker_similarity"] = {"skipped": str(err)}
    try:
        from voiceapp.metrics import Transcriber, word_error_rate

        asr = Transcriber()
        figures["word_error_rate"] = {
            "source": round(word_error_rate(material["source_text"], asr.transcribe(source, src_rate)), 3),
            "converted": round(word_error_rate(material["source_text"],
                                               asr.transcribe(converted.audio, converted.sample_rate)), 3),
        }
    except MissingArtifactError as err:
        figures["word_error_rate"] = {"skipped": str(err)}
    return figures


def _write_report(out: Path, figures: dict, images: dict[str, Path], audio: dict[str, Path], cfg: DemoConfig) -> Path:
    rel = lambda p: Path(p).resolve().relative_to(out).as_posix()  # noqa: E731
    sim = figures.get("speaker_similarity", {})
    wer = figures.get("word_error_rate", {})
    tr = figures["training"]
    lines = [
        "# Voiceapp demo report", "",
        f"Made {time.strftime('%Y-%m-%d %H:%M')} offline: eSpeak NG spoke {figures['dataset']['minutes']:.1f} min in the "
        f"voice `{cfg.target_voice}`; a `{cfg.preset}` model was trained on it for {tr['epochs']} epochs "
        f"({tr['steps']} steps, {tr['seconds'] / 60:.1f} min on the CPU), then the voice `{cfg.source_voice}` was "
        "converted into it and a typed sentence was spoken in it.", "",
        "## Figures", "",
        "| measure | value |", "|---|---|",
    ]
    for key, value in sim.items():
        lines.append(f"| speaker similarity {key} | {value} |")
    for key, value in wer.items():
        lines.append(f"| word error rate ({key}) | {value} |")
    conv = figures["conversion"]
    lines += [f"| conversion real-time factor | {conv['rtf']} (transpose {conv['transpose_semitones']:+d}) |",
              f"| best validation mel L1 | {tr['best_validation_mel_l1']} (epoch {tr['best_epoch']}) |",
              f"| dataset | {figures['dataset']['clips']} clips, {figures['dataset']['minutes']} min |", "",
              "## Time per stage (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec} |" for name, sec in figures["stage_seconds"].items()]
    lines += [f"| **total** | **{figures['total_seconds']}** |", "", "## Pictures", ""]
    lines += [f"![{name}]({rel(path)})" for name, path in images.items()]
    lines += ["", "## Audio and files", ""]
    lines += [f"- {name}: [{rel(path)}]({rel(path)})" for name, path in audio.items()]
    lines += ["", "Speaker similarity is the cosine of resemblyzer speaker embeddings against held-out speech of the "
              "target voice (1 = same voice). A short CPU run gives a rough model; train longer (and with the full "
              "preset on a GPU) for real use.", ""]
    write_json_atomic(out / "report.json", {"config": asdict(cfg), "figures": figures,
                                           "images": {k: rel(v) for k, v in images.items()},
                                           "audio": {k: rel(v) for k, v in audio.items()}})
    return write_text_atomic(out / "report.md", "\n".join(lines))
