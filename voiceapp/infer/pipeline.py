"""Voice conversion: RVC's inference pipeline (rvc-facts.md §3), any length, in bounded memory.

    audio -> mono 16 kHz -> peak 0.95 -> 48 Hz zero-phase high-pass -> cuts at quiet points -> mirror pad
    -> f0 (+ transpose, f0 curve) -> per piece: content features -> retrieval blend -> x2 frames -> protect
    -> synthesis (seeded noise) -> crop the padding -> join -> RMS envelope mix -> resample -> peak 0.99

Only one piece (a few seconds plus its context) is in the networks at a time (two while they overlap); f0 is
computed in blocks; the model, content encoder, f0 method and index are loaded once through `services.cache`.

With more than one torch thread on the CPU (`InferConfig.workers`, `conversion_workers`) the pieces overlap in
that many worker threads, every torch op single-threaded: the decoder's tiles run one per worker while this thread
computes the next piece's prior and flow, and the content features of the next piece are computed while a piece
is synthesized (pieces.convert_overlapped). The noise is drawn in the serial order, so the output is the one-thread
conversion's (within 1e-6: the ONNX Runtime decoder then cuts its tiles in multiples of the workers).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from voiceapp.errors import Cancelled, ConfigError, InputError, StorageError, VoiceAppError
from voiceapp.infer import steps
from voiceapp.infer.pieces import Timer, conversion_workers, convert_overlapped, convert_serial, plan_pieces
from voiceapp.infer.pieces import Timer as _Timer, synthesize as _synthesize  # noqa: F401 - the live engine's
from voiceapp.infer.pieces import window_features as _piece_features  # noqa: F401 - ... window conversion
from voiceapp.infer.pitch import pitch_track
from voiceapp.infer.models import (_mtime, cached, default_f0, encoder_name_for, load_encoder_cached, load_f0_cached,
                                   load_retrieval_cached, load_voice)
from voiceapp.infer.steps import SAMPLE_RATE, Segmentation
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress

if TYPE_CHECKING:
    from voiceapp.services import Services
    from voiceapp.voices.rvc import VoiceModel

log = logging.getLogger(__name__)

__all__ = ["ConversionResult", "FileStatus", "InferConfig", "convert", "convert_file", "convert_folder",
           "load_voice"]

Precision = Literal["auto", "fp32", "bf16", "ort", "int8"]
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class InferConfig:
    transpose_semitones: float = 0.0   # pitch shift; +12 = one octave up
    f0_method: str | None = None       # None: rmvpe when its weights are present, else fcpe
    index_rate: float = 0.75           # 0: no retrieval; 1: features fully replaced by the index's nearest frames
    neighbour_blend: float = 1.0       # instant/quick voices: 1 = only the target's matched frames, 0 = the
                                       # source's own content (quick) -- less like the target, more like the input
    filter_radius: int = 3             # >2: median-filter harvest's pitch over 3 frames (RVC)
    rms_mix_rate: float = 0.25         # 1: keep the output's loudness; 0: copy the input's loudness envelope
    protect: float = 0.33              # <0.5: keep this much of the original features on unvoiced frames
    resample_sr: int = 0               # >=16000 and != model rate: resample the output to this rate
    speaker_id: int = 0
    seed: int = 0                      # noise seed: the same seed gives the same output
    f0_curve: str | None = None        # "time_s,f0_hz" csv replacing the pitch from the start on
    encoder: str | None = None         # None: the encoder the model was trained with
    noise_scale: float = 0.66666       # RVC's sampling temperature of the prior
    # Long audio is converted in pieces cut at the quietest 10 ms near every `segment_center_s`, each with
    # `segment_pad_s` of context per side. RVC uses (x_pad, x_query, x_center, x_max) = (1, 6, 38, 41) s on CPU;
    # the attention of the content encoder and the prior costs more per second in longer pieces, and the CPU
    # decoder works on fixed tiles anyway, so ~11 s pieces are cheaper (bench/infer.py).
    segment_pad_s: float = 0.5
    segment_query_s: float = 2.0
    segment_center_s: float = 10.0
    segment_max_s: float = 12.0
    decoder_context_s: float | None = 0.2   # decode only the kept part plus this much context (None: all the
                                            # padding, as RVC; the decoder reads ~0.12 s each side, so 0.2 s
                                            # changes only the noise drawn, and saves ~5 % of the decoder's work)
    piece_bucket_s: float = 1.0        # pieces are padded (masked) to one length, rounded up to this: few
                                       # distinct shapes keep oneDNN kernels reused and memory bounded
    f0_block_s: float = 30.0           # pitch is computed on blocks of at most this length (with context) ...
    f0_workers: int = 2                # ... in this many threads (the pitch trackers use one core each)
    workers: int = 0                   # threads for the pieces (features of the next piece and the decoder's
                                       # tiles side by side, the same output): 0 = torch's thread count, at most
                                       # the cores this process may use; 1 = one piece step after the other
    precision: Precision = "auto"      # CPU decoder: bf16 on CPUs with AMX/AVX-512 BF16, ort (float32 in ONNX
                                       # Runtime) on other AVX2/AVX-512 CPUs, else fp32 (PyTorch); int8 = ONNX
                                       # Runtime, faster still but less exact (speed.py, onnx_decoder.py)

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.index_rate <= 1.0, "index_rate must be in [0, 1]"),
            (0.0 <= self.neighbour_blend <= 1.0, "neighbour_blend must be in [0, 1]"),
            (0.0 <= self.rms_mix_rate <= 1.0, "rms_mix_rate must be in [0, 1]"),
            (0.0 <= self.protect <= 0.5, "protect must be in [0, 0.5]"),
            (0 <= self.filter_radius <= 7, "filter_radius must be in 0..7"),
            (-48 <= self.transpose_semitones <= 48, "transpose_semitones must be in -48..48"),
            (self.resample_sr == 0 or 8000 <= self.resample_sr <= 192_000, "resample_sr must be 0 or 8000..192000"),
            (self.speaker_id >= 0, "speaker_id must be >= 0"),
            (self.noise_scale >= 0, "noise_scale must be >= 0"),
            (self.segment_pad_s >= 0.1 and self.segment_query_s >= 0, "segment_pad_s must be >= 0.1"),
            (self.segment_center_s > 2 * self.segment_query_s, "segment_center_s must exceed 2*segment_query_s"),
            (self.segment_max_s >= self.segment_center_s, "segment_max_s must be >= segment_center_s"),
            (self.f0_block_s >= 10, "f0_block_s must be >= 10"),
            (0.01 <= self.piece_bucket_s <= 10, "piece_bucket_s must be in 0.01..10"),
            (1 <= self.f0_workers <= 64, "f0_workers must be 1..64"),
            (0 <= self.workers <= 64, "workers must be 0..64"),
            (self.precision in ("auto", "fp32", "bf16", "ort", "int8"),
             "precision must be auto, fp32, bf16, ort or int8"),
            (self.decoder_context_s is None or self.decoder_context_s >= 0.12,
             "decoder_context_s must be None or >= 0.12 (the decoder sees about 11 frames each side)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"InferConfig: {message}.")

    @property
    def segmentation(self) -> Segmentation:
        return Segmentation(self.segment_pad_s, self.segment_query_s, self.segment_center_s, self.segment_max_s)


@dataclass
class ConversionResult:
    audio: np.ndarray            # float32 mono at `sample_rate`
    sample_rate: int
    duration_s: float            # input duration
    timings: dict[str, float]    # seconds: load, f0, features, retrieval, synthesis, post, total (+ "cpu_<step>");
                                 # with both cores also "pieces" (the pieces' wall time, less than features +
                                 # synthesis by what overlapped) and "workers" (threads)
    segments: int
    f0_method: str | None
    encoder: str
    index_path: Path | None
    notes: list[str] = field(default_factory=list)
    output_path: Path | None = None

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (below 1 = faster than real time)."""
        return self.timings.get("total", 0.0) / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> str:
        t = self.timings
        steps_ = ", ".join(f"{k} {t.get(k, 0.0):.2f} s" for k in ("f0", "features", "retrieval", "synthesis"))
        index = self.index_path.name if self.index_path else "none"
        lines = [f"Converted {self.duration_s:.1f} s in {t.get('total', 0.0):.1f} s (real-time factor {self.rtf:.2f}; "
                 f"{1 / self.rtf if self.rtf else 0:.1f}x real time), {self.segments} piece(s), {self.sample_rate} Hz.",
                 f"Time: {steps_}, other {t.get('load', 0.0) + t.get('post', 0.0):.2f} s"
                 + (f" (features and synthesis overlapped in {t['workers']:.0f} threads: {t['pieces']:.2f} s "
                    "for both)." if t.get("workers", 1) > 1 and "pieces" in t else "."),
                 f"Pitch: {self.f0_method or 'none (model without pitch)'}; encoder: {self.encoder}; index: {index}."]
        if self.output_path:
            lines.append(f"Saved: {self.output_path}")
        lines += self.notes
        return "\n".join(lines)


