"""Build separator training material from freely licensed speech and instrumental music (the shipped recipe).

No licensed singing or multitrack stems are needed: vocals are real speech made singing-like, accompaniments are
real instrumental music plus generated drums and synth notes, and the result is a stems folder that
`voiceapp.separate.train.train_separator` reads (one folder per "song": `vocals.flac` or `accompaniment.flac`).

Vocals, per speech recording (mono, at `sample_rate`):
- "sung" variant: WORLD analysis (pyworld DIO + StoneMask, CheapTrick, D4C), voiced stretches lengthened
  (x1 to x`max_stretch`, vowels held), f0 replaced by held semitone notes near the speaker's own pitch with
  vibrato (4.5-6.5 Hz, 15-60 cents) and glides, a random transpose and formant warp, then WORLD synthesis;
- "spoken" variant: the recording pitch-shifted by resampling (formants move with it);
- both: random EQ (smooth +/- 6 dB curve), synthetic room reverb (exponential noise tail, RT60 0.2-1.6 s) with the
  reverb kept in the target (a song's vocals stem holds its reverb), then concatenated into takes with short gaps.
Accompaniment, per take of `take_s` seconds:
- an excerpt of an instrumental recording, pitch-shifted by resampling, resampled to `sample_rate`; when the
  recording is band-limited (8 kHz music-on-hold), its top octave is continued by a soft-clipping exciter so
  the mixture has energy where real songs have it (cymbals, string noise);
- sometimes a second excerpt on top, generated drums (kick, snare, hi-hats at a random tempo) and synth notes
  (decaying harmonic tones, a random chord progression); random EQ and gain.
Takes are RMS-normalised to -20 dBFS; the Remixer adds the random relative gains during training.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voiceapp.errors import ConfigError, InputError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import atomic_path

log = logging.getLogger(__name__)

TARGET_RMS_DB = -20.0


@dataclass(frozen=True)
class RecipeConfig:
    sample_rate: int = 22050        # training rate (the U-Net models bins up to ~8 kHz; 22.05 kHz holds them)
    sung_variants: int = 1          # WORLD "sung" copies per speech file
    spoken_variants: int = 1        # pitch-shifted speech copies per speech file
    take_s: float = 30.0            # length of each written vocals / accompaniment take
    accomp_takes: int = 60          # accompaniment takes to write
    min_speech_s: float = 0.4       # shorter recordings are skipped
    max_stretch: float = 2.5        # longest vowel lengthening factor
    transpose_semitones: tuple[float, float] = (-7.0, 4.0)
    drums_prob: float = 0.6
    synth_prob: float = 0.35
    second_music_prob: float = 0.3
    seed: int = 0
    guitar_takes: int = 40          # extra accompaniment takes built around generated distorted guitar + bass

    def __post_init__(self) -> None:
        if self.sample_rate < 8000 or self.take_s <= 1.0 or self.accomp_takes < 1:
            raise ConfigError(f"RecipeConfig needs sample_rate >= 8000, take_s > 1 and accomp_takes >= 1, got {self}")
        if self.sung_variants < 0 or self.spoken_variants < 0 or self.sung_variants + self.spoken_variants < 1:
            raise ConfigError(f"RecipeConfig needs at least one vocals variant per file, got {self}")


@dataclass
class BuiltSet:
    folder: Path
    vocals_takes: int
    accomp_takes: int
    vocals_minutes: float
    accomp_minutes: float
    skipped: list[tuple[str, str]]


# ---------------------------------------------------------------- shared effects

def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def normalize_rms(x: np.ndarray, target_db: float = TARGET_RMS_DB) -> np.ndarray:
    """Scale to `target_db` RMS measured over the louder half of 50 ms frames (gaps do not count)."""
    hop = 1024
    frames = x[: len(x) // hop * hop].reshape(-1, hop) if len(x) >= hop else x[None, :]
    energy = np.sort(np.mean(frames.astype(np.float64) ** 2, axis=1))[::-1]
    level = float(np.sqrt(np.mean(energy[: max(1, len(energy) // 2)])))
    if level < 1e-6:
        return x.astype(np.float32)
    out = x * (10 ** (target_db / 20) / level)
    top = float(np.max(np.abs(out)))
    return (out * (0.98 / top) if top > 0.98 else out).astype(np.float32)


def random_eq(x: np.ndarray, rate: int, rng: np.random.Generator, max_db: float = 6.0) -> np.ndarray:
    """A smooth random gain curve (+/- max_db at 6 log-spaced points, interpolated in log frequency)."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    points = np.geomspace(60.0, rate / 2, 6)
    gains = rng.uniform(-max_db, max_db, size=len(points))
    curve = np.interp(np.log(np.maximum(freqs, 30.0)), np.log(points), gains)
    return np.fft.irfft(spec * 10 ** (curve / 20), n=len(x)).astype(np.float32)


