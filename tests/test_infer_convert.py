"""Community-format voice models (random weights, v1/v2, with and without f0) plus an index convert a voice.

Tiny shapes and the fake content encoder keep this fast; one test uses RVC's full v2 40k shapes.
"""


import numpy as np
import pytest

from helpers import harmonic, make_index, make_voice, phrase_with_gaps, write_wav
from voiceapp.errors import InputError
from voiceapp.infer.pipeline import InferConfig, convert, convert_file, convert_folder, load_voice
from voiceapp.voices.store import find_index

CASES = [("v1", True, 32000), ("v1", False, 48000), ("v2", True, 40000), ("v2", False, 32000)]


@pytest.mark.parametrize("version,use_f0,rate", CASES)
def test_community_model_with_index_converts_a_voice(workspace, services, version, use_f0, rate):
    name = f"m_{version}_{int(use_f0)}_{rate}"
    model_path = make_voice(workspace, name, version, use_f0, rate)
    index = make_index(workspace, name, version)
    assert find_index(model_path, workspace) == workspace.voice_dir(name) / index.name
    voice = load_voice(name, services)
    x = phrase_with_gaps(16000, tone_s=0.6, gap_s=0.3, n=2)
    cfg = InferConfig(f0_method="pm", seed=1, transpose_semitones=3)
    result = convert(x, 16000, voice, cfg, index_path=find_index(model_path), services=services)
    hop = voice.config.hop_length
    assert result.sample_rate == rate
    assert abs(len(result.audio) - len(x) * rate / 16000) <= hop
    assert np.all(np.isfinite(result.audio)) and np.abs(result.audio).max() > 1e-4
    assert np.abs(result.audio).max() <= 0.99 + 1e-6
    assert result.index_path is not None and result.f0_method == ("pm" if use_f0 else None)
    again = convert(x, 16000, voice, cfg, index_path=find_index(model_path), services=services)
    assert np.array_equal(result.audio, again.audio)
    for key in ("f0", "features", "retrieval", "synthesis", "total"):
        assert key in result.timings or (key == "f0" and not use_f0)
    assert "real-time factor" in result.summary()


def test_seed_and_index_rate_change_the_output(workspace, services):
    path = make_voice(workspace, "alice")
    index = make_index(workspace, "alice", "v2")
    voice = load_voice(path, services)
    x = harmonic(200, 1.0, 16000)
    base = dict(f0_method="pm", rms_mix_rate=1.0)
    a = convert(x, 16000, voice, InferConfig(seed=0, **base), index_path=index, services=services).audio
    b = convert(x, 16000, voice, InferConfig(seed=1, **base), index_path=index, services=services).audio
    c = convert(x, 16000, voice, InferConfig(seed=0, index_rate=0.0, **base), index_path=index, services=services).audio
    d = convert(x, 16000, voice, InferConfig(seed=0, index_rate=0.0, **base), index_path=None, services=services).audio
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(c, d)  # rate 0 is the same as no index


def test_model_cache_and_encoder_refusal(workspace, services):
    make_voice(workspace, "bob")
    first = load_voice("bob", services)
    assert load_voice("bob", services) is first
    with pytest.raises(InputError, match="trained with 'fake'"):
        convert(harmonic(200, 0.5, 16000), 16000, first, InferConfig(encoder="whisper-tiny", f0_method="pm"),
                services=services)
    with pytest.raises(InputError, match="1 speaker|speaker"):
        convert(harmonic(200, 0.5, 16000), 16000, first, InferConfig(speaker_id=50, f0_method="pm"), services=services)


def test_index_of_other_width_is_refused(workspace, services):
    make_voice(workspace, "carol", version="v2")
    v1_index = make_index(workspace, "dave", "v1")
    voice = load_voice("carol", services)
    with pytest.raises(InputError, match="256-d"):
        convert(harmonic(200, 0.5, 16000), 16000, voice, InferConfig(f0_method="pm"), index_path=v1_index,
                services=services)