@dataclass
class FileStatus:
    path: Path
    ok: bool
    message: str
    output_path: Path | None = None
    result: ConversionResult | None = None


def _prepare_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    from voiceapp.audio import resample, to_mono

    audio = np.asarray(audio)
    if audio.ndim == 2 and audio.shape[0] > audio.shape[1]:
        audio = audio.T  # (samples, channels) as Gradio gives it
    if audio.ndim not in (1, 2) or audio.shape[-1] == 0:
        raise InputError(f"Cannot convert audio of shape {audio.shape}; expected (samples,) or (channels, samples).")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max)
    audio = to_mono(audio.astype(np.float32, copy=False))
    if not np.all(np.isfinite(audio)):
        raise InputError("The input audio contains NaN or infinite samples; the file is damaged.")
    return resample(audio, int(sample_rate), SAMPLE_RATE)


@dataclass
class _Parts:
    """What one conversion uses, loaded (or taken from the cache) before the audio is touched."""

    encoder: Any
    encoder_name: str
    retrieval: Any
    f0_method: str | None
    f0_fn: Any
    run_voice: Any  # the voice, or its faster CPU copy for the precision (speed.py)


def _load_parts(voice: Any, cfg: InferConfig, index_path: Path | str | None, services: Services,
                progress: Progress = no_progress) -> _Parts:
    if cfg.speaker_id >= int(getattr(voice, "n_speakers", 1) or 1):
        raise InputError(f"Speaker id {cfg.speaker_id} does not exist in {Path(str(voice.path)).name}; it has "
                         f"{voice.n_speakers} speaker(s) (ids 0..{voice.n_speakers - 1}).")
    if cfg.f0_curve and not Path(cfg.f0_curve).is_file():
        raise InputError(f"f0 curve file {cfg.f0_curve} not found; give a 'time_s,f0_hz' csv or leave it empty.")
    encoder_name = encoder_name_for(voice, cfg.encoder)
    encoder = load_encoder_cached(encoder_name, voice, services)
    content_dim = int(getattr(voice.config, "content_dim", encoder.dim))
    if encoder.dim != content_dim:
        raise InputError(f"Encoder {encoder_name!r} gives {encoder.dim}-d features but "
                         f"{Path(str(voice.path)).name} expects {content_dim}-d ({voice.version}).")
    retrieval = None
    if index_path and cfg.index_rate > 0:
        from voiceapp.index.retrieval import check_dim

        retrieval = load_retrieval_cached(Path(index_path), services)
        check_dim(retrieval, content_dim)
    method = (cfg.f0_method or default_f0(services)) if voice.use_f0 else None
    f0_fn = load_f0_cached(method, services) if method else None
    from voiceapp.infer.speed import for_precision, resolve_precision

    precision = resolve_precision(cfg.precision, str(next(voice.net.parameters()).device))
    # keyed like the voice itself (file, modification time, device): an id() could be reused by another net
    run_voice = cached(services, ("voice-fast", str(voice.path), _mtime(Path(str(voice.path))),
                                  str(next(voice.net.parameters()).device), precision),
                       lambda: for_precision(voice, precision, _int8_graph_builder(voice, cfg, services, progress),
                                             _fp32_graph_builder(voice, services, progress)))
    return _Parts(encoder, encoder_name, retrieval, method, f0_fn, run_voice)


