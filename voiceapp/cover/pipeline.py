"""Song cover in one step: a song in, the same song sung by a voice model out.

    read      check the song (audio, long enough, not silent); its loudness (BS.1770) and peak, streamed
    separate  song -> vocals + instrumental (the chosen separator; streamed in chunks)
    split     optional: vocals -> lead + backing vocals (a karaoke separator)
    convert   the lead vocals -> the voice model, in blocks cut at quiet points (each with context), with
              the Inference settings; written at the song's rate
    shift     when the transpose is not a whole number of octaves: the instrumental (and the backing vocals)
              shifted by the same semitones, so the music stays in the key of the new vocals
    remix     converted vocals + instrumental (+ backing) at the user's levels (dB), then one gain so that the
              cover is as loud as the song (capped so the peak stays below 0 dBFS)

Every stage streams or works on bounded blocks, so a song of any length fits in memory. Everything is written
to a temporary folder beside the output and moved into place only when the whole cover is done: a failure or
a cancel leaves nothing behind. A failure says which stage it came from ("Cover failed at stage 'convert': ...").
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from voiceapp.cover import streams
from voiceapp.errors import Cancelled, ConfigError, InputError, VoiceAppError, storage_error
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress

if TYPE_CHECKING:
    from voiceapp.infer.pipeline import InferConfig
    from voiceapp.services import Services

log = logging.getLogger(__name__)

STAGES = ("read", "separate", "split", "convert", "shift", "remix")
STEM_NAMES = ("vocals", "converted_vocals", "instrumental", "backing")
OUTPUT_FORMATS = ("wav", "flac", "mp3", "ogg")
MIN_SONG_S = 1.0
SILENT_PEAK = 1e-4           # -80 dBFS: nothing to separate or convert
_KARAOKE_WORDS = ("karaoke", "kara")


class CoverError(VoiceAppError):
    """A cover stage failed for a reason the user can act on (the message names the stage)."""


@dataclass(frozen=True)
class CoverConfig:
    separator: str | None = None           # vocals/instrumental separator (None: the default, dsp)
    backing_separator: str | None = None   # a karaoke separator: lead vs backing vocals (None: no split)
    vocals_gain_db: float = 0.0            # level of the converted lead vocals in the remix
    instrumental_gain_db: float = 0.0      # level of the instrumental
    backing_gain_db: float = 0.0           # level of the backing vocals (with a backing separator)
    shift_instrumental: bool = True        # shift the music by the transpose unless it is whole octaves
    match_loudness: bool = True            # make the cover as loud as the song (BS.1770 integrated loudness)
    output_format: str = "wav"             # the cover file: wav (float), flac (24-bit), mp3, ogg
    write_stems: bool = True               # vocals, converted_vocals, instrumental (+ backing) as float wav
    chunk_s: float = 30.0                  # separation / shift / remix step: bounds memory
    convert_block_s: float = 60.0          # the lead vocals are converted in blocks about this long ...
    convert_context_s: float = 1.0         # ... each with this much audio either side (cut off afterwards)

    def __post_init__(self) -> None:
        for name in ("vocals_gain_db", "instrumental_gain_db", "backing_gain_db"):
            value = getattr(self, name)
            if not (math.isfinite(value) and -60.0 <= value <= 24.0):
                raise ConfigError(f"CoverConfig.{name} must be within -60..24 dB, got {value}.")
        if self.output_format not in OUTPUT_FORMATS:
            raise ConfigError(f"Cover format {self.output_format!r}; choose one of {list(OUTPUT_FORMATS)}.")
        if self.chunk_s < 1.0 or self.convert_block_s < 10.0 or not 0.2 <= self.convert_context_s <= 10.0:
            raise ConfigError("CoverConfig needs chunk_s >= 1, convert_block_s >= 10 and "
                              "convert_context_s in 0.2..10.")


@dataclass
class CoverResult:
    source: Path
    output_path: Path
    stems: dict[str, Path]
    sample_rate: int
    channels: int
    duration_s: float
    song_lufs: float
    cover_lufs: float
    gain_db: float                          # the loudness-matching gain applied to the remix
    instrumental_shift_semitones: float     # 0 when the music was not shifted
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        times = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        shift = (f"the music shifted {self.instrumental_shift_semitones:+g} semitones"
                 if self.instrumental_shift_semitones else "the music unshifted")
        lines = [f"Cover of {self.source.name}: {self.duration_s:.1f} s, {self.sample_rate} Hz, "
                 f"{self.channels} channel(s), {shift}.",
                 f"Loudness: song {_lufs(self.song_lufs)}, cover {_lufs(self.cover_lufs)} "
                 f"(remix gain {self.gain_db:+.1f} dB).",
                 f"Time: {times}.", f"Saved: {self.output_path}"]
        if self.stems:
            lines.append(f"Stems: {', '.join(p.name for p in self.stems.values())} in {_stems_folder(self)}")
        return "\n".join(lines + self.notes)


def _lufs(value: float) -> str:
    return f"{value:.1f} LUFS" if math.isfinite(value) else "silent"


def _stems_folder(result: CoverResult) -> Path:
    return next(iter(result.stems.values())).parent


# ----------------------------------------------------------------------------------------------- registry

def karaoke_separators(workspace: Any) -> list[str]:
    """Installed separators that split lead from backing vocals (their voice stem is the lead voice).

    A UVR catalogue model says its purpose (voiceapp/assets/uvr.py, where present); a trained U-Net may say it in
    its sidecar (`info.purpose`); otherwise the name tells, as in UVR's naming ("karaoke", "kara").
    Weight-free separators never qualify."""
    from voiceapp.separate import separator as registry

    try:
        from voiceapp.assets.uvr import UVR_MODELS   # the UVR catalogue knows each model's purpose
    except ImportError:
        UVR_MODELS = {}
    names = [n for n in registry.list_separators(workspace) if n not in registry.DSP_SEPARATORS]
    return [n for n in names if _purpose(n, workspace, UVR_MODELS) == "karaoke"]


def _purpose(name: str, workspace: Any, catalogue: dict) -> str:
    from voiceapp.separate.model import read_sidecar

    if name in catalogue:
        return str(getattr(catalogue[name], "purpose", ""))
    try:
        stated = (read_sidecar(workspace.separator_dir(name)).get("info") or {}).get("purpose")
    except VoiceAppError:
        stated = None
    if stated:
        return str(stated)
    return "karaoke" if any(word in name.lower() for word in _KARAOKE_WORDS) else "vocals"


def shifts_music(transpose_semitones: float) -> bool:
    """True when a transpose is not a whole number of octaves (0, +-12, +-24 keep the key)."""
    octaves = transpose_semitones / 12.0
    return abs(octaves - round(octaves)) > 1e-6


def default_stems_dir(out_path: Path | str) -> Path:
    """`<folder>/<cover name>_stems/` beside the cover file."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}_stems")


