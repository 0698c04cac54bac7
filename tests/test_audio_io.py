"""Audio loading and saving: formats, rates, channels, and bad files."""

import subprocess

import numpy as np
import pytest
import soundfile as sf

from helpers import harmonic, write_wav
from voiceapp.audio import audio_info, ffmpeg_exe, iter_blocks, load_audio, save_audio
from voiceapp.errors import InputError


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_save_load_round_trip(tmp_path, fmt):
    audio = harmonic(220, 1.0, 44_100, amplitude=0.5)
    path = save_audio(tmp_path / f"x.{fmt}", audio, 44_100)
    loaded, rate = load_audio(path, 16_000)
    assert rate == 16_000
    assert abs(len(loaded) - 16_000) < 1200  # mp3 adds encoder padding
    assert 0.3 < np.max(np.abs(loaded)) < 0.7


def test_stereo_round_trip_keeps_channels(tmp_path):
    stereo = np.stack([harmonic(220, 0.5, 48_000), harmonic(330, 0.5, 48_000)])
    path = save_audio(tmp_path / "s.flac", stereo, 48_000)
    loaded, rate = load_audio(path, None, mono=False)
    assert loaded.shape == (2, 24_000) and rate == 48_000
    assert np.allclose(loaded, stereo, atol=1e-4)


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
@pytest.mark.parametrize("suffix,codec", [(".m4a", "aac"), (".webm", "libopus"), (".mp4", "aac"), (".opus", "libopus")])
def test_ffmpeg_formats(tmp_path, suffix, codec):
    src = write_wav(tmp_path / "src.wav", harmonic(220, 1.0, 44_100), 44_100)
    out = tmp_path / f"clip{suffix}"
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-c:a", codec, str(out)]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode {codec}")
    loaded, rate = load_audio(out, 16_000)
    assert rate == 16_000 and abs(len(loaded) - 16_000) < 1600
    assert np.max(np.abs(loaded)) > 0.2


def test_odd_rates_and_six_channels(tmp_path):
    for rate in (8_000, 192_000):
        path = write_wav(tmp_path / f"r{rate}.wav", harmonic(220, 0.5, rate), rate)
        loaded, out_rate = load_audio(path, 40_000)
        assert out_rate == 40_000 and abs(len(loaded) - 20_000) <= 2
    six = np.stack([harmonic(200 + 50 * c, 0.5, 48_000) for c in range(6)])
    path = write_wav(tmp_path / "six.wav", six, 48_000)
    assert audio_info(path).channels == 6
    mono, _ = load_audio(path, 16_000)
    assert mono.ndim == 1 and len(mono) == 8_000


def test_float_above_full_scale_is_kept(tmp_path):
    loud = harmonic(220, 0.5, 16_000, amplitude=1.8)
    path = write_wav(tmp_path / "loud.wav", loud, 16_000, subtype="FLOAT")
    loaded, _ = load_audio(path)
    assert np.max(np.abs(loaded)) == pytest.approx(1.8, rel=1e-3)


def test_bad_files_raise_input_error_naming_the_file(tmp_path):
    junk = tmp_path / "random bytes.wav"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all")
    for path in (junk, empty, text, tmp_path / "missing.wav"):
        with pytest.raises(InputError) as err:
            load_audio(path, 16_000)
        assert path.name in str(err.value)


def test_blocks_stream_long_file_in_bounded_pieces(tmp_path):
    rate = 8_000
    path = tmp_path / "long.wav"
    with sf.SoundFile(str(path), "w", rate, 1, "PCM_16") as handle:
        for _ in range(10):
            handle.write(harmonic(200, 6.0, rate, amplitude=0.3))
    sizes = [len(b) for b in iter_blocks(path, 16_000, block_s=5.0)]
    assert max(sizes) <= 5.0 * 16_000 + 2_000
    assert abs(sum(sizes) - 60 * 16_000) <= 2


def test_save_is_atomic_and_refuses_unknown_format(tmp_path):
    with pytest.raises(InputError):
        save_audio(tmp_path / "x.xyz", np.zeros(100, np.float32), 16_000, fmt="xyz")
    save_audio(tmp_path / "a.wav", np.zeros(100, np.float32), 16_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
