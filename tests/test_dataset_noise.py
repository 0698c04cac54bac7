"""The dataset report's noise warning (issue #16 point 8): clean read speech (the LJ Speech clips shipped with the
demo) gets none, the same speech over music at -10 dB does."""

from pathlib import Path

import numpy as np
import pytest

from helpers import write_wav
from voiceapp.audio.io import iter_blocks
from voiceapp.dataset.prepare import DatasetConfig, prepare_dataset
from voiceapp.dataset.report import FileStats, file_warnings

LJ = Path(__file__).resolve().parents[1] / "voiceapp" / "demo" / "data" / "ljspeech"
MOH = Path("/usr/share/asterisk/moh")   # Debian's asterisk-moh-opsound-wav: real music, when installed
RATE = 40_000


def _load(path: Path) -> np.ndarray:
    return np.concatenate(list(iter_blocks(path, RATE, mono=True, block_s=30.0)))


def _stats(audio: np.ndarray) -> dict:
    stats = FileStats(duration_s=0.0, source_rate=RATE, channels=1)
    for start in range(0, len(audio), 30 * RATE):   # block by block, as prepare streams a file
        stats.add_block(audio[start:start + 30 * RATE], RATE)
    return stats.to_json()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _chords(seconds: float, seed: int = 0) -> np.ndarray:
    """A music bed: sustained three-note chords with harmonics, changing every 1.5 s, with a soft pulse."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 1.5):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        span = (t >= start) & (t < start + 1.5)
        for ratio in (1.0, 1.26, 1.5):
            for k in range(1, 6):
                out[span] += np.sin(2 * np.pi * root * ratio * k * t[span]) / k
    return (out * (0.8 + 0.2 * np.sin(2 * np.pi * 2.0 * t))).astype(np.float32)


def _over_music(speech: np.ndarray, music: np.ndarray, music_db: float = -10.0) -> np.ndarray:
    music = np.resize(music, len(speech))
    return (speech + music * (_rms(speech) / _rms(music)) * 10 ** (music_db / 20)).astype(np.float32)


def test_clean_lj_speech_gets_no_noise_warning():
    files = sorted(LJ.glob("*.flac"))
    assert len(files) >= 30
    warned = [p.name for p in files if any("noise" in w for w in file_warnings(p.name, _stats(_load(p))))]
    assert warned == []


def test_speech_over_music_gets_the_noise_warning():
    speech = _load(LJ / "LJ001-0001.flac")
    mixed = _over_music(speech, _chords(len(speech) / RATE + 1))
    warnings = file_warnings("mix.wav", _stats(mixed))
    assert any("background noise" in w and "Separate tab" in w for w in warnings), warnings


@pytest.mark.skipif(not MOH.is_dir(), reason="asterisk-moh-opsound-wav (real music) is not installed")
def test_speech_over_real_music_gets_the_noise_warning():
    tracks = sorted(MOH.glob("*.wav"))
    speech = [_load(p) for p in sorted(LJ.glob("LJ001-000*.flac"))]
    warned = sum(bool(file_warnings("mix.wav", _stats(_over_music(s, _load(tracks[i % len(tracks)])[5 * RATE:]))))
                 for i, s in enumerate(speech))
    assert warned >= len(speech) - 1, f"{warned} of {len(speech)} mixes warned"


def test_the_dataset_report_warns_for_the_mix_only(tmp_path, workspace, services):
    """End to end through the Dataset stage: the report names the music file and not the clean one."""
    speech = _load(LJ / "LJ001-0002.flac")
    write_wav(tmp_path / "in" / "clean.wav", speech, RATE)
    write_wav(tmp_path / "in" / "song.wav", _over_music(speech, _chords(len(speech) / RATE + 1, seed=1)), RATE)
    result = prepare_dataset([tmp_path / "in"], workspace.dataset("lj"), DatasetConfig(), services=services)
    noise = [w for w in result.report["warnings"] if "background noise" in w]
    assert len(noise) == 1 and noise[0].startswith("song.wav"), result.report["warnings"]