def cover_output_path(workspace: Any, model: str | Path, song: str | Path, fmt: str) -> Path:
    """outputs/covers/<model>/<song stem>.<fmt>, numbered (`_2`, ...) so that no earlier cover or its stems
    folder is replaced."""
    from voiceapp.workspace import sanitize_name

    folder, stem = workspace.covers_dir(Path(str(model)).stem), sanitize_name(Path(str(song)).stem, "song name")
    path, n = folder / f"{stem}.{fmt}", 1
    while path.exists() or default_stems_dir(path).exists():
        n += 1
        path = folder / f"{stem}_{n}.{fmt}"
    return path


# ----------------------------------------------------------------------------------------------- stages

@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Time a stage; a failure in it is re-raised with the stage's name (a cancel passes unchanged)."""
    started = time.perf_counter()
    try:
        yield
    except Cancelled:
        raise
    except VoiceAppError as err:
        raise _named(err, name) from err
    except Exception as err:  # noqa: BLE001 - only re-labelled: expected errors stay expected, crashes crashes
        found = storage_error(err)
        if found is not None:
            raise _named(found, name) from err
        raise RuntimeError(f"Cover failed at stage {name!r}: {type(err).__name__}: {err}") from err
    finally:
        timings[name] = time.perf_counter() - started


def _named(err: VoiceAppError, stage: str) -> VoiceAppError:
    message = f"Cover failed at stage {stage!r}: {err}"
    try:
        return type(err)(message)
    except TypeError:
        return CoverError(message)


def _check_targets(song: Path, out_path: Path, stems_dir: Path | None) -> None:
    """InputError before any work when the cover or a stem would replace the song itself."""
    from voiceapp.workspace import same_file

    targets = [out_path] + ([stems_dir / f"{name}.wav" for name in STEM_NAMES] if stems_dir is not None else [])
    for target in targets:
        if same_file(song, target):
            raise InputError(f"The output {target} is the song {song.name} itself: the cover would replace it. "
                             f"Choose another output file or stems folder.")


