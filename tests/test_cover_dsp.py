"""The cover's signal parts: BS.1770 loudness (voiceapp/audio/loudness.py) and the pitch shifter
(voiceapp/audio/pitchshift.py), on generated signals with known answers."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from helpers import write_wav
from voiceapp.audio.io import ffmpeg_exe
from voiceapp.audio.loudness import LoudnessMeter, integrated_loudness
from voiceapp.audio.pitchshift import pitch_shift, shift_blocks


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_ebu_reference_tone_reads_minus_23_lufs():
    # EBU Tech 3341: a 1 kHz sine at -23 dBFS in both channels of a stereo file is -23.0 LUFS
    for rate in (44100, 48000):
        a = tone(1000, 10, rate, 10 ** (-23 / 20))
        assert integrated_loudness(np.stack([a, a]), rate) == pytest.approx(-23.0, abs=0.1)


def test_gates_ignore_silence_and_streaming_equals_whole():
    rate = 48000
    a = tone(1000, 6, rate, 10 ** (-20 / 20))
    padded = np.concatenate([np.zeros(5 * rate, np.float32), a, np.zeros(5 * rate, np.float32)])
    # 10 s of silence around 6 s of tone: ungated that would read 4.3 dB lower; gated only the blocks that
    # straddle the edges count a little
    assert integrated_loudness(padded, rate) == pytest.approx(integrated_loudness(a, rate), abs=0.3)
    assert integrated_loudness(np.zeros(rate * 2), rate) == -np.inf
    assert integrated_loudness(a[:rate // 4], rate) == -np.inf          # shorter than one 400 ms block
    meter = LoudnessMeter(rate, 1)
    for i in range(0, len(padded), 12345):
        meter.add(padded[i:i + 12345])
    assert meter.integrated() == pytest.approx(integrated_loudness(padded, rate), abs=1e-9)


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
def test_loudness_agrees_with_ffmpeg_ebur128(tmp_path):
    rng = np.random.default_rng(0)
    rate = 44100
    noise = rng.standard_normal((2, rate * 8)) * 0.1 * np.linspace(0.05, 1.0, rate * 8)
    noise[:, :rate] = 0.0
    path = write_wav(tmp_path / "noise.wav", noise.astype(np.float32), rate, subtype="FLOAT")
    run = subprocess.run([ffmpeg_exe(), "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128", "-f", "null",
                          "-"], capture_output=True, text=True, timeout=120)
    theirs = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", run.stderr)[-1])
    assert integrated_loudness(noise, rate) == pytest.approx(theirs, abs=0.1)


CHORD = (220.0, 277.18, 329.63)


def _peaks(audio: np.ndarray, rate: int, near) -> np.ndarray:
    seg = audio[int(1.0 * rate):int(4.0 * rate)]
    n = len(seg) * 8
    spectrum = np.abs(np.fft.rfft(seg * np.blackman(len(seg)), n))
    out = []
    for f in near:
        k, width = int(round(f * n / rate)), int(4 * n / rate)
        i = k - width + int(np.argmax(spectrum[k - width:k + width]))
        a, b, c = np.log(spectrum[i - 1:i + 2])
        out.append((i + 0.5 * (a - c) / (a - 2 * b + c)) * rate / n)
    return np.array(out)


@pytest.mark.parametrize("semitones", [5, -5, 7, 2.5, -7, 19])
def test_pitch_shift_moves_every_partial_within_a_cent_and_keeps_length_and_level(semitones):
    rate = 22050
    chord = sum(tone(f, 5, rate, 0.2) for f in CHORD)
    stereo = np.stack([chord, 0.5 * chord])
    out = pitch_shift(stereo, rate, semitones)
    assert out.shape == stereo.shape and out.dtype == np.float32
    expected = np.array(CHORD) * 2 ** (semitones / 12)
    for channel in out:
        assert np.abs(1200 * np.log2(_peaks(channel, rate, expected) / expected)).max() < 1.0
    middle = slice(rate, 4 * rate)
    level = np.sqrt(np.mean(out[:, middle] ** 2, axis=1) / np.mean(stereo[:, middle] ** 2, axis=1))
    assert np.allclose(level, 1.0, atol=0.03)


def test_pitch_shift_keeps_timing_and_streams_in_any_block_size():
    rate = 16000
    t = np.arange(4 * rate) / rate
    burst = np.where((t > 1.0) & (t < 2.5), np.sin(2 * np.pi * 300 * t), 0.0).astype(np.float32)
    out = pitch_shift(burst, rate, -5)
    envelope = np.convolve(np.abs(out), np.ones(160) / 160, "same")
    on, off = np.argmax(envelope > 0.3) / rate, (len(envelope) - np.argmax(envelope[::-1] > 0.3)) / rate
    assert on == pytest.approx(1.0, abs=0.01) and off == pytest.approx(2.5, abs=0.01)   # no latency
    for size in (777, 50_000):
        blocks = (burst[None, i:i + size] for i in range(0, len(burst), size))
        streamed = np.concatenate(list(shift_blocks(blocks, -5, rate, 1)), axis=1)[0]
        assert len(streamed) == len(burst) and np.abs(streamed - out).max() < 1e-5