def test_files_bad_inputs_and_folder_status(tmp_path, workspace, services):
    make_voice(workspace, "eve", sample_rate=32000)
    voice = load_voice("eve", services)
    good = write_wav(tmp_path / "in" / "good.wav", harmonic(220, 0.7, 44100), 44100)
    short = write_wav(tmp_path / "in" / "short.wav", harmonic(220, 0.1, 22050), 22050)
    silent = write_wav(tmp_path / "in" / "sub" / "silent.wav", np.zeros(16000, np.float32), 16000)
    six = write_wav(tmp_path / "in" / "six.flac", np.stack([harmonic(150 + 10 * i, 0.5, 48000) for i in range(6)]),
                    48000)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    cfg = InferConfig(f0_method="pm")
    one = convert_file(good, voice, cfg, out_path=tmp_path / "out.flac", services=services)
    assert one.output_path.suffix == ".flac" and one.output_path.is_file()
    assert abs(len(one.audio) - 0.7 * 32000) <= 320
    statuses = convert_folder([tmp_path / "in"], tmp_path / "out", voice, cfg, fmt="ogg", services=services)
    by_name = {s.path.name: s for s in statuses}
    assert not by_name["broken.wav"].ok and "broken.wav" in by_name["broken.wav"].message
    for name, seconds in (("good.wav", 0.7), ("short.wav", 0.1), ("silent.wav", 1.0), ("six.flac", 0.5)):
        status = by_name[name]
        assert status.ok, status.message
        assert abs(len(status.result.audio) - seconds * 32000) <= 320
    assert (tmp_path / "out" / "sub" / "silent.ogg").is_file()
    assert not by_name["silent.wav"].result.audio.any()
    assert {short.name, silent.name, six.name} <= set(by_name)


def test_full_size_v2_40k_model(workspace, services):
    """RVC's own shapes (the file RVC WebUI/Applio write) load and convert with retrieval and protect."""
    path = make_voice(workspace, "full", size="full")
    voice = load_voice(path, services)
    assert voice.config.upsample_initial_channel == 512 and voice.net.dec.conv_pre.weight.shape == (512, 192, 7)
    index = make_index(workspace, "full", "v2")
    x = harmonic(180, 0.4, 16000)
    result = convert(x, 16000, voice, InferConfig(f0_method="pm", protect=0.2, segment_pad_s=0.3), index_path=index,
                     services=services)
    assert abs(len(result.audio) - 0.4 * 40000) <= 400 and np.all(np.isfinite(result.audio))


def _logmel(audio, rate):
    import librosa

    return np.log(librosa.feature.melspectrogram(y=audio, sr=rate, n_fft=2048, hop_length=rate // 100, n_mels=80)
                  + 1e-6)


@pytest.mark.slow
def test_speed_options_stay_within_the_noise(workspace, services):
    """bf16 decoding and shorter context change the sound (log-mel) about as much as another noise seed."""
    make_voice(workspace, "fast")
    voice = load_voice("fast", services)
    x = harmonic(190, 2.0, 16000, vibrato_hz=4, vibrato_cents=80)
    base = dict(f0_method="pm", rms_mix_rate=1.0, index_rate=0.0)

    def run(**kwargs):
        return _logmel(convert(x, 16000, voice, InferConfig(**{**base, **kwargs}), services=services).audio, 40000)

    reference = dict(precision="fp32", segment_pad_s=1.0)  # RVC's CPU numerics and context
    ours = run(**reference)
    noise = np.mean(np.abs(ours - run(**reference, seed=1)))
    assert noise > 0
    assert np.mean(np.abs(ours - run(precision="bf16", segment_pad_s=1.0))) < noise
    assert np.mean(np.abs(ours - run())) < 1.25 * noise  # the defaults: bf16 where fast, 0.5 s context
    assert np.mean(np.abs(ours - run(**reference, decoder_context_s=0.3))) < 1.5 * noise