def _read_song(song: Path, cfg: CoverConfig, cancel: CancelToken) -> tuple[Any, float]:
    """(audio info, integrated loudness) of the song; InputError for non-audio, too short or silent input."""
    from voiceapp.audio.io import audio_info, iter_blocks
    from voiceapp.audio.loudness import LoudnessMeter

    info = audio_info(song)
    if info.channels < 1 or info.sample_rate < 8000:
        raise InputError(f"{song.name}: {info.channels} channel(s) at {info.sample_rate} Hz is not a song this can "
                         f"cover; convert it to a normal audio file (mono or stereo, 8 kHz or more).")
    if 0 < info.duration_s < MIN_SONG_S:
        raise InputError(f"{song.name} is only {info.duration_s:.2f} s long; a cover needs at least {MIN_SONG_S:g} s "
                         f"of music. Pick the whole song.")
    meter = LoudnessMeter(info.sample_rate, info.channels)
    frames = 0
    for block in iter_blocks(song, None, mono=False, block_s=cfg.chunk_s):
        cancel.raise_if_set()
        block = block[None, :] if block.ndim == 1 else block
        if not np.all(np.isfinite(block)):
            raise InputError(f"{song.name}: contains NaN or infinite samples; the file is damaged. Export it again.")
        meter.add(block)
        frames += block.shape[1]
    if frames / info.sample_rate < MIN_SONG_S:
        raise InputError(f"{song.name} is only {frames / info.sample_rate:.2f} s long; a cover needs at least "
                         f"{MIN_SONG_S:g} s of music. Pick the whole song.")
    if meter.peak < SILENT_PEAK:
        raise InputError(f"{song.name} is silent (peak below -80 dBFS): there is nothing to cover. Check that the "
                         f"right file was picked and that it plays.")
    from voiceapp.audio.io import AudioInfo

    return AudioInfo(song, info.sample_rate, info.channels, frames), meter.integrated()


def _weights(cfg: CoverConfig, split: bool, shift: bool) -> dict[str, float]:
    """Share of the progress bar per stage (separation and conversion take the longest)."""
    weights = {"read": 0.04, "separate": 0.3, "split": 0.2 if split else 0.0, "convert": 0.4,
               "shift": 0.12 if shift else 0.0, "remix": 0.08}
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


class _Bar:
    """Hands out each stage's slice of the progress bar, in order."""

    def __init__(self, progress: Progress, weights: dict[str, float]) -> None:
        self.progress, self.weights, self.at = progress, weights, 0.0

    def stage(self, name: str) -> Progress:
        start, self.at = self.at, self.at + self.weights[name]
        child = sub_progress(self.progress, start, self.at)
        child(0.0, f"{name}…")
        return lambda fraction, message: child(fraction, f"{name}: {message}")


# ----------------------------------------------------------------------------------------------- the stage

