"""Song cover in one step (voiceapp/cover): a generated song (a tone "vocal" over a chord "instrumental"), an
instant voice with the fake content encoder, the dsp separator (and a tiny random U-Net as the karaoke one)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from helpers import harmonic, make_feature_experiment, write_wav
from voiceapp import cli
from voiceapp.audio.loudness import integrated_loudness
from voiceapp.cover import CoverConfig, karaoke_separators, make_cover
from voiceapp.errors import Cancelled, InputError, VoiceAppError
from voiceapp.infer.models import load_voice_file
from voiceapp.infer.pipeline import InferConfig
from voiceapp.progress import CancelToken
from voiceapp.train.instant import build_instant

RATE = 22050
CHORD_HZ = (130.81, 164.81, 196.0)   # C major, below the dsp separator's vocal band
VOICE_HZ = 311.0


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def voice_path(tmp_path_factory):
    """One instant voice (20 s of a generated voice, fake 16-d content features) for the whole module."""
    from voiceapp.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("voice_ws")).ensure()
    exp = make_feature_experiment(ws, lengths_s=(4.0, 4.2, 3.8, 4.1, 3.9), sample_rate=16000)
    return build_instant(exp, ws)


@pytest.fixture(scope="module")
def voice(voice_path):
    return load_voice_file(voice_path)


def make_song(tmp_path, seconds: float = 4.0, name: str = "song.wav"):
    """A centred harmonic "vocal" over a chord of pure tones panned left (the "instrumental")."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    vocal = harmonic(VOICE_HZ, seconds, RATE, n_harmonics=6, amplitude=0.3, vibrato_hz=5.0, vibrato_cents=30)
    chord = sum(0.08 * np.sin(2 * np.pi * f * t) for f in CHORD_HZ)
    song = np.stack([vocal + chord, vocal + 0.3 * chord]).astype(np.float32)
    return write_wav(tmp_path / name, song, RATE), song


def read(path):
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.T, rate


def partials(audio: np.ndarray, rate: int, near: list[float]) -> np.ndarray:
    """The frequencies (Hz) of the strongest peaks near `near`, to a small fraction of a bin."""
    seg = audio[int(0.5 * rate):int(3.5 * rate)]
    n = len(seg) * 8
    spectrum = np.abs(np.fft.rfft(seg * np.blackman(len(seg)), n))
    found = []
    for f in near:
        k, width = int(round(f * n / rate)), int(4 * n / rate)   # +-4 Hz
        i = k - width + int(np.argmax(spectrum[k - width:k + width]))
        a, b, c = np.log(spectrum[i - 1:i + 2])
        found.append((i + 0.5 * (a - c) / (a - 2 * b + c)) * rate / n)
    return np.array(found)


def cents(found: np.ndarray, expected) -> np.ndarray:
    return 1200 * np.log2(found / np.asarray(expected))


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_cover_has_the_songs_length_rate_and_loudness_and_writes_stems(tmp_path, services, voice):
    song_path, song = make_song(tmp_path)
    out = tmp_path / "out" / "cover.wav"
    cfg = CoverConfig(vocals_gain_db=-6.0, instrumental_gain_db=3.0)
    result = make_cover(song_path, voice, InferConfig(f0_method="pm"), cfg, out_path=out, services=services)
    cover, rate = read(out)
    assert rate == RATE and cover.shape == song.shape and result.output_path == out
    assert set(result.stems) == {"vocals", "converted_vocals", "instrumental"}
    assert leftovers(out.parent) == ["converted_vocals.wav", "cover.wav", "cover_stems", "instrumental.wav",
                                     "vocals.wav"]   # no temporary folder left
    # levels follow the settings: cover = matching gain x (0.5 x converted + 1.41 x instrumental), exactly
    converted, _ = read(result.stems["converted_vocals"])
    instrumental, _ = read(result.stems["instrumental"])
    assert converted.shape == (1, song.shape[1]) and instrumental.shape == song.shape
    assert np.abs(converted).max() > 0.01
    expected = 10 ** (result.gain_db / 20) * (10 ** (-6 / 20) * converted + 10 ** (3 / 20) * instrumental)
    assert np.abs(cover - expected).max() < 1e-4
    # loudness-matched to the song (BS.1770), as the result says
    assert integrated_loudness(cover, rate) == pytest.approx(integrated_loudness(song, RATE), abs=0.2)
    assert result.cover_lufs == pytest.approx(result.song_lufs, abs=0.2)
    # without transposition the instrumental is the song minus the separated vocals, unshifted
    vocals, _ = read(result.stems["vocals"])
    assert np.abs(vocals + instrumental - song).max() < 1e-4 and result.instrumental_shift_semitones == 0
    assert "Saved:" in result.summary() and "LUFS" in result.summary()