# Real speech the int8 decoder's activation ranges are calibrated on (public domain, shipped with the demo).
CALIBRATION_SPEECH = Path(__file__).resolve().parents[1] / "demo" / "data" / "ljspeech" / "LJ001-0001.flac"


def _int8_graph_builder(voice: Any, cfg: InferConfig, services: Services, progress: Progress = no_progress) -> Any:
    """`dec -> path of its cached int8 graph` for `voice` (speed.for_precision), built in the workspace."""
    def build(dec: Any) -> Path:
        from voiceapp.infer import onnx_decoder

        return onnx_decoder.int8_graph(dec, Path(str(voice.path)), services.workspace.models_dir,
                                       lambda: _capture_decoder_inputs(voice, cfg, services),
                                       int(getattr(voice.config, "gin_channels", 0) or 0), progress=progress)
    return build


def _fp32_graph_builder(voice: Any, services: Services, progress: Progress = no_progress) -> Any:
    """`dec -> path of its cached float32 ONNX graph` for `voice` (speed.for_precision), kept in the workspace."""
    def build(dec: Any) -> Path:
        from voiceapp.infer import onnx_decoder

        return onnx_decoder.fp32_graph(dec, Path(str(voice.path)), services.workspace.models_dir,
                                       int(getattr(voice.config, "gin_channels", 0) or 0), progress=progress)
    return build


