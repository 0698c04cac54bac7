"""The shipped separator's data recipe: singing-like vocals from speech, accompaniment takes, the stems folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceapp.errors import InputError
from voiceapp.separate.recipe import (RecipeConfig, build_training_set, drums, held_note_f0, normalize_rms,
                                      stretch_index)
from voiceapp.separate.stems import Remixer, load_stem_songs


def speechlike(seconds: float, rate: int, f0_hz: float, seed: int) -> np.ndarray:
    """Voiced syllables: a gliding harmonic tone, amplitude-gated 4 times a second, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = f0_hz * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0_hz * 1.2 < rate / 2)
    gate = (np.sin(2 * np.pi * 4 * t) > -0.3).astype(float)
    return (0.2 * tone * gate + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture()
def sources(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    speech = []
    for i, (rate, f0) in enumerate([(16000, 120.0), (22050, 210.0)]):
        path = tmp_path / "in" / f"speech_{i}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), speechlike(1.6, rate, f0, i), rate)
        speech.append(path)
    short = tmp_path / "in" / "short.flac"
    sf.write(str(short), speechlike(0.1, 16000, 150.0, 9), 16000)
    music = tmp_path / "in" / "music.wav"
    t = np.arange(8000 * 4) / 8000
    sf.write(str(music), (0.2 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32), 8000)
    return [*speech, short], [music]


def test_builds_a_stems_folder_the_trainer_reads(tmp_path, sources):
    speech, music = sources
    before = {p: p.read_bytes() for p in [*speech, *music]}
    cfg = RecipeConfig(take_s=2.0, accomp_takes=2, guitar_takes=1)
    built = build_training_set(speech, music, tmp_path / "stems", cfg, {"test": "CC0"})
    assert built.vocals_takes >= 2 and built.accomp_takes == 3
    assert (tmp_path / "stems" / "accomp_002" / "accompaniment.flac").exists()  # the guitar take follows
    assert [p for p, _ in built.skipped] == [str(speech[2])]  # 0.1 s is too short
    songs = load_stem_songs(tmp_path / "stems", cfg.sample_rate)
    assert sum(s.vocals is not None for s in songs) == built.vocals_takes
    assert sum(s.accompaniment is not None for s in songs) == 3
    for path in (tmp_path / "stems").rglob("*.flac"):
        info = sf.info(str(path))
        assert info.samplerate == cfg.sample_rate and info.channels == 1
    acc = next(s.accompaniment for s in songs if s.accompaniment is not None).astype(np.float32)[0]
    spec = np.abs(np.fft.rfft(acc))
    freqs = np.fft.rfftfreq(len(acc), 1 / cfg.sample_rate)
    assert spec[freqs > 4500].sum() > 0.01 * spec.sum()  # the 8 kHz music was continued above its 4 kHz band
    manifest = json.loads((tmp_path / "stems" / "recipe.json").read_text())
    assert manifest["sources"] == {"test": "CC0"} and manifest["vocals_takes"] == built.vocals_takes
    mix, voc = Remixer(songs, 4096, seed=1).batch(2)
    assert mix.shape == voc.shape == (2, 4096)
    assert {p: p.read_bytes() for p in [*speech, *music]} == before  # inputs untouched


def test_needs_speech_and_music(tmp_path, sources):
    speech, music = sources
    with pytest.raises(InputError, match="speech and instrumental music"):
        build_training_set(speech, [], tmp_path / "out", RecipeConfig(take_s=2.0, accomp_takes=1, guitar_takes=0))
    with pytest.raises(InputError, match="No usable speech"):
        build_training_set([speech[2]], music, tmp_path / "out", RecipeConfig(take_s=2.0, accomp_takes=1))


def test_held_notes_sit_on_semitones_with_vibrato():
    rng = np.random.default_rng(0)
    frame_s = 0.005
    f0 = np.r_[np.zeros(20), np.linspace(180, 260, 300), np.zeros(20)]
    notes = held_note_f0(f0, frame_s, rng, transpose=0.0)
    assert np.all(notes[:20] == 0) and np.all(notes[-20:] == 0) and np.all(notes[20:320] > 0)
    cents = 1200 * np.log2(notes[20:320] / 2 ** np.median(np.log2(f0[20:320])))
    # a note's first 0.12 s has no vibrato: each onset lies within a glide of a whole semitone
    onsets = cents[12:22]
    assert np.max(np.abs(onsets - 100 * np.round(onsets / 100))) < 30
    assert np.ptp(cents) > 50  # the speech's glide became steps / vibrato, not one frozen pitch


def test_stretch_lengthens_only_voiced_runs():
    rng = np.random.default_rng(0)
    voiced = np.r_[np.zeros(10, bool), np.ones(40, bool), np.zeros(10, bool)]
    idx = stretch_index(voiced, rng, max_stretch=2.5)
    assert len(idx) >= 60 and np.all(np.diff(idx) >= 0)
    assert np.sum(idx < 10) == 10 and np.sum(idx >= 50) == 10


def test_generated_drums_and_levels():
    rng = np.random.default_rng(0)
    beat = drums(22050 * 2, 22050, rng)
    assert beat.shape == (44100,) and np.abs(beat).max() > 0.05
    assert np.abs(normalize_rms(beat)).max() <= 0.98  # peaky material is limited, never clipped
    tone = 0.01 * np.sin(2 * np.pi * 300 * np.arange(44100) / 22050).astype(np.float32)
    level = normalize_rms(np.r_[tone, np.zeros(44100, np.float32)])  # half silence: gaps do not count
    assert 20 * np.log10(np.sqrt(np.mean(level[:44100] ** 2))) == pytest.approx(-20.0, abs=0.5)