def test_transpose_shifts_the_instrumental_by_the_same_semitones(tmp_path, services, voice):
    song_path, _ = make_song(tmp_path)
    out = tmp_path / "out" / "cover.flac"
    result = make_cover(song_path, voice, InferConfig(f0_method="pm", transpose_semitones=5),
                        CoverConfig(output_format="flac", match_loudness=False), out_path=out, services=services)
    assert result.instrumental_shift_semitones == 5 and result.timings["shift"] > 0
    instrumental, rate = read(result.stems["instrumental"])
    shifted = [f * 2 ** (5 / 12) for f in CHORD_HZ]
    assert np.abs(cents(partials(instrumental[0], rate, shifted), shifted)).max() < 3.0
    cover, rate = read(out)   # the music in the cover is shifted too
    assert rate == RATE and np.abs(cents(partials(cover[0], rate, shifted), shifted)).max() < 3.0
    assert sf.info(str(out)).format == "FLAC"


def test_whole_octaves_and_no_shift_keep_the_music(tmp_path, services, voice):
    song_path, _ = make_song(tmp_path)
    for transpose, shift in ((12, True), (5, False)):
        result = make_cover(song_path, voice, InferConfig(f0_method="pm", transpose_semitones=transpose),
                            CoverConfig(shift_instrumental=shift), out_path=tmp_path / f"c{transpose}.wav",
                            services=services)
        instrumental, rate = read(result.stems["instrumental"])
        assert result.instrumental_shift_semitones == 0 and "shift" not in result.timings
        assert np.abs(cents(partials(instrumental[0], rate, list(CHORD_HZ)), CHORD_HZ)).max() < 3.0


def test_long_song_is_converted_in_blocks(tmp_path, services, voice, monkeypatch):
    from voiceapp.infer import pipeline as infer_pipeline

    calls = []
    real = infer_pipeline.convert
    monkeypatch.setattr(infer_pipeline, "convert",
                        lambda audio, *a, **k: calls.append(len(audio)) or real(audio, *a, **k))
    song_path, song = make_song(tmp_path, seconds=24.0)
    result = make_cover(song_path, voice, InferConfig(f0_method="pm"), CoverConfig(convert_block_s=10.0),
                        out_path=tmp_path / "long.wav", services=services)
    converted, _ = read(result.stems["converted_vocals"])
    assert len(calls) == 2 and max(calls) < 15.5 * RATE          # two blocks (+ context), not the whole song
    assert converted.shape[1] == song.shape[1] and np.all(np.isfinite(converted))
    assert read(result.output_path)[0].shape == song.shape


@pytest.mark.parametrize("kind", ["silence", "short", "not audio"])
def test_bad_input_gives_a_clear_message_and_writes_nothing(tmp_path, services, voice, kind):
    path = tmp_path / "in" / "bad.wav"
    if kind == "silence":
        write_wav(path, np.zeros((2, 3 * RATE), np.float32), RATE)
    elif kind == "short":
        write_wav(path, harmonic(220, 0.1, RATE), RATE)
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"this is a text file, not a song\n" * 50)
    out_dir = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        make_cover(path, voice, InferConfig(f0_method="pm"), out_path=out_dir / "cover.wav", services=services)
    message = str(caught.value)
    assert message.startswith("Cover failed at stage 'read': ") and "bad.wav" in message
    assert {"silence": "silent", "short": "0.10 s", "not audio": "decod"}[kind] in message
    assert leftovers(out_dir) == []


def test_cancel_leaves_no_partial_output(tmp_path, services, voice):
    song_path, _ = make_song(tmp_path, seconds=2.0)
    out_dir = tmp_path / "out"
    for stage in ("convert", "shift", "remix"):
        token = CancelToken()
        seen = []

        def progress(fraction, message, stage=stage, token=token):
            seen.append(message)
            if message.startswith(stage):
                token.set()

        with pytest.raises(Cancelled):
            make_cover(song_path, voice, InferConfig(f0_method="pm", transpose_semitones=3), out_path=out_dir / "c.wav",
                       services=services, progress=progress, cancel=token)
        assert any(m.startswith(stage) for m in seen) and leftovers(out_dir) == []


def test_a_failure_names_its_stage_and_writes_nothing(tmp_path, services, voice, monkeypatch):
    from voiceapp.infer import pipeline as infer_pipeline

    def broken(*args, **kwargs):
        raise VoiceAppError("the model file may be damaged")

    monkeypatch.setattr(infer_pipeline, "convert", broken)
    song_path, _ = make_song(tmp_path)
    with pytest.raises(VoiceAppError, match="^Cover failed at stage 'convert': the model file may be damaged"):
        make_cover(song_path, voice, InferConfig(f0_method="pm"), out_path=tmp_path / "out" / "c.wav",
                   services=services)
    assert leftovers(tmp_path / "out") == []
    with pytest.raises(VoiceAppError, match="stage 'read'.*Unknown separator"):
        make_cover(song_path, voice, InferConfig(), CoverConfig(separator="nope"), out_path=tmp_path / "out" / "c.wav",
                   services=services)


def test_the_cover_never_replaces_the_song(tmp_path, services, voice):
    song_path, _ = make_song(tmp_path)
    before = song_path.read_bytes()
    with pytest.raises(InputError, match="would replace it"):
        make_cover(song_path, voice, InferConfig(f0_method="pm"), out_path=song_path, services=services)
    assert song_path.read_bytes() == before