def _capture_decoder_inputs(voice: Any, cfg: InferConfig, services: Services) -> list[tuple[Any, Any, Any]]:
    """The decoder's inputs (latent, f0, speaker) while `voice` converts the calibration speech in float32."""
    from voiceapp.audio import load_audio

    audio, rate = load_audio(CALIBRATION_SPEECH, SAMPLE_RATE)
    calibration = replace(cfg, precision="fp32", index_rate=0.0, f0_curve=None, resample_sr=0)
    decoder = _load_parts(voice, calibration, None, services).run_voice.net.dec
    captured: list[tuple[Any, Any, Any]] = []

    def keep(_module: Any, args: tuple, kwargs: dict) -> None:
        f0_hz = args[1] if len(args) > 1 else kwargs.get("f0_hz")
        captured.append((args[0].detach().float().clone(), f0_hz.detach().clone(), kwargs.get("g")))

    handle = decoder.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        convert(audio, rate, voice, calibration, services=services)
    finally:
        handle.remove()
    return captured


def convert(audio: np.ndarray, sample_rate: int, voice: VoiceModel, cfg: InferConfig = InferConfig(), *,
            index_path: Path | str | None = None, services: Services, progress: Progress = no_progress,
            cancel: CancelToken = NEVER) -> "ConversionResult":
    """Convert `audio` ((samples,) or (channels, samples), any rate) into `voice` (a loaded `VoiceModel`).

    Returns float32 mono audio at the model's rate (or `cfg.resample_sr`), as long as the input
    (within one model hop), plus the time spent in each step. `index_path` None: no retrieval. `services`: the
    workspace (base weights), the device and the cache the encoder, f0 method and index are loaded through.
    """
    import torch

    from voiceapp.audio import highpass

    timer = Timer()
    started, cpu_started = time.perf_counter(), time.process_time()
    t0 = started
    x16 = _prepare_input(audio, sample_rate)
    expected = int(round(np.asarray(audio).shape[-1] * int(voice.sample_rate) / int(sample_rate)))
    notes = ["Note: the input is silent (or nearly), so the output is too."] if np.abs(x16).max() < 1e-4 else []
    x16, _ = highpass(steps.peak_limit(x16), SAMPLE_RATE, zero_phase=True)
    if getattr(voice, "engine", "rvc") != "rvc":
        return _convert_world(x16, expected, voice, cfg, services, progress, cancel, notes, started, cpu_started)
    parts = _load_parts(voice, cfg, index_path, services, progress)
    t0 = timer.add("load", t0)

    seg = cfg.segmentation
    pad, hop = seg.pad, int(voice.config.hop_length)
    spans = steps.segment_spans(len(x16), steps.find_cuts(x16, seg))
    audio_pad = steps.reflect_pad(x16, pad)
    pitch = pitchf = None
    if parts.f0_fn is not None:
        pitch, pitchf = pitch_track(audio_pad, parts.f0_fn, parts.f0_method, seg.pad, cfg.transpose_semitones,
                                    cfg.filter_radius, cfg.f0_curve, cfg.f0_block_s, cancel,
                                    sub_progress(progress, 0.0, 0.15), cfg.f0_workers)
        t0 = timer.add("f0", t0)
    progress(0.15, "converting")
    generator = torch.Generator(device=str(next(voice.net.parameters()).device)).manual_seed(int(cfg.seed))
    plan = plan_pieces(spans, audio_pad, pad, pitch, pitchf, cfg)
    workers = conversion_workers(parts.run_voice, cfg.workers)
    if workers > 1:
        pieces = convert_overlapped(parts, plan, cfg, generator, pad, hop, timer, progress, cancel, workers)
    else:
        pieces = convert_serial(parts, plan, cfg, generator, pad, hop, timer, progress, cancel)
    del plan
    t0 = time.perf_counter()
    out, out_rate = _finish(pieces, expected, x16, int(voice.sample_rate), cfg, voice)
    timer.add("post", t0)
    timer.totals["total"] = time.perf_counter() - started
    timer.totals["cpu_total"] = time.process_time() - cpu_started
    progress(1.0, "done")
    return ConversionResult(out, out_rate, len(x16) / SAMPLE_RATE, timer.totals, len(spans), parts.f0_method,
                            parts.encoder_name, Path(index_path) if parts.retrieval is not None else None, notes)


