"""speak: text -> base speech (a TTS engine) -> the conversion pipeline into a voice model.

    result = speak("Hello there.", "espeak", "en-us", TtsConfig(), voice_model="alice", services=services)
    result.base_audio / result.base_sample_rate   # the engine's speech, sentences joined
    result.audio / result.sample_rate             # the same speech in the model's voice (None without a model)

Long text is split into sentences (`voiceapp.tts.text`); each one is synthesised, trimmed of the
engine's silence, faded in and out and joined with a fixed pause, so there is no click and no gap
longer than the pause. With a model, consecutive sentences are converted in groups of up to
`TtsConfig.convert_group_s` seconds (fewer pipeline calls, each with its padding) with the Inference
settings (`InferConfig`), and the converted groups are joined the same way. The transpose is
suggested from the base speech's median f0 against the model's training f0 (`suggest_transpose`)
and applied when `TtsConfig.auto_transpose`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import ConfigError, InputError
from voiceapp.services import Services
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.tts.engine import RATE_PERCENT_MAX, RATE_PERCENT_MIN, TtsEngine
from voiceapp.tts.engines import get_engine
from voiceapp.tts.text import join_pieces, split_sentences, trim_silence

log = logging.getLogger(__name__)

# Typical median speaking f0 (Hz) used when a model carries no pitch statistics of its training data.
TYPICAL_F0_HZ: dict[str, float] = {"male": 120.0, "female": 210.0, "unknown": 160.0}
TARGET_SEXES = ("auto", "male", "female")
TRANSPOSE_LIMIT = 12
_F0_FILES_SAMPLED = 300
SPEECH_F0_RANGE_HZ = (60.0, 500.0)  # a median speaking pitch outside this is not a pitch (noise, whisper)
# Keys in a voice model's metadata that may hold the median f0 (Hz) of its training data.
F0_METADATA_KEYS = ("f0_median_hz", "train_f0_median_hz", "median_f0_hz", "f0_median")


@dataclass(frozen=True)
class TtsConfig:
    rate_percent: float = 0.0       # speaking rate change: +50 = 1.5x as fast, -50 = half as fast
    pause_s: float = 0.25           # silence between sentences (0: 10 ms crossfade)
    fade_ms: float = 10.0           # fade at both ends of every sentence (no clicks at joins)
    max_sentence_chars: int = 250   # a longer sentence is cut at commas, then spaces
    convert_group_s: float = 12.0   # sentences are converted in groups of up to this much speech
    max_text_chars: int = 20_000    # about 20 minutes of speech; longer texts are refused (memory)
    auto_transpose: bool = True     # with a voice model: use the suggested transpose instead of InferConfig's
    target_sex: str = "auto"        # "auto" | "male" | "female": used only when the model has no f0 statistics

    def __post_init__(self) -> None:
        if not RATE_PERCENT_MIN <= self.rate_percent <= RATE_PERCENT_MAX:
            raise ConfigError(f"TtsConfig.rate_percent must be {RATE_PERCENT_MIN}..{RATE_PERCENT_MAX}, "
                              f"got {self.rate_percent}")
        if not 0.0 <= self.pause_s <= 0.5:
            raise ConfigError(f"TtsConfig.pause_s must be 0..0.5 s, got {self.pause_s}")
        if not 0.0 <= self.fade_ms <= 50.0:
            raise ConfigError(f"TtsConfig.fade_ms must be 0..50, got {self.fade_ms}")
        if self.max_sentence_chars < 20:
            raise ConfigError(f"TtsConfig.max_sentence_chars must be >= 20, got {self.max_sentence_chars}")
        if self.max_text_chars < 1:
            raise ConfigError(f"TtsConfig.max_text_chars must be >= 1, got {self.max_text_chars}")
        if not 1.0 <= self.convert_group_s <= 60.0:
            raise ConfigError(f"TtsConfig.convert_group_s must be 1..60 s, got {self.convert_group_s}")
        if self.target_sex not in TARGET_SEXES:
            raise ConfigError(f"TtsConfig.target_sex must be one of {TARGET_SEXES}, got {self.target_sex!r}")


@dataclass(frozen=True)
class TransposeSuggestion:
    semitones: int          # round(12 * log2(model_f0 / base_f0)), clamped to +-12
    base_f0_hz: float       # median f0 of the base speech (voiced frames)
    model_f0_hz: float      # median f0 of the model's training data, or a typical value
    source: str             # where model_f0_hz comes from, in words
    applied: bool = False

    @property
    def message(self) -> str:
        verb = "applied" if self.applied else "suggested"
        return (f"Transpose {self.semitones:+d} semitones {verb}: base voice median {self.base_f0_hz:.0f} Hz, "
                f"model {self.model_f0_hz:.0f} Hz ({self.source}).")


@dataclass
class SpeakResult:
    sentences: list[str]
    engine: str
    voice: str
    base_audio: np.ndarray
    base_sample_rate: int
    audio: np.ndarray | None = None       # converted speech (None without a voice model)
    sample_rate: int | None = None
    transpose: TransposeSuggestion | None = None
    infer_config: Any = None              # the InferConfig actually used
    index_path: Path | None = None        # the retrieval index used
    model_name: str | None = None         # the voice model's file stem
    notes: list[str] = field(default_factory=list)  # things the user should know (shown under the result)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def base_duration_s(self) -> float:
        return len(self.base_audio) / self.base_sample_rate

    @property
    def duration_s(self) -> float:
        if self.audio is None or not self.sample_rate:
            return self.base_duration_s
        return len(self.audio) / self.sample_rate


def synthesize_text(text: str, engine: TtsEngine, voice: str | None, cfg: TtsConfig,
                    progress: Progress = no_progress, cancel: CancelToken = NEVER
                    ) -> tuple[list[str], list[np.ndarray], int]:
    """Speak `text` sentence by sentence; returns (sentences, trimmed pieces, sample rate)."""
    sentences = split_sentences(text, cfg.max_sentence_chars)
    if not sentences:
        raise InputError("There is no text to speak; type a sentence or upload a .txt file with words in it.")
    pieces: list[np.ndarray] = []
    sentences_kept: list[str] = []
    sample_rate = 0
    for i, sentence in enumerate(sentences):
        cancel.raise_if_set()
        progress(i / len(sentences), f"speaking {i + 1}/{len(sentences)}")
        audio, rate = engine.synthesize(sentence, voice, cfg.rate_percent)
        if sample_rate and rate != sample_rate:
            from voiceapp.audio import resample

            audio, rate = resample(audio, rate, sample_rate), sample_rate
        sample_rate = rate
        audio = trim_silence(audio, rate)
        if len(audio):
            pieces.append(audio)
            sentences_kept.append(sentence)
    progress(1.0, "speech ready")
    if not pieces:
        raise InputError(f"The {engine.name} engine produced only silence for this text; check the voice's "
                         f"language matches the text.")
    return sentences_kept, pieces, sample_rate


def median_f0_hz(audio: np.ndarray, sample_rate: int) -> float:
    """Median f0 (Hz) over the voiced 10 ms frames of `audio` (parselmouth autocorrelation, "pm")."""
    from voiceapp.audio import resample
    from voiceapp.features.f0 import load_f0_method

    audio_16k = resample(audio, sample_rate, 16_000) if sample_rate != 16_000 else audio
    f0 = np.asarray(load_f0_method("pm")(audio_16k.astype(np.float32)))
    voiced = f0[f0 > 0]
    median = float(np.median(voiced)) if len(voiced) else 0.0
    if not SPEECH_F0_RANGE_HZ[0] <= median <= SPEECH_F0_RANGE_HZ[1]:
        raise InputError("The base speech has no clear pitch (a whispering or robotic voice?), so no transpose "
                         "was suggested; the transpose is kept as set.")
    return median


def model_f0_hz(voice: Any, workspace=None, target_sex: str = "auto") -> tuple[float, str]:
    """Median f0 of a voice model's training data and where it came from: the model's metadata,
    else the f0 files of its experiment `logs/<name>/features/f0/`, else a typical value."""
    metadata = dict(getattr(voice, "metadata", None) or {})
    for entry in (metadata, metadata.get("voiceapp") if isinstance(metadata.get("voiceapp"), dict) else {}):
        for key in F0_METADATA_KEYS:
            value = entry.get(key)
            if isinstance(value, (int, float)) and value > 0:
                return float(value), "median of its training data, from the model file"
    path = getattr(voice, "path", None)
    if workspace is not None and path is not None:
        f0_dir = workspace.experiment(Path(path).parent.name).f0_dir
        if f0_dir.is_dir():
            files = sorted(f0_dir.glob("*.npy"))
            files = files[::max(1, len(files) // _F0_FILES_SAMPLED)]  # the median of a spread sample is enough
            voiced = [v[v > 0] for v in (np.load(p) for p in files)]
            voiced = np.concatenate(voiced) if voiced else np.zeros(0)
            if len(voiced):
                return float(np.median(voiced)), f"median of the training features in {f0_dir}"
    sex = target_sex if target_sex in TYPICAL_F0_HZ else "unknown"
    label = "a typical voice" if sex == "unknown" else f"a typical {sex} voice"
    return TYPICAL_F0_HZ[sex], (f"{label}: the model has no pitch statistics; pick male/female under "
                                f"'Model voice' or set the transpose by hand")


def suggest_transpose(base_f0_hz: float, target_f0_hz: float, source: str) -> TransposeSuggestion:
    """Semitones that move the base voice's median f0 onto the model's: round(12*log2(target/base)), +-12."""
    if base_f0_hz <= 0 or target_f0_hz <= 0:
        raise InputError(f"Cannot suggest a transpose from f0 {base_f0_hz:.0f} Hz to {target_f0_hz:.0f} Hz.")
    semitones = int(round(12 * math.log2(target_f0_hz / base_f0_hz)))
    semitones = max(-TRANSPOSE_LIMIT, min(TRANSPOSE_LIMIT, semitones))
    return TransposeSuggestion(semitones, base_f0_hz, target_f0_hz, source)


def resolve_voice_model(voice_model: Any, services: Services) -> tuple[Any, Path | None]:
    """(VoiceModel, its path) from a loaded VoiceModel, a .pth path or a model name under models/voices/."""
    if voice_model is None or (isinstance(voice_model, str) and not voice_model.strip()):
        return None, None
    if hasattr(voice_model, "net"):
        return voice_model, Path(str(voice_model.path)) if getattr(voice_model, "path", None) else None
    from voiceapp.infer.models import load_voice

    voice = load_voice(voice_model, services)
    return voice, Path(str(voice.path))


def save_result(result: SpeakResult, out_dir: Path, fmt: str = "wav") -> tuple[Path, Path | None]:
    """Write the base speech and the converted speech (if any) as `<time>_<engine>_<voice>.<fmt>` and
    `<time>_<engine>_<voice>_<model>.<fmt>` in `out_dir`; returns both paths (the second None without a model)."""
    from voiceapp.audio import save_audio
    from voiceapp.workspace import sanitize_name

    stem = sanitize_name(f"{time.strftime('%Y%m%d-%H%M%S')}_{result.engine}_{result.voice.replace('+', '-')}")
    subtype = "PCM_16" if fmt == "wav" else None  # plays in every browser
    base_path = save_audio(Path(out_dir) / f"{stem}.{fmt}", result.base_audio, result.base_sample_rate, fmt,
                           subtype)
    if result.audio is None:
        return Path(base_path), None
    tag = sanitize_name(result.model_name or "converted", "model name")
    converted = save_audio(Path(out_dir) / f"{stem}_{tag}.{fmt}", result.audio, result.sample_rate, fmt, subtype)
    return Path(base_path), Path(converted)


def speak(text: str, engine: str | None = None, voice: str | None = None, cfg: TtsConfig = TtsConfig(),
          voice_model: Any = None, infer_cfg: Any = None, *, index_path: str | Path | None = None,
          services: Services, progress: Progress = no_progress, cancel: CancelToken = NEVER) -> SpeakResult:
    """Speak `text` with a TTS engine and, when `voice_model` is given (a VoiceModel, a .pth path or
    a model name under models/voices/), convert it into that voice with `infer_cfg` (InferConfig;
    its defaults when None). `index_path`: the retrieval index; None finds the one beside the model,
    "" uses none.
    Reads nothing else and writes nothing; returns both the base and the converted speech."""
    if not text or not text.strip():
        raise InputError("There is no text to speak; type a sentence or upload a .txt file.")
    if len(text) > cfg.max_text_chars:
        raise InputError(f"The text has {len(text):,} characters; at most {cfg.max_text_chars:,} (about 20 minutes "
                         f"of speech) are spoken at once. Split it into parts.")
    workspace = services.workspace
    tts = get_engine(engine, workspace)
    chosen = tts.voice(voice)  # unknown voice -> InputError before any work
    timings: dict[str, float] = {}
    started = time.perf_counter()
    loaded, model_path = resolve_voice_model(voice_model, services)
    timings["load_model_s"] = time.perf_counter() - started
    base_share = 0.15 if loaded is not None else 1.0
    started = time.perf_counter()
    sentences, pieces, base_rate = synthesize_text(text, tts, chosen.id, cfg,
                                                   sub_progress(progress, 0.0, base_share), cancel)
    timings["tts_s"] = time.perf_counter() - started
    base_audio, _ = join_pieces(pieces, base_rate, cfg.pause_s, cfg.fade_ms / 1000)
    result = SpeakResult(sentences, tts.name, chosen.id, base_audio, base_rate, timings=timings)
    if loaded is None:
        progress(1.0, "done")
        return result
    _convert_pieces(result, pieces, loaded, model_path, cfg, infer_cfg, index_path, services,
                    sub_progress(progress, base_share, 1.0), cancel)
    progress(1.0, "done")
    return result


def group_pieces(pieces: list[np.ndarray], sample_rate: int, max_group_s: float) -> list[list[int]]:
    """Consecutive piece indices grouped up to `max_group_s` of speech each (a longer piece is its own group)."""
    groups: list[list[int]] = []
    length = 0
    for i, piece in enumerate(pieces):
        if groups and length + len(piece) <= max_group_s * sample_rate:
            groups[-1].append(i)
            length += len(piece)
        else:
            groups.append([i])
            length = len(piece)
    return groups


def _convert_pieces(result: SpeakResult, pieces: list[np.ndarray], voice: Any, model_path: Path | None,
                    cfg: TtsConfig, infer_cfg: Any, index_path: str | Path | None, services: Services,
                    progress: Progress, cancel: CancelToken) -> None:
    """Convert the sentences in groups of up to `TtsConfig.convert_group_s` (each group: its sentences joined
    with the pause), then join the converted groups with the same pause. The converted speech is as long
    as the base speech (within one model hop per group)."""
    from voiceapp.infer.pipeline import InferConfig, convert
    from voiceapp.voices.store import find_index

    infer_cfg = infer_cfg if infer_cfg is not None else InferConfig()
    workspace = services.workspace
    started = time.perf_counter()
    try:
        base_f0 = median_f0_hz(result.base_audio, result.base_sample_rate) if getattr(voice, "use_f0", True) else 0
    except InputError as err:  # e.g. a whispering voice: keep the transpose as given
        log.warning("%s", err)
        result.notes.append(str(err))
        base_f0 = 0
    if base_f0 > 0:
        target_f0, source = model_f0_hz(voice, workspace, cfg.target_sex)
        suggestion = suggest_transpose(base_f0, target_f0, source)
        if cfg.auto_transpose:
            suggestion = dataclasses.replace(suggestion, applied=True)
            infer_cfg = dataclasses.replace(infer_cfg, transpose_semitones=suggestion.semitones)
        result.transpose = suggestion
        log.info(suggestion.message)
    result.timings["f0_suggest_s"] = time.perf_counter() - started
    if index_path is None and model_path is not None:
        index_path = find_index(model_path, workspace)
    started = time.perf_counter()
    groups = group_pieces(pieces, result.base_sample_rate, cfg.convert_group_s)
    converted, out_rate, done = [], 0, 0
    for group in groups:
        cancel.raise_if_set()
        step = sub_progress(progress, done / len(pieces), (done + len(group)) / len(pieces))
        step(0.0, f"converting sentences {group[0] + 1}-{group[-1] + 1} of {len(pieces)}")
        audio, _ = join_pieces([pieces[i] for i in group], result.base_sample_rate, cfg.pause_s, cfg.fade_ms / 1000)
        out = convert(audio, result.base_sample_rate, voice, infer_cfg, index_path=index_path or None,
                      services=services, progress=step, cancel=cancel)
        converted.append(np.asarray(out.audio, dtype=np.float32).reshape(-1))
        out_rate = int(out.sample_rate)
        for key, value in (out.timings or {}).items():
            result.timings[f"convert_{key}_s"] = result.timings.get(f"convert_{key}_s", 0.0) + float(value)
        done += len(group)
    result.timings["convert_s"] = time.perf_counter() - started
    result.audio, _ = join_pieces(converted, out_rate, cfg.pause_s, cfg.fade_ms / 1000)
    result.sample_rate = out_rate
    result.infer_config = infer_cfg
    result.model_name = model_path.stem if model_path is not None else None
    result.index_path = Path(index_path) if index_path else None
