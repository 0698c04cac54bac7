"""`voiceapp separate` and the Dataset hook: any rate and channel count in, same rate and channels out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import song_stems
from voiceapp import cli
from voiceapp.errors import InputError
from voiceapp.separate import isolate_vocals_file, list_separators


def _song(path: Path, rate: int, channels: int, seconds: float = 1.5) -> Path:
    vocals, acc = song_stems(rate, seconds, stereo=channels > 1)
    mix = vocals + acc
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, mix.T if mix.ndim == 2 else mix, rate)
    return path


def test_separate_many_songs_any_rate_and_channels(tmp_path):
    songs = [_song(tmp_path / "in" / "a.wav", 48000, 2), _song(tmp_path / "in" / "b.flac", 22050, 1),
             _song(tmp_path / "in" / "sub" / "c.wav", 11025, 2)]
    out = tmp_path / "out"
    assert cli.main(["separate", str(tmp_path / "in"), "--out", str(out), "--model", "dsp-centre",
                     "--root", str(tmp_path / "ws")]) == 0
    for song in songs:
        mix, rate = sf.read(song, dtype="float32", always_2d=True)
        vocals, v_rate = sf.read(out / song.stem / "vocals.wav", dtype="float32", always_2d=True)
        inst, _ = sf.read(out / song.stem / "instrumental.wav", dtype="float32", always_2d=True)
        assert v_rate == rate and vocals.shape == mix.shape == inst.shape
        assert np.max(np.abs(vocals + inst - mix)) < 1e-4
        assert 0.01 < np.sqrt(np.mean(vocals ** 2)) < np.sqrt(np.mean(mix ** 2))


def test_bad_file_is_skipped_and_reported(tmp_path, capsys):
    good = _song(tmp_path / "in" / "good.wav", 16000, 1)
    bad = tmp_path / "in" / "bad.wav"
    bad.write_bytes(b"not audio at all")
    code = cli.main(["separate", str(good), str(bad), "--out", str(tmp_path / "out"), "--root", str(tmp_path / "ws")])
    assert code == 2
    assert (tmp_path / "out" / "good" / "vocals.wav").exists()
    assert "bad.wav" in capsys.readouterr().out


def test_unknown_model_is_a_user_error(tmp_path, capsys):
    song = _song(tmp_path / "s.wav", 16000, 1)
    assert cli.main(["separate", str(song), "--out", str(tmp_path / "o"), "--model", "nope",
                     "--root", str(tmp_path / "ws")]) == 2
    assert "dsp" in capsys.readouterr().err


def test_isolate_vocals_file_for_the_dataset_stage(tmp_path, services):
    song = _song(tmp_path / "raw" / "take 1.wav", 44100, 2)
    out = isolate_vocals_file(song, tmp_path / "vocals", "dsp-centre", services)
    assert out == tmp_path / "vocals" / "take 1.wav"
    info = sf.info(out)
    assert info.samplerate == 44100 and info.channels == 2 and info.frames == sf.info(song).frames
    assert not (tmp_path / "vocals" / "instrumental.wav").exists()
    assert list_separators(services.workspace)[:2] == ["dsp", "dsp-centre"]
    with pytest.raises(InputError):
        isolate_vocals_file(song, song.parent, "dsp-centre", services)  # would overwrite the input