def _convert_world(x16: np.ndarray, expected: int, voice: Any, cfg: InferConfig, services: Services,
                   progress: Progress,
                   cancel: CancelToken, notes: list[str], started: float, cpu_started: float) -> ConversionResult:
    from voiceapp.infer.world_engine import convert_world

    out = convert_world(x16, expected, voice, cfg, services=services, progress=progress, cancel=cancel)
    out.timings["total"] = time.perf_counter() - started
    out.timings["cpu_total"] = time.process_time() - cpu_started
    progress(1.0, "done")
    return ConversionResult(out.audio, out.sample_rate, len(x16) / SAMPLE_RATE, out.timings, out.segments,
                            out.f0_method, str(voice.embedder), None, notes + out.notes)


def _finish(pieces: list[np.ndarray], expected: int, x16: np.ndarray, out_rate: int, cfg: InferConfig,
            voice: Any) -> tuple[np.ndarray, int]:
    """Join the pieces to the input's length, mix the loudness envelope, resample, keep the peak <= 0.99."""
    out, at = np.zeros(expected, dtype=np.float32), 0
    while pieces and at < expected:  # each piece is freed once copied: the output is held about once
        piece = pieces.pop(0)
        out[at:at + len(piece)] = piece[:expected - at]
        at += len(piece)
    pieces.clear()
    out = steps.rms_mix(x16, out, out_rate, cfg.rms_mix_rate)
    if cfg.resample_sr >= 16000 and cfg.resample_sr != out_rate:
        from voiceapp.audio import resample

        out, out_rate = resample(out, out_rate, cfg.resample_sr), cfg.resample_sr
    out = steps.peak_safe(out)
    if not np.all(np.isfinite(out)):
        raise VoiceAppError(f"The conversion with {Path(str(voice.path)).name} produced invalid samples (NaN); "
                            "the model file may be damaged. Try another model.")
    return out.astype(np.float32, copy=False), out_rate


# ----------------------------------------------------------------------------------------------- files

def convert_file(path: Path | str, voice: VoiceModel, cfg: InferConfig = InferConfig(), *,
                 out_path: Path | str | None = None, fmt: str | None = None, index_path: Path | str | None = None,
                 services: Services,
                 progress: Progress = no_progress, cancel: CancelToken = NEVER) -> ConversionResult:
    """Load any audio file, convert it, and write it to `out_path` (wav/flac/mp3/ogg) when given.

    An `out_path` that is the input file (by path or by inode) is refused before any work (InputError)."""
    from voiceapp.audio import load_audio, save_audio

    if out_path is not None:
        check_file_output(path, out_path, fmt)
    started = time.perf_counter()
    audio, rate = load_audio(path, SAMPLE_RATE, mono=True)
    load_s = time.perf_counter() - started
    result = convert(audio, rate, voice, cfg, index_path=index_path, services=services, progress=progress,
                     cancel=cancel)
    result.timings["load"] = result.timings.get("load", 0.0) + load_s
    result.timings["total"] += load_s
    if out_path is not None:
        audio_out, rate_out = result.audio, result.sample_rate
        fmt_ = (fmt or Path(out_path).suffix.lstrip(".") or "wav").lower()
        if fmt_ == "mp3" and rate_out not in _MP3_RATES:
            from voiceapp.audio import resample

            new_rate = min(r for r in _MP3_RATES if r >= rate_out) if rate_out < max(_MP3_RATES) else max(_MP3_RATES)
            audio_out, rate_out = resample(audio_out, rate_out, new_rate), new_rate
            result.notes.append(f"mp3 cannot store {result.sample_rate} Hz; the file is written at {new_rate} Hz.")
        result.output_path = save_audio(out_path, steps.peak_safe(audio_out), rate_out, fmt)
    return result