def _karaoke_separator(workspace, name: str = "tiny-lead", purpose: str = "karaoke") -> str:
    import torch

    from voiceapp.nets.unet import UNet
    from voiceapp.separate.model import MaskModelConfig, save_separator

    torch.manual_seed(0)
    cfg = MaskModelConfig.tiny()
    save_separator(workspace.separator_dir(name), UNet(cfg.unet).state_dict(), cfg, {"purpose": purpose})
    return name


def test_lead_and_backing_split_with_a_karaoke_separator(tmp_path, workspace, services, voice):
    song_path, song = make_song(tmp_path)
    assert karaoke_separators(workspace) == []
    with pytest.raises(InputError, match="not an installed karaoke separator.*none"):
        make_cover(song_path, voice, InferConfig(f0_method="pm"), CoverConfig(backing_separator="kara"),
                   out_path=tmp_path / "out" / "c.wav", services=services)
    assert leftovers(tmp_path / "out") == []
    name = _karaoke_separator(workspace)                      # its sidecar says it is a karaoke separator
    _karaoke_separator(workspace, "plain-vocals", "vocals")   # a vocals separator is not offered for the split
    assert karaoke_separators(workspace) == [name]
    cfg = CoverConfig(backing_separator=name, backing_gain_db=-3.0, match_loudness=False)
    result = make_cover(song_path, voice, InferConfig(f0_method="pm"), cfg, out_path=tmp_path / "out" / "c.wav",
                        services=services)
    assert set(result.stems) == {"vocals", "converted_vocals", "instrumental", "backing"}
    cover, _ = read(result.output_path)
    stems = {k: read(p)[0] for k, p in result.stems.items()}
    assert result.gain_db == 0 and "split" in result.timings
    expected = stems["converted_vocals"] + stems["instrumental"] + 10 ** (-3 / 20) * stems["backing"]
    assert np.abs(cover - expected).max() < 1e-4
    separated_vocals = song - stems["instrumental"]   # lead + backing add up to the separated vocals
    assert np.abs(stems["vocals"] + stems["backing"] - separated_vocals).max() < 1e-4


def test_cli_cover(tmp_path, workspace, voice_path, capsys):
    song_path, song = make_song(tmp_path)
    out = tmp_path / "cli" / "mine.ogg"
    root = str(workspace.root)
    assert cli.main(["cover", str(song_path), "--model", str(voice_path), "--out", str(out), "--root", root,
                     "--f0-method", "pm", "--transpose", "12", "--vocals-db", "-3", "--stems",
                     str(tmp_path / "stems")]) == 0
    printed = capsys.readouterr().out
    assert "Cover of song.wav" in printed and "music unshifted" in printed
    info = sf.info(str(out))
    assert info.format == "OGG" and info.samplerate == RATE and info.channels == 2
    assert abs(info.frames - song.shape[1]) <= 1
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == ["converted_vocals.wav", "instrumental.wav",
                                                                      "vocals.wav"]
    mono = write_wav(tmp_path / "mono.wav", song[0], RATE)        # a mono song, into a folder, at another rate
    folder = tmp_path / "covers"
    folder.mkdir()
    assert cli.main(["cover", str(mono), "--model", str(voice_path), "--out", str(folder), "--root", root,
                     "--f0-method", "pm", "--resample-sr", "32000", "--no-stems", "--format", "flac"]) == 0
    info = sf.info(str(folder / "mono.flac"))
    assert (info.samplerate, info.channels) == (32000, 1) and abs(info.frames - song.shape[1] * 32000 / RATE) <= 2
    assert sorted(p.name for p in folder.iterdir()) == ["mono.flac"]
    capsys.readouterr()
    bad = write_wav(tmp_path / "quiet.wav", np.zeros(2 * RATE, np.float32), RATE)
    assert cli.main(["cover", str(bad), "--model", str(voice_path), "--out", str(tmp_path / "q.wav"),
                     "--root", root, "--no-stems"]) == 2
    assert "Cover failed at stage 'read'" in capsys.readouterr().err and not (tmp_path / "q.wav").exists()


def test_loudness_gain_stops_below_clipping():
    from voiceapp.cover.streams import loudness_gain

    assert loudness_gain(-14.0, -16.0, 0.5, True) == (pytest.approx(2.0), [])
    gain, notes = loudness_gain(-10.0, -20.0, 0.5, True)         # +10 dB would put the peak at 1.58
    assert gain == pytest.approx(20 * np.log10(0.99 / 0.5)) and "quieter than the song" in notes[0]
    assert loudness_gain(-10.0, -20.0, 0.5, False) == (0.0, [])
    assert loudness_gain(-10.0, -np.inf, 0.0, True) == (0.0, [])  # a silent remix is left as it is


def test_a_read_only_output_folder_is_a_clear_message(tmp_path, services, voice, monkeypatch):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out"))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)   # what a read-only disk answers (tests run as root)
    song_path, _ = make_song(tmp_path)
    with pytest.raises(VoiceAppError, match="Cannot write .*out: the folder is on a read-only disk"):
        make_cover(song_path, voice, InferConfig(f0_method="pm"), out_path=tmp_path / "out" / "c.wav",
                   services=services)