def make_cover(song: Path | str, voice: Any, infer_cfg: InferConfig, cfg: CoverConfig = CoverConfig(), *,
               out_path: Path | str, stems_dir: Path | str | None = None, index_path: Path | str | None = None,
               services: Services, progress: Progress = no_progress, cancel: CancelToken = NEVER) -> CoverResult:
    """Cover `song` (any audio file) in `voice` (a loaded voice model) and write it to `out_path`.

    The cover has the song's length, rate (or `infer_cfg.resample_sr` when set) and channels, in
    `cfg.output_format`. With `cfg.write_stems`, `stems_dir` (default `<out>_stems/`) receives float wavs at the
    song's rate: `vocals` (the lead vocals that were converted), `converted_vocals` (mono), `instrumental` and,
    with a backing separator, `backing` (both as mixed: shifted when the music was shifted). Nothing is written
    when any stage fails or is cancelled. Raises VoiceAppError naming the stage, or Cancelled."""
    from voiceapp.audio.io import saved_path
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    song, timings = Path(song), {}
    out_path = saved_path(out_path, cfg.output_format)
    stems = Path(stems_dir) if stems_dir is not None else default_stems_dir(out_path)
    stems = stems if cfg.write_stems else None
    split = cfg.backing_separator is not None
    shift = cfg.shift_instrumental and shifts_music(infer_cfg.transpose_semitones)
    bar = _Bar(progress, _weights(cfg, split, shift))
    with _stage("read", timings):
        _check_targets(song, out_path, stems)
        info, song_lufs = _read_song(song, cfg, cancel)
        separator = load_separator(cfg.separator, services.workspace, services.device, services.cache)
        karaoke = None
        if split:
            available = karaoke_separators(services.workspace)
            if cfg.backing_separator not in available:
                raise InputError(f"{cfg.backing_separator!r} is not an installed karaoke separator (lead vs backing "
                                 f"vocals); installed: {available or 'none'}. Get one (e.g. UVR-MDX-NET Karaoke 2) "
                                 f"in the Separate tab, or turn the lead/backing split off.")
            karaoke = load_separator(cfg.backing_separator, services.workspace, services.device, services.cache)
        bar.stage("read")(1.0, f"{info.duration_s:.0f} s at {info.sample_rate} Hz")
    try:   # the work folder sits beside the output, so the finished files are moved in by renames
        out_path.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out_path.stem}.cover-", dir=out_path.parent))
    except OSError as err:
        raise (storage_error(err, out_path.parent) or err) from err
    try:
        sep_cfg = SeparateConfig(chunk_s=cfg.chunk_s, output_format="wav")
        with _stage("separate", timings):
            separated = separate_file(song, work, separator, sep_cfg, bar.stage("separate"), cancel,
                                      vocals_name="vocals", instrumental_name="instrumental")
        lead, backing = separated.vocals, None
        if karaoke is not None:
            with _stage("split", timings):
                parts = separate_file(separated.vocals, work, karaoke, sep_cfg, bar.stage("split"), cancel,
                                      vocals_name="lead", instrumental_name="backing")
                lead, backing = parts.vocals, parts.instrumental
        converted = work / "converted_vocals.wav"
        with _stage("convert", timings):
            notes = streams.convert_lead(lead, converted, voice, infer_cfg, cfg.convert_block_s, cfg.convert_context_s,
                                         Path(index_path) if index_path else None, services, bar.stage("convert"),
                                         cancel)
        instrumental = separated.instrumental
        shift_semitones = float(infer_cfg.transpose_semitones) if shift else 0.0
        if shift:
            with _stage("shift", timings):
                part = bar.stage("shift")
                shifted = work / "instrumental_shifted.wav"
                streams.shift_file(instrumental, shifted, shift_semitones, cfg.chunk_s, cancel,
                            sub_progress(part, 0.0, 0.7 if backing else 1.0))
                instrumental = shifted
                if backing is not None:
                    streams.shift_file(backing, work / "backing_shifted.wav", shift_semitones, cfg.chunk_s, cancel,
                                sub_progress(part, 0.7, 1.0))
                    backing = work / "backing_shifted.wav"
        with _stage("remix", timings):
            remix = bar.stage("remix")
            mix_parts = [(converted, 10 ** (cfg.vocals_gain_db / 20)),
                         (instrumental, 10 ** (cfg.instrumental_gain_db / 20))]
            if backing is not None:
                mix_parts.append((backing, 10 ** (cfg.backing_gain_db / 20)))
            premix = work / "premix.wav"
            mix_lufs, mix_peak = streams.remix(mix_parts, premix, info.sample_rate, info.channels, info.frames,
                                        cfg.chunk_s, cancel)
            remix(0.5, "mixed")
            gain_db, more = streams.loudness_gain(song_lufs, mix_lufs, mix_peak, cfg.match_loudness)
            notes += more
            final = work / f"cover.{cfg.output_format}"
            out_rate = streams.finish(premix, final, gain_db, cfg.output_format,
                               infer_cfg.resample_sr or info.sample_rate, cfg.chunk_s, cancel)
            if out_rate not in (info.sample_rate, infer_cfg.resample_sr or info.sample_rate):
                notes.append(f"mp3 cannot store {infer_cfg.resample_sr or info.sample_rate} Hz; the cover is "
                             f"written at {out_rate} Hz.")
            cancel.raise_if_set()
            stem_paths = _place(final, out_path, stems, {"vocals": lead, "converted_vocals": converted,
                                                         "instrumental": instrumental, "backing": backing})
            remix(1.0, "done")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cover_lufs = mix_lufs + gain_db if math.isfinite(mix_lufs) else mix_lufs
    return CoverResult(song, out_path, stem_paths, out_rate, info.channels, info.duration_s, song_lufs, cover_lufs,
                       gain_db, shift_semitones, timings, notes)


def _place(final: Path, out_path: Path, stems_dir: Path | None, stems: dict[str, Path | None]) -> dict[str, Path]:
    """Move the finished cover and stems into place (renames on one disk); returns the stems' new paths."""
    placed: dict[str, Path] = {}
    if stems_dir is not None:
        stems_dir.mkdir(parents=True, exist_ok=True)
        for name, path in stems.items():
            if path is not None:
                target = stems_dir / f"{name}.wav"
                _move(path, target)
                placed[name] = target
    _move(final, out_path)
    return placed


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:  # another disk (a stems folder elsewhere): copy beside the target, then rename
        from voiceapp.workspace import atomic_path

        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
