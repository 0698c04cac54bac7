"""speak() into a voice model: a tiny random model with the fake content encoder (no weights, CPU)."""

from types import SimpleNamespace

import numpy as np
import pytest

from voiceapp.errors import Cancelled, VoiceAppError
from voiceapp.progress import CancelToken
from voiceapp.tts.speak import TYPICAL_F0_HZ, TtsConfig, model_f0_hz, speak

TEXT = "Hello there, this is a test. The second sentence is a bit longer than the first one."


@pytest.fixture
def tiny_model(workspace):
    import torch

    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.voices.rvc import export_voice_model

    torch.manual_seed(0)
    cfg = SynthConfig.tiny("v2", 40000, use_f0=True)
    net = Synthesizer(cfg)
    path = workspace.voice_model_path("tiny")
    export_voice_model(net.state_dict(), cfg, path, epoch=1, step=1, embedder="fake", name="tiny")
    return path


def _infer_cfg(**kw):
    from voiceapp.infer.pipeline import InferConfig

    return InferConfig(f0_method="pm", index_rate=0.0, **kw)


def test_converted_speech_has_the_model_rate_and_the_base_duration(services, tiny_model):
    seen = []
    result = speak(TEXT, "espeak", "en-us", TtsConfig(), voice_model="tiny", infer_cfg=_infer_cfg(),
                   services=services, progress=lambda f, m: seen.append(f))
    assert result.sample_rate == 40000 and result.audio.dtype == np.float32
    assert result.base_sample_rate == 22050 and len(result.sentences) == 2
    assert abs(result.duration_s - result.base_duration_s) < 0.05
    assert np.all(np.isfinite(result.audio)) and np.max(np.abs(result.audio)) > 0
    assert seen[-1] == 1.0 and seen == sorted(seen)
    # No metadata and no training features: the typical value, said so, and applied.
    t = result.transpose
    assert t is not None and t.applied and t.model_f0_hz == TYPICAL_F0_HZ["unknown"]
    assert "no pitch statistics" in t.source and 60 < t.base_f0_hz < 200
    assert result.infer_config.transpose_semitones == t.semitones and result.model_name == "tiny"


def test_manual_transpose_is_kept_and_the_model_loads_by_path(services, tiny_model):
    result = speak("Just one sentence.", "espeak", "en-us", TtsConfig(auto_transpose=False, target_sex="female"),
                   voice_model=str(tiny_model), infer_cfg=_infer_cfg(transpose_semitones=3), services=services)
    assert result.infer_config.transpose_semitones == 3
    assert not result.transpose.applied and result.transpose.model_f0_hz == TYPICAL_F0_HZ["female"]


def test_model_f0_comes_from_metadata_then_training_features(workspace):
    value, source = model_f0_hz(SimpleNamespace(metadata={"f0_median_hz": 231.0}, path=None), workspace)
    assert value == 231.0 and "model file" in source
    f0_dir = workspace.experiment("alice").features_dir / "f0"
    f0_dir.mkdir(parents=True)
    np.save(f0_dir / "a.npy", np.array([0, 0, 190, 200, 210, 0], dtype=np.float32))
    voice = SimpleNamespace(metadata={}, path=workspace.voice_model_path("alice"))
    value, source = model_f0_hz(voice, workspace)
    assert value == 200.0 and "training features" in source
    assert model_f0_hz(SimpleNamespace(metadata={}, path=None), workspace, "male")[0] == TYPICAL_F0_HZ["male"]


def test_unknown_model_and_cancel_give_clear_messages(services, tiny_model):
    with pytest.raises(VoiceAppError, match="nosuchmodel"):
        speak("Hello.", "espeak", "en-us", voice_model="nosuchmodel", services=services)
    token = CancelToken()
    token.set()
    with pytest.raises(Cancelled):
        speak(TEXT, "espeak", "en-us", voice_model="tiny", infer_cfg=_infer_cfg(), services=services, cancel=token)


def test_tts_tab_converts_into_the_selected_model(services, tiny_model):
    import soundfile as sf

    from voiceapp.ui import tts_tab

    models = dict((v, k) for k, v in tts_tab.model_choices(services))
    assert str(tiny_model) in models
    settings = {"rate_percent": 0, "pause_s": 0.25, "auto_transpose": True, "target_sex": "female",
                "transpose_semitones": 0, "f0_method": "pm", "index_rate": 0.75, "protect": 0.33, "rms_mix_rate": 0.25,
                "filter_radius": 3}
    status, base, _, converted, converted_file, transpose = tts_tab.speak_clicked(
        services, "Hello there.", None, "espeak", "en-us", str(tiny_model), "auto", settings)
    assert "Transpose" in status and "applied" in status and "tiny" in status
    info = sf.info(converted)
    assert info.samplerate == 40000 and converted_file == converted
    assert abs(info.duration - sf.info(base).duration) < 0.05
    assert transpose["value"] != 0  # espeak's ~100 Hz male voice moved towards a typical female 210 Hz


def test_cli_with_a_model_writes_the_converted_and_the_base_speech(workspace, tiny_model, tmp_path, capsys):
    import soundfile as sf

    from voiceapp import cli

    out, base = tmp_path / "out.wav", tmp_path / "base.wav"
    assert cli.main(["tts", "--root", str(workspace.root), "--text", "Hello there.", "--model", "tiny",
                     "--f0-method", "pm", "--transpose", "2", "--out", str(out), "--base-out", str(base)]) == 0
    assert sf.info(out).samplerate == 40000 and sf.info(base).samplerate == 22050
    printed = capsys.readouterr().out
    assert "suggested" in printed and "applied" not in printed  # a manual transpose wins over the suggestion
    assert cli.main(["tts", "--root", str(workspace.root), "--text", "Hi.", "--model", "tiny",
                     "--transpose", "up", "--out", str(out)]) == 2


def test_a_voice_without_pitch_keeps_the_transpose_and_says_why(services, tiny_model):
    result = speak("Hello there.", "espeak", "en-us+whisper", TtsConfig(), voice_model="tiny",
                   infer_cfg=_infer_cfg(transpose_semitones=-2), services=services)
    assert result.transpose is None and result.infer_config.transpose_semitones == -2
    assert any("no clear pitch" in note for note in result.notes)