def _output_name(path: Path, roots: list[Path], out_dir: Path, fmt: str) -> Path:
    for root in roots:
        if root.is_dir():
            try:
                return out_dir / path.relative_to(root).with_suffix(f".{fmt}")
            except ValueError:
                continue
    return out_dir / f"{path.stem}.{fmt}"


def check_file_output(path: Path | str, out_path: Path | str, fmt: str | None = None) -> Path:
    """The file a conversion of `path` writes for `out_path`; InputError when that is the input itself."""
    from voiceapp.audio.io import saved_path
    from voiceapp.workspace import same_file

    target = saved_path(out_path, fmt)
    if Path(path).exists() and same_file(path, target):
        raise InputError(f"The output {target} is the input file {path}: converting would replace the recording "
                         f"with its conversion. Give another output file, e.g. --out "
                         f"{target.with_name(f'{target.stem}_converted{target.suffix}')}.")
    return target


def _plan_folder(inputs: list[Path | str], out_dir: Path | str,
                 fmt: str) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """((input file, output file) for every audio file of `inputs`, (path, why) for inputs skipped).

    InputError, before any work, when an output file would replace one of the inputs."""
    from voiceapp.audio import find_audio_files

    roots = [Path(p) for p in inputs]
    files, skipped = find_audio_files(roots)
    if not files and not skipped:
        raise InputError(f"No audio files in {', '.join(str(r) for r in roots)}.")
    plan, taken = [], set()
    for path in files:  # a.wav and a.flac would both become a.<fmt>: number the second rather than lose the first
        target = _output_name(path, roots, Path(out_dir), fmt)
        n = 1
        while os.path.normcase(target) in taken:
            n += 1
            target = target.with_name(f"{_output_name(path, roots, Path(out_dir), fmt).stem}_{n}.{fmt}")
        taken.add(os.path.normcase(target))
        plan.append((path, target))
    by_inode: dict[tuple[int, int], Path] = {}
    for path in files:
        try:
            st = path.stat()
            by_inode[(st.st_dev, st.st_ino)] = path
        except OSError:
            continue
    clashes = []
    for path, target in plan:
        try:
            st = target.stat()
        except OSError:
            continue
        victim = by_inode.get((st.st_dev, st.st_ino))  # the same path, a hard link or a symbolic link
        if victim is not None:
            clashes.append((victim, target))
    if clashes:
        victim, target = clashes[0]
        more = f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""
        raise InputError(f"The output folder {Path(out_dir)} would replace input files: {target} is the input "
                         f"{victim}{more}. Nothing was converted; choose an output folder that holds none of the "
                         f"inputs, e.g. {Path(out_dir) / 'converted'}.")
    return plan, skipped


def check_folder_outputs(inputs: list[Path | str], out_dir: Path | str, fmt: str = "wav") -> None:
    """InputError when converting `inputs` into `out_dir` would write over one of the input files."""
    _plan_folder(inputs, out_dir, fmt)


def convert_folder(inputs: list[Path | str], out_dir: Path | str, voice: VoiceModel, cfg: InferConfig = InferConfig(),
                   *, fmt: str = "wav", index_path: Path | str | None = None, services: Services,
                   progress: Progress = no_progress, cancel: CancelToken = NEVER) -> list[FileStatus]:
    """Convert files and folders (recursively) into `out_dir`; a bad file is reported and skipped.

    Refused before any work (InputError) when an output file would replace an input file."""
    plan, skipped = _plan_folder(inputs, out_dir, fmt)
    statuses = [FileStatus(p, False, f"skipped: {why}") for p, why in skipped]
    files = [path for path, _ in plan]
    for i, (path, target) in enumerate(plan):
        cancel.raise_if_set()
        try:
            result = convert_file(path, voice, cfg, out_path=target, fmt=fmt, index_path=index_path,
                                  services=services, cancel=cancel,
                                  progress=sub_progress(progress, i / len(files), (i + 1) / len(files)))
        except (Cancelled, StorageError):  # a stop, or a full or read-only disk: the next file would fail too
            raise
        except (VoiceAppError, ValueError, RuntimeError) as err:
            log.warning("conversion of %s failed: %s", path, err)
            statuses.append(FileStatus(path, False, f"failed: {err}"))
            continue
        statuses.append(FileStatus(path, True, f"ok ({result.duration_s:.1f} s, RTF {result.rtf:.2f})",
                                   result.output_path, result))
    return statuses