def reverb(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic room: exponentially decaying noise tail (RT60 0.2-1.6 s), early-lowpassed, mixed 0-45 % wet."""
    from scipy import signal

    rt60 = rng.uniform(0.2, 1.6)
    n = int(rt60 * rate)
    t = np.arange(n) / rate
    ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    sos = signal.butter(2, min(rng.uniform(3000, 9000), 0.45 * rate), fs=rate, output="sos")
    ir = signal.sosfilt(sos, ir)
    ir[: int(rng.uniform(0.005, 0.03) * rate)] = 0.0  # pre-delay
    wet = signal.fftconvolve(x, ir)[: len(x)]
    wet *= _rms(x) / max(_rms(wet), 1e-9)
    mix = rng.uniform(0.0, 0.45)
    return ((1 - mix) * x + mix * wet).astype(np.float32)


def resample_shift(x: np.ndarray, rate: int, out_rate: int, semitones: float) -> np.ndarray:
    """Pitch (and tempo) shift by resampling: read `x` as if recorded at rate * 2**(semitones/12)."""
    import soxr

    ratio = 2 ** (semitones / 12)
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), rate * ratio, out_rate).astype(np.float32)


# ---------------------------------------------------------------- singing-like vocals (WORLD)

def held_note_f0(f0: np.ndarray, frame_s: float, rng: np.random.Generator, transpose: float) -> np.ndarray:
    """Voiced runs of `f0` (Hz, 0 = unvoiced) -> held semitone notes with vibrato and short glides."""
    out = np.zeros_like(f0)
    voiced = f0 > 0
    if not voiced.any():
        return out
    centre = np.median(np.log2(f0[voiced]))
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(np.int8), 0]))
    for start, end in zip(edges[::2], edges[1::2]):
        i = start
        while i < end:
            length = min(end - i, max(4, int(rng.uniform(0.12, 0.6) / frame_s)))
            seg = f0[i:i + length]
            own = np.median(np.log2(seg[seg > 0])) if (seg > 0).any() else centre
            semis = np.round(12 * (0.5 * own + 0.5 * centre - centre) + rng.integers(-2, 3)) + transpose
            base = 2 ** (centre + semis / 12)
            t = np.arange(length) * frame_s
            depth = rng.uniform(15, 60) / 1200 * np.clip((t - 0.12) / 0.2, 0, 1)
            vib = depth * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t + rng.uniform(0, 2 * np.pi))
            out[i:i + length] = base * 2 ** vib
            i += length
    logs = np.log2(np.maximum(out, 1.0))
    idx = np.arange(len(out))
    logs = np.interp(idx, idx[voiced], logs[voiced])  # unvoiced gaps bridged so glides stay inside notes
    smooth = np.convolve(np.pad(logs, 3, mode="edge"), np.ones(7) / 7, mode="valid")  # ~30 ms glides
    return np.where(voiced, 2 ** smooth, 0.0)


def stretch_index(voiced: np.ndarray, rng: np.random.Generator, max_stretch: float) -> np.ndarray:
    """Frame indices that lengthen each voiced run by a random factor (unvoiced frames play once)."""
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(np.int8), 0]))
    pieces, last = [], 0
    for start, end in zip(edges[::2], edges[1::2]):
        pieces.append(np.arange(last, start, dtype=np.float64))
        factor = rng.uniform(1.0, max_stretch)
        pieces.append(np.linspace(start, end - 1, max(1, int((end - start) * factor))))
        last = end
    pieces.append(np.arange(last, len(voiced), dtype=np.float64))
    return np.concatenate(pieces)


def sing(x: np.ndarray, rate: int, rng: np.random.Generator, cfg: RecipeConfig) -> np.ndarray:
    """WORLD resynthesis of speech `x` with held vowels, note f0, vibrato, transpose and formant warp."""
    import pyworld as pw

    frame_ms = 5.0
    xd = np.ascontiguousarray(x, dtype=np.float64)
    f0, times = pw.dio(xd, rate, f0_floor=60.0, f0_ceil=800.0, frame_period=frame_ms)
    f0 = pw.stonemask(xd, f0, times, rate)
    sp = pw.cheaptrick(xd, f0, times, rate)
    ap = pw.d4c(xd, f0, times, rate)
    idx = stretch_index(f0 > 0, rng, cfg.max_stretch)
    near = np.clip(np.round(idx).astype(int), 0, len(f0) - 1)
    f0s, sps, aps = f0[near], sp[near], ap[near]
    transpose = rng.uniform(*cfg.transpose_semitones)
    new_f0 = held_note_f0(f0s, frame_ms / 1000, rng, transpose)
    warp = rng.uniform(0.88, 1.12) * 2 ** (np.clip(transpose, -4, 4) / 12 * 0.3)  # formants follow pitch a little
    bins = np.arange(sps.shape[1], dtype=np.float64)
    src = np.clip(bins / warp, 0, sps.shape[1] - 1)
    sps = np.stack([np.interp(src, bins, row) for row in sps])
    y = pw.synthesize(new_f0, np.ascontiguousarray(sps), np.ascontiguousarray(aps), rate, frame_ms)
    return y.astype(np.float32)


# ---------------------------------------------------------------- generated accompaniment parts

def _decay(n: int, rate: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (seconds * rate)).astype(np.float32)


def drums(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Kick, snare and hi-hats on a random 16-step pattern at 70-170 bpm."""
    from scipy import signal

    out = np.zeros(n, dtype=np.float32)
    step = int(60.0 / rng.uniform(70, 170) / 4 * rate)
    kick_n, snare_n, hat_n = int(0.35 * rate), int(0.2 * rate), int(0.25 * rate)
    t = np.arange(kick_n) / rate
    kick = np.sin(2 * np.pi * np.cumsum(45 + 110 * np.exp(-t / 0.04)) / rate) * _decay(kick_n, rate, 0.12)
    hp = signal.butter(2, min(rng.uniform(5000, 9000), rate * 0.45), "high", fs=rate, output="sos")
    bp = signal.butter(2, [800, min(7000, rate * 0.45)], "band", fs=rate, output="sos")
    pattern_kick = rng.random(16) < np.tile([0.9, 0.05, 0.2, 0.05], 4)
    pattern_snare = rng.random(16) < np.tile([0.0, 0.05, 0.1, 0.05, 0.9, 0.05, 0.1, 0.1], 2)
    pattern_hat = rng.random(16) < rng.uniform(0.4, 1.0)
    levels = rng.uniform(0.3, 1.0, 3)
    for i, pos in enumerate(range(0, n - 1, step)):
        s = i % 16
        hits = []
        if pattern_kick[s]:
            hits.append(levels[0] * kick)
        if pattern_snare[s]:
            noise = signal.sosfilt(bp, rng.standard_normal(snare_n)) * _decay(snare_n, rate, 0.06)
            tone = np.sin(2 * np.pi * 190 * np.arange(snare_n) / rate) * _decay(snare_n, rate, 0.03)
            hits.append(levels[1] * (2.5 * noise + 0.5 * tone))
        if pattern_hat[s]:
            hat = signal.sosfilt(hp, rng.standard_normal(hat_n)) * _decay(hat_n, rate, rng.choice([0.02, 0.1]))
            hits.append(levels[2] * 1.5 * hat * rng.uniform(0.5, 1.0))
        for hit in hits:
            end = min(n, pos + len(hit))
            out[pos:end] += hit[: end - pos].astype(np.float32)
    return out


def synth_notes(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Decaying harmonic tones (plucks or pads) on a random chord progression."""
    out = np.zeros(n, dtype=np.float32)
    note_n = int(rng.uniform(0.25, 1.2) * rate)
    root = rng.uniform(45, 60)  # MIDI
    chords = [root + rng.choice([0, 3, 5, 7, -2, -4]) for _ in range(4)]
    harmonics = np.arange(1, 16)
    amps = harmonics ** -rng.uniform(0.8, 2.0)
    decay_s = rng.uniform(0.15, 1.0)
    for i, pos in enumerate(range(0, n - 1, note_n)):
        base = chords[(i // 4) % 4]
        for interval in rng.choice([0, 4, 7, 12, 3, 10], size=int(rng.integers(1, 4)), replace=False):
            f = 440 * 2 ** ((base + interval - 69) / 12)
            t = np.arange(min(note_n * 2, n - pos)) / rate
            keep = harmonics * f < rate * 0.45
            tone = (amps[keep, None] * np.sin(2 * np.pi * f * harmonics[keep, None] * t)).sum(axis=0)
            out[pos:pos + len(t)] += (tone * np.exp(-t / decay_s)).astype(np.float32)
    return out


def guitar(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Distorted power chords (detuned saws, root + fifth + octave, tanh drive, cabinet low-pass) and a bass line."""
    from scipy import signal

    out = np.zeros(n, dtype=np.float32)
    beat = int(60.0 / rng.uniform(80, 170) * rate)
    note_n = beat * int(rng.choice([1, 2, 4]))
    root = rng.uniform(38, 52)  # MIDI: E2..E3
    steps = [root + rng.choice([0, 2, 3, 5, 7, -2]) for _ in range(4)]
    drive = rng.uniform(3, 25)
    cab = signal.butter(2, rng.uniform(2000, 5000), fs=rate, output="sos")
    bass = np.zeros(n, dtype=np.float32)
    for i, pos in enumerate(range(0, n - 1, note_n)):
        t = np.arange(min(note_n, n - pos)) / rate
        midi = steps[(i // 2) % 4]
        chord = np.zeros(len(t))
        for interval in (0, 7, 12):
            for detune in (-0.08, 0.08):
                f = 440 * 2 ** ((midi + interval + detune - 69) / 12)
                chord += 2 * ((f * t) % 1.0) - 1
        env = np.minimum(1.0, t / 0.005) * np.exp(-t / rng.uniform(0.3, 3.0))
        out[pos:pos + len(t)] = np.tanh(drive * chord * env / 6).astype(np.float32)
        fb = 440 * 2 ** ((midi - 12 - 69) / 12)
        bass[pos:pos + len(t)] = (np.sin(2 * np.pi * fb * t) + 0.3 * np.sin(4 * np.pi * fb * t)) * np.exp(-t / 1.5)
    out = signal.sosfilt(cab, out).astype(np.float32)
    return out + np.float32(rng.uniform(0.2, 1.0)) * normalize_rms(bass) * (_rms(out) / 0.1)


def exciter(x: np.ndarray, rate: int, band_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Continue a band-limited recording above `band_hz`: soft-clipped top octave, high-passed, added quietly."""
    from scipy import signal

    if band_hz >= rate * 0.45:
        return x
    top = signal.sosfilt(signal.butter(4, band_hz / 2, "high", fs=rate, output="sos"), x)
    drive = 4.0 / max(float(np.max(np.abs(top))), 1e-6)
    harm = np.tanh(drive * top) + 0.3 * np.abs(np.tanh(drive * top))
    harm = signal.sosfilt(signal.butter(4, band_hz * 0.95, "high", fs=rate, output="sos"), harm)
    gain = _rms(x) / max(_rms(harm), 1e-9) * 10 ** (rng.uniform(-26, -14) / 20)
    return (x + gain * harm).astype(np.float32)


# ---------------------------------------------------------------- builders

@dataclass
class _Source:
    path: Path
    audio: np.ndarray
    rate: int


def _load_mono(path: Path, rate: int | None) -> tuple[np.ndarray, int]:
    from voiceapp.audio.io import load_audio

    audio, sr = load_audio(path, rate, mono=True)
    return np.asarray(audio, dtype=np.float32), int(sr)


def _write(folder: Path, name: str, audio: np.ndarray, rate: int) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / name) as tmp:
        sf.write(str(tmp), audio, rate, format="FLAC", subtype="PCM_16")


def _vocal_variants(x: np.ndarray, rate: int, rng: np.random.Generator, cfg: RecipeConfig) -> list[np.ndarray]:
    outs = [sing(x, rate, rng, cfg) for _ in range(cfg.sung_variants)]
    for _ in range(cfg.spoken_variants):
        outs.append(resample_shift(x, rate, rate, rng.uniform(*cfg.transpose_semitones)))
    return [normalize_rms(reverb(random_eq(v, rate, rng), rate, rng)) for v in outs if len(v) > 0]


def build_vocals(files: list[Path], out_dir: Path, cfg: RecipeConfig, progress: Progress = no_progress,
                 cancel: CancelToken = NEVER) -> tuple[int, float, list[tuple[str, str]]]:
    """Write `out_dir/vocals_NNN/vocals.flac` takes; returns (takes, minutes, skipped files with reasons)."""
    rate, rng = cfg.sample_rate, np.random.default_rng(cfg.seed)
    take_n, gap = int(cfg.take_s * rate), lambda: np.zeros(int(rng.uniform(0.05, 0.4) * rate), np.float32)
    pending: list[np.ndarray] = []
    length, takes, total, skipped = 0, 0, 0, []

    def flush() -> None:
        nonlocal pending, length, takes, total
        if pending:
            _write(out_dir / f"vocals_{takes:03d}", "vocals.flac", np.concatenate(pending), rate)
            takes, total, pending, length = takes + 1, total + length, [], 0

    order = rng.permutation(len(files))
    for k, i in enumerate(order):
        cancel.raise_if_set()
        path = files[i]
        try:
            x, native = _load_mono(path, None)
            if native > rate:
                x, native = _load_mono(path, rate)
        except InputError as err:
            skipped.append((str(path), str(err)))
            continue
        if len(x) < cfg.min_speech_s * native or _rms(x) < 1e-4:
            skipped.append((str(path), "too short or silent"))
            continue
        for v in _vocal_variants(x, native, rng, cfg):
            v = resample_shift(v, native, rate, 0.0) if native != rate else v
            pending += [v, gap()]
            length += len(v) + len(pending[-1])
            if length >= take_n:
                flush()
        progress((k + 1) / len(files), f"vocals: {path.name}")
    flush()
    return takes, total / rate / 60, skipped


def _excerpt(source: _Source, seconds: float, rng: np.random.Generator, out_rate: int) -> np.ndarray:
    semis = rng.uniform(-3, 3)
    need = int(seconds * source.rate * 2 ** (semis / 12)) + 16
    start = int(rng.integers(0, max(1, len(source.audio) - need)))
    part = resample_shift(source.audio[start:start + need], source.rate, out_rate, semis)
    part = exciter(part, out_rate, source.rate / 2 * 2 ** (semis / 12) * 0.95, rng)
    n = int(seconds * out_rate)
    return np.pad(part, (0, max(0, n - len(part))))[:n]


def build_accompaniment(files: list[Path], out_dir: Path, cfg: RecipeConfig, progress: Progress = no_progress,
                        cancel: CancelToken = NEVER, guitar_only: bool = False) -> tuple[int, float]:
    """Write `out_dir/accomp_NNN/accompaniment.flac` takes; returns (takes, minutes).

    Takes 0..accomp_takes-1 mix music, drums and synth notes; the `guitar_takes` after them (own random stream)
    always hold generated guitar + bass over music (and drums). `guitar_only` writes only those.
    """
    rate = cfg.sample_rate
    sources = [_Source(p, *_load_mono(p, None)) for p in files]
    n = int(cfg.take_s * rate)
    plan = [] if guitar_only else [(k, False) for k in range(cfg.accomp_takes)]
    plan += [(cfg.accomp_takes + k, True) for k in range(cfg.guitar_takes)]
    rngs = {False: np.random.default_rng(cfg.seed + 1), True: np.random.default_rng(cfg.seed + 2)}
    for done, (k, with_guitar) in enumerate(plan):
        cancel.raise_if_set()
        rng = rngs[with_guitar]
        parts = [_excerpt(sources[int(rng.integers(len(sources)))], cfg.take_s, rng, rate)]
        if with_guitar:
            parts.append(guitar(n, rate, rng))
        if rng.random() < cfg.second_music_prob:
            parts.append(_excerpt(sources[int(rng.integers(len(sources)))], cfg.take_s, rng, rate))
        if rng.random() < cfg.drums_prob:
            parts.append(drums(n, rate, rng))
        if not with_guitar and rng.random() < cfg.synth_prob:
            parts.append(synth_notes(n, rate, rng))
        mix = sum(normalize_rms(p) * np.float32(10 ** (rng.uniform(-8, 0) / 20)) for p in parts)
        _write(out_dir / f"accomp_{k:03d}", "accompaniment.flac", normalize_rms(random_eq(mix, rate, rng)), rate)
        progress((done + 1) / len(plan), f"accompaniment take {done + 1}/{len(plan)}")
    return len(plan), len(plan) * cfg.take_s / 60


def build_training_set(speech_files: list[Path], music_files: list[Path], out_dir: Path | str,
                       cfg: RecipeConfig = RecipeConfig(), sources: dict | None = None,
                       progress: Progress = no_progress, cancel: CancelToken = NEVER) -> BuiltSet:
    """Build the stems folder `out_dir` from speech recordings and instrumental music (see module docstring).

    Reads the inputs (never changes them); writes `vocals_NNN/vocals.flac`, `accomp_NNN/accompaniment.flac` and
    `recipe.json` (config, inputs, licences from `sources`, counts). All at `cfg.sample_rate`, mono, 16-bit.
    """
    out_dir = Path(out_dir)
    if not speech_files or not music_files:
        raise InputError(f"Building separator material needs speech and instrumental music; got {len(speech_files)} "
                         f"speech and {len(music_files)} music file(s). Check the source folders exist.")
    takes, minutes, skipped = build_vocals(speech_files, out_dir, cfg, sub_progress(progress, 0.0, 0.7), cancel)
    if takes == 0:
        raise InputError(f"No usable speech among {len(speech_files)} file(s) (all too short, silent or "
                         "unreadable); give recordings of at least a second.")
    a_takes, a_minutes = build_accompaniment(music_files, out_dir, cfg, sub_progress(progress, 0.7, 1.0), cancel)
    built = BuiltSet(out_dir, takes, a_takes, round(minutes, 2), round(a_minutes, 2), skipped)
    manifest = {"config": asdict(cfg), "sources": sources or {}, "speech_files": len(speech_files),
                "music_files": [str(p) for p in music_files], "vocals_takes": takes, "vocals_minutes": built.vocals_minutes,
                "accomp_takes": a_takes, "accomp_minutes": built.accomp_minutes, "skipped": skipped}
    with atomic_path(out_dir / "recipe.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    return built
