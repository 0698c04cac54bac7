"""TTS engines and base speech: the offline eSpeak NG engine, text splitting, joins without clicks or long gaps."""

import numpy as np
import pytest

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.tts.engines import ENGINES, available_engines, get_engine
from voiceapp.tts.speak import TtsConfig, speak, suggest_transpose
from voiceapp.tts.text import frame_rms_db, join_pieces, split_sentences, trim_silence

SENTENCE = "The quick brown fox jumps over the lazy dog."


def _longest_silence_s(audio: np.ndarray, sample_rate: int, below_peak_db: float = 50.0) -> float:
    frame = int(0.01 * sample_rate)
    levels = frame_rms_db(audio, frame)
    quiet = levels < 20 * np.log10(np.max(np.abs(audio))) - below_peak_db
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest * 0.01


def test_offline_engine_is_always_available_and_lists_voices():
    assert available_engines()[0] == "espeak"
    engine = get_engine("espeak")
    voices = engine.voices()
    ids = {v.id for v in voices}
    assert len(voices) > 50 and {"en-us", "fr-fr", "de"} <= ids
    assert any(v.gender == "female" for v in voices)
    assert engine.voice("en-us").language == "en-us"


def test_offline_engine_speaks_a_sentence_of_plausible_duration():
    audio, sample_rate = get_engine("espeak").synthesize(SENTENCE, "en-us")
    assert audio.dtype == np.float32 and sample_rate == 22050
    duration_s = len(trim_silence(audio, sample_rate)) / sample_rate
    assert 1.5 < duration_s < 6.0  # 9 words at ~175 words per minute is about 3 s
    assert np.sqrt(np.mean(audio ** 2)) > 0.02 and np.max(np.abs(audio)) <= 1.0


def test_speaking_rate_changes_duration():
    engine = get_engine("espeak")
    slow, sr = engine.synthesize(SENTENCE, "en-us", -40)
    fast, _ = engine.synthesize(SENTENCE, "en-us", 60)
    assert len(trim_silence(slow, sr)) > 1.5 * len(trim_silence(fast, sr))


def test_other_languages_and_variants_speak():
    engine = get_engine("espeak")
    for voice in ("fr-fr", "en-us+f3"):
        audio, _ = engine.synthesize("Bonjour tout le monde.", voice)
        assert np.max(np.abs(audio)) > 0.05


def test_split_sentences_handles_abbreviations_paragraphs_and_long_sentences():
    text = "Dr. Smith arrived. Did he? Yes!\nA new line without a stop\n\n..." + " word," * 80 + " end."
    pieces = split_sentences(text, max_chars=60)
    assert pieces[:4] == ["Dr. Smith arrived.", "Did he?", "Yes!", "A new line without a stop"]
    assert all(len(p) <= 60 for p in pieces) and pieces[-1].endswith("end.")
    assert split_sentences("  ... !! ") == []


