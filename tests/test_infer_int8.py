"""The int8 ONNX Runtime decoder (voiceapp/infer/onnx_decoder.py): export equals PyTorch, conversion stays within
the model's own noise, the cached graph follows the model file, and every failure falls back to float32."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from helpers import harmonic, make_voice

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _logmel(audio, rate):
    import librosa

    return np.log(librosa.feature.melspectrogram(y=audio, sr=rate, n_fft=2048, hop_length=rate // 100, n_mels=80)
                  + 1e-6)


def _graphs(workspace):
    folder = workspace.models_dir / "cache" / "decoders"
    return sorted(folder.glob("*.onnx")) if folder.exists() else []


def test_exported_decoder_equals_pytorch(tmp_path):
    import onnxruntime as ort
    import torch

    from voiceapp.infer.onnx_decoder import export_filter, fused_conv1d_copy
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer

    torch.manual_seed(0)
    cfg = SynthConfig.preset("v2", 40000, True, "tiny")
    dec = Synthesizer(cfg).eval().dec
    path = export_filter(dec, tmp_path / "dec.onnx", tile_frames=50, context=8, gin_channels=cfg.gin_channels)
    frames, hop = 66, dec.upsample
    x = torch.randn(1, dec.conv_pre.in_channels, frames)
    source = 0.1 * torch.randn(1, 1, frames * hop)
    g = torch.randn(1, cfg.gin_channels, 1)
    with torch.no_grad():
        expected = dec.filter(x, source, g).numpy()
        fused = fused_conv1d_copy(dec).filter(x, source, g).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy(), "source": source.numpy(), "g": g.numpy()})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(fused - expected).max() < 1e-5


@pytest.mark.slow
def test_int8_conversion_stays_within_the_noise_and_is_cached(workspace, services, monkeypatch):
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    make_voice(workspace, "q8")
    voice = load_voice("q8", services)
    x = harmonic(190, 3.0, 16000, vibrato_hz=4, vibrato_cents=80)
    base = dict(f0_method="pm", rms_mix_rate=1.0, index_rate=0.0)

    def run(**kwargs):
        result = convert(x, 16000, voice, InferConfig(**{**base, **kwargs}), services=services)
        return result.audio

    reference = run(precision="fp32")
    int8 = run(precision="int8")
    assert len(int8) == len(reference)
    assert len(_graphs(workspace)) == 1
    noise = np.mean(np.abs(_logmel(reference, 40000) - _logmel(run(precision="fp32", seed=1), 40000)))
    # the tiny random model's quiet output (peak ~0.02) is the hard case: int8 moves it ~1.5x as far as another
    # seed (0.40 vs 0.27); bench/infer.py --quality measures the full model on real speech
    assert 0 < np.mean(np.abs(_logmel(reference, 40000) - _logmel(int8, 40000))) < 2 * noise
    assert not np.array_equal(int8, reference)  # it really ran the int8 graph

    # a new process (empty cache of loaded models) finds the graph on disk: nothing is exported again
    from voiceapp.services import Services

    monkeypatch.setattr(onnx_decoder, "export_filter", lambda *a, **k: pytest.fail("exported again"))
    again = convert(x, 16000, load_voice("q8", Services(workspace=workspace, device="cpu")),
                    InferConfig(**base, precision="int8"), services=Services(workspace=workspace, device="cpu"))
    np.testing.assert_array_equal(again.audio, int8)


@pytest.mark.slow
def test_graph_is_rebuilt_when_the_model_file_changes(workspace, monkeypatch):
    import torch

    from voiceapp.infer.pipeline import InferConfig, convert, load_voice
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.services import Services
    from voiceapp.voices.rvc import export_voice_model

    path = make_voice(workspace, "changes")
    x = harmonic(200, 1.5, 16000)
    cfg = InferConfig(f0_method="pm", index_rate=0.0, precision="int8")
    convert(x, 16000, load_voice("changes", Services(workspace=workspace, device="cpu")), cfg,
            services=Services(workspace=workspace, device="cpu"))
    first = _graphs(workspace)
    assert len(first) == 1

    syn = SynthConfig.preset("v2", 40000, True, "tiny")
    torch.manual_seed(1)  # other weights in the same file: the user retrained or replaced it
    export_voice_model(Synthesizer(syn).state_dict(), syn, path, epoch=2, step=2, embedder="fake", name="changes")
    services = Services(workspace=workspace, device="cpu")
    convert(x, 16000, load_voice("changes", services), cfg, services=services)
    second = _graphs(workspace)
    assert len(second) == 1 and second != first  # rebuilt, and the stale graph is gone


def test_missing_runtime_falls_back_to_float32_with_one_line(workspace, services, monkeypatch, caplog):
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    make_voice(workspace, "fb")
    voice = load_voice("fb", services)
    x = harmonic(200, 1.0, 16000)
    reference = convert(x, 16000, voice, InferConfig(f0_method="pm", precision="fp32"), services=services).audio
    monkeypatch.setattr(onnx_decoder, "missing_runtime", lambda: "onnxruntime not installed")
    with caplog.at_level(logging.WARNING, logger="voiceapp.infer.speed"):
        got = convert(x, 16000, voice, InferConfig(f0_method="pm", precision="int8"), services=services).audio
    lines = [r.getMessage() for r in caplog.records if "int8 decoder unavailable" in r.getMessage()]
    assert len(lines) == 1 and "onnxruntime not installed" in lines[0] and "float32" in lines[0]
    np.testing.assert_array_equal(got, reference)
    assert _graphs(workspace) == []


def test_failed_export_falls_back_and_leaves_no_graph(workspace, services, monkeypatch, caplog):
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    make_voice(workspace, "broken")
    voice = load_voice("broken", services)

    def fail(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::something' to ONNX opset version 17 is not supported")

    monkeypatch.setattr(onnx_decoder, "export_filter", fail)
    x = harmonic(200, 1.0, 16000)
    with caplog.at_level(logging.WARNING, logger="voiceapp.infer.speed"):
        got = convert(x, 16000, voice, InferConfig(f0_method="pm", precision="int8"), services=services)
    assert len(got.audio) > 0
    lines = [r.getMessage() for r in caplog.records if "int8 decoder unavailable" in r.getMessage()]
    assert len(lines) == 1 and "RuntimeError" in lines[0] and "not supported" in lines[0]
    assert _graphs(workspace) == []


def test_auto_never_picks_int8_and_names_the_cpu(monkeypatch):
    from voiceapp.infer import speed

    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: False)
    for isa in ("AVX2", "AVX-512", "older"):  # float32 (ONNX Runtime or PyTorch), never int8
        monkeypatch.setattr(speed, "cpu_isa", lambda isa=isa: isa)
        assert speed.resolve_precision("auto", "cpu") in ("ort", "fp32")
    assert speed.resolve_precision("int8", "cpu") == "int8"
    assert speed.resolve_precision("auto", "cuda") == "fp32"
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: True)
    assert speed.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.undo()
    assert speed.cpu_isa() in ("AMX", "AVX-512 BF16", "AVX-512", "AVX2", "older", "unknown")