def test_join_pieces_fades_to_zero_and_keeps_the_pause():
    sr = 16_000
    tone = 0.8 * np.ones(sr // 2, dtype=np.float32)  # worst case: full-scale DC edges
    out, starts = join_pieces([tone, tone, tone], sr, pause_s=0.2, fade_s=0.01)
    assert starts == [0, sr // 2 + int(0.2 * sr), 2 * (sr // 2 + int(0.2 * sr))]
    assert np.max(np.abs(np.diff(out))) < 0.8 * np.pi / (2 * 0.01 * sr) * 1.01  # the raised-cosine slope
    crossfaded, _ = join_pieces([tone, tone], sr, pause_s=0.0, fade_s=0.01)
    assert len(crossfaded) == 2 * len(tone) - int(0.01 * sr)
    assert np.max(np.abs(np.diff(crossfaded))) < 0.01


def test_long_text_is_split_and_joined_without_gaps_or_clicks(services):
    text = ("This is the first sentence of a longer text. Here comes the second one, with a comma. "
            "The third sentence asks a question? The fourth one is short. "
            "Finally, the fifth sentence closes the paragraph.")
    progress = []
    cfg = TtsConfig(pause_s=0.3)
    result = speak(text, "espeak", "en-us", cfg, progress=lambda f, m: progress.append(f), services=services)
    assert len(result.sentences) == 5 and result.audio is None
    audio, sr = result.base_audio, result.base_sample_rate
    assert _longest_silence_s(audio, sr) <= 0.5
    # Every join: the samples around the pause are near zero and change smoothly (no discontinuity).
    single = [trim_silence(get_engine("espeak").synthesize(s, "en-us")[0], sr) for s in result.sentences]
    _, starts = join_pieces(single, sr, cfg.pause_s, cfg.fade_ms / 1000)
    assert abs(len(audio) - (starts[-1] + len(single[-1]))) < sr * 0.05
    speech_jump = np.percentile(np.abs(np.diff(audio)), 99.9)
    for start in starts[1:]:
        around = audio[start - int(cfg.pause_s * sr) - 40:start + 40]
        assert np.max(np.abs(around)) < 0.05
        assert np.max(np.abs(np.diff(around))) < 0.25 * speech_jump
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_empty_text_unknown_voice_and_unknown_engine_give_clear_messages(services):
    with pytest.raises(InputError, match="no text"):
        speak("   ", "espeak", "en-us", services=services)
    with pytest.raises(InputError, match="no text"):
        speak("... !!", "espeak", "en-us", services=services)
    with pytest.raises(InputError, match="Unknown voice 'xx-nowhere'.*--list-voices"):
        speak("Hello.", "espeak", "xx-nowhere", services=services)
    with pytest.raises(InputError, match="Unknown eSpeak NG variant"):
        speak("Hello.", "espeak", "en-us+nosuchvariant", services=services)
    with pytest.raises(InputError, match="Unknown TTS engine 'nope'.*espeak"):
        speak("Hello.", "nope", services=services)
    with pytest.raises(InputError, match="at most 1,000"):
        speak("Hello. " * 200, "espeak", "en-us", TtsConfig(max_text_chars=1000), services=services)
    with pytest.raises(ConfigError):
        TtsConfig(rate_percent=500)


def test_unavailable_engines_say_what_to_install(workspace):
    if "piper" in available_engines(workspace):
        pytest.skip("piper is installed here")
    with pytest.raises(MissingArtifactError, match="models/base/piper"):
        get_engine("piper", workspace)
    assert set(ENGINES) >= {"espeak", "espeak-ng-cli", "flite", "festival", "piper", "edge-tts"}
    assert ENGINES["edge-tts"]().online and not ENGINES["espeak"]().online


@pytest.mark.parametrize("engine", ["espeak-ng-cli", "flite"])
def test_system_engines_when_installed(engine):
    if engine not in available_engines():
        pytest.skip(f"{engine} is not installed")
    tts = get_engine(engine)
    audio, sr = tts.synthesize("-Hello, a test that starts with a dash.", None)
    assert len(audio) > sr * 0.8 and np.max(np.abs(audio)) > 0.05


def test_transpose_suggestion():
    up = suggest_transpose(110.0, 220.0, "test")
    assert up.semitones == 12 and "+12" in up.message
    assert suggest_transpose(200.0, 100.0, "test").semitones == -12
    assert suggest_transpose(100.0, 1000.0, "test").semitones == 12  # clamped
    assert suggest_transpose(120.0, 120.0, "test").semitones == 0


def _fake_module(name, **attrs):
    import importlib.machinery
    import types

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    return module


def test_piper_voices_on_disk_are_found_and_spoken_with_a_stand_in_package(workspace, monkeypatch):
    import json

    calls = {}

    class Chunk:
        sample_rate = 22050
        audio_int16_bytes = (np.sin(np.arange(22050) * 0.05) * 8000).astype(np.int16).tobytes()

    class FakeVoice:
        config = type("C", (), {"sample_rate": 22050})

        @classmethod
        def load(cls, model_path, config_path=None):
            calls["load"] = (model_path, config_path)
            return cls()

        def synthesize(self, text, syn_config=None):
            calls["length_scale"] = syn_config.length_scale
            yield Chunk()

    class SynthesisConfig:
        def __init__(self, length_scale=1.0):
            self.length_scale = length_scale

    monkeypatch.setitem(__import__("sys").modules, "piper",
                        _fake_module("piper", PiperVoice=FakeVoice, SynthesisConfig=SynthesisConfig))
    assert "piper" not in available_engines(workspace)  # no voice files yet
    workspace.piper_dir.mkdir(parents=True)
    (workspace.piper_dir / "en_US-test-low.onnx").write_bytes(b"onnx")
    (workspace.piper_dir / "en_US-test-low.onnx.json").write_text(json.dumps({"language": {"code": "en_US"}}))
    assert "piper" in available_engines(workspace)
    engine = get_engine("piper", workspace)
    assert [(v.id, v.language) for v in engine.voices()] == [("en_US-test-low", "en_US")]
    audio, sr = engine.synthesize("Hello.", None, rate_percent=25)
    assert sr == 22050 and len(audio) == 22050 and np.max(np.abs(audio)) > 0.2
    assert calls["length_scale"] == pytest.approx(0.8) and calls["load"][1].endswith(".onnx.json")
