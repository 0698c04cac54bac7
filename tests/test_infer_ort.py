"""The float32 ONNX Runtime decoder (`precision="ort"`, what `auto` picks on AVX2 CPUs): its graph gives the
PyTorch decoder's numbers, conversions equal float32 ones, the graph is cached per model file and rebuilt when
the file changes, and a missing runtime or a failed export falls back to PyTorch float32 with one line."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from helpers import harmonic, make_voice

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _graphs(workspace, kind="fp32"):
    folder = workspace.models_dir / "cache" / "decoders"
    return sorted(folder.glob(f"*-{kind}.onnx")) if folder.exists() else []


def _fallback_lines(caplog):
    return [r.getMessage() for r in caplog.records
            if "float32 ONNX Runtime decoder unavailable" in r.getMessage()]


@pytest.mark.parametrize("use_f0", [True, False])
def test_exported_fp32_graph_equals_the_pytorch_decoder(tmp_path, use_f0):
    from voiceapp.infer.onnx_decoder import OrtDecoder, export_fp32
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer

    torch.manual_seed(0)
    cfg = SynthConfig.preset("v2", 40000, use_f0, "tiny")
    dec = Synthesizer(cfg, with_posterior=False).eval().dec
    graph = export_fp32(dec, tmp_path / "dec.onnx", gin_channels=cfg.gin_channels)
    frames, hop, context = 173, dec.upsample, 8
    x = torch.randn(1, dec.conv_pre.in_channels, frames)
    g = torch.randn(1, cfg.gin_channels, 1)
    f0 = (180 + 40 * torch.sin(torch.arange(frames) / 9.0))[None] * (torch.arange(frames) % 40 > 8)
    with torch.inference_mode():
        if use_f0:
            expected = dec(x, f0, g=g, generator=torch.Generator().manual_seed(3))
        else:
            expected = dec(x, g=g)
    # tiles of at most 60 frames cut evenly (3 of 64 here), shapes the export never saw
    ort_dec = OrtDecoder(dec, graph, threads=1, tile_frames=60, context=context, even=True)
    got = ort_dec(x, f0 if use_f0 else None, g, torch.Generator().manual_seed(3))
    assert got.shape == expected.shape == (1, 1, frames * hop)
    inner = slice(context * hop, (frames - context) * hop)  # the ends see other zero padding (cropped in use)
    assert torch.max(torch.abs(got[..., inner] - expected[..., inner])) < 1e-4
    assert torch.max(torch.abs(expected)) > 1e-3  # not a silent comparison


def test_even_tiles_cover_the_input():
    from voiceapp.infer.tiles import decoder_tiles, even_core

    assert even_core(1100, 400) == 368 and even_core(400, 400) == 400 and even_core(401, 400) == 208
    assert even_core(5, 400) == 8

    class Dec:
        upsample = 4

    frames, tiles = decoder_tiles(Dec(), torch.zeros(1, 3, 1100), None, None, None, 400, 16, even=True)
    assert frames == 1100 and len(tiles) == 3 and all(t.shape[-1] == 368 + 32 for t, _ in tiles)


@pytest.mark.slow
def test_ort_conversion_equals_fp32_and_the_graph_is_cached(workspace, services, monkeypatch):
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice
    from voiceapp.services import Services

    make_voice(workspace, "o32")
    voice = load_voice("o32", services)
    x = harmonic(190, 5.0, 16000, vibrato_hz=4, vibrato_cents=80)
    base = dict(f0_method="pm", rms_mix_rate=1.0, index_rate=0.0, segment_center_s=4.0, segment_query_s=0.5,
                segment_max_s=4.5)  # two pieces

    reference = convert(x, 16000, voice, InferConfig(**base, precision="fp32"), services=services)
    ort = convert(x, 16000, voice, InferConfig(**base, precision="ort"), services=services)
    assert ort.segments == 2 and len(ort.audio) == len(reference.audio)
    assert len(_graphs(workspace)) == 1
    assert np.abs(ort.audio - reference.audio).max() < 1e-4
    other_seed = convert(x, 16000, voice, InferConfig(**base, precision="fp32", seed=1), services=services).audio
    assert np.abs(other_seed - reference.audio).max() > 100 * np.abs(ort.audio - reference.audio).max()

    # a new process (nothing loaded) finds the graph on disk: nothing is exported again
    monkeypatch.setattr(onnx_decoder, "export_fp32", lambda *a, **k: pytest.fail("exported again"))
    fresh = Services(workspace=workspace, device="cpu")
    again = convert(x, 16000, load_voice("o32", fresh), InferConfig(**base, precision="ort"), services=fresh)
    np.testing.assert_array_equal(again.audio, ort.audio)


def test_fp32_graph_is_rebuilt_when_the_model_file_changes_and_keeps_the_int8_one(workspace, monkeypatch):
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.services import Services
    from voiceapp.voices.rvc import export_voice_model
    from voiceapp.workspace import file_sha256, write_json_atomic

    path = make_voice(workspace, "changes")
    # an int8 graph of the same file contents (stands for a real one: it must survive the fp32 build)
    int8 = onnx_decoder.graph_path(workspace.models_dir, file_sha256(path))
    int8.parent.mkdir(parents=True)
    int8.write_bytes(b"int8 graph")
    write_json_atomic(int8.with_suffix(".json"), {"model": str(path.resolve()), "model_sha256": file_sha256(path)})
    x = harmonic(200, 1.5, 16000)
    cfg = InferConfig(f0_method="pm", index_rate=0.0, precision="ort")
    first_services = Services(workspace=workspace, device="cpu")
    convert(x, 16000, load_voice("changes", first_services), cfg, services=first_services)
    first = _graphs(workspace)
    assert len(first) == 1 and int8.is_file()

    syn = SynthConfig.preset("v2", 40000, True, "tiny")
    torch.manual_seed(1)  # other weights in the same file: the user retrained or replaced it
    export_voice_model(Synthesizer(syn).state_dict(), syn, path, epoch=2, step=2, embedder="fake", name="changes")
    services = Services(workspace=workspace, device="cpu")
    convert(x, 16000, load_voice("changes", services), cfg, services=services)
    second = _graphs(workspace)
    assert len(second) == 1 and second != first  # rebuilt, and the stale graph is gone ...
    assert not int8.exists()  # ... and so is the int8 graph of the old contents


def test_auto_picks_ort_on_avx2_and_avx512_without_fast_bf16(monkeypatch):
    from voiceapp.infer import speed

    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: False)
    for isa, expected in (("AVX2", "ort"), ("AVX-512", "ort"), ("older", "fp32"), ("unknown", "fp32")):
        monkeypatch.setattr(speed, "cpu_isa", lambda isa=isa: isa)
        assert speed.resolve_precision("auto", "cpu") == expected, isa
    monkeypatch.setattr(speed, "cpu_isa", lambda: "AVX2")
    assert speed.resolve_precision("auto", "cuda") == "fp32"
    assert speed.resolve_precision("fp32", "cpu") == "fp32" and speed.resolve_precision("ort", "cuda") == "ort"
    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: True)
    assert speed.resolve_precision("auto", "cpu") == "bf16"


def test_auto_falls_back_to_pytorch_when_onnxruntime_is_missing(workspace, services, monkeypatch, caplog):
    import builtins

    from voiceapp.infer import speed
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(speed, "cpu_isa", lambda: "AVX2")
    make_voice(workspace, "fb")
    voice = load_voice("fb", services)
    x = harmonic(200, 1.0, 16000)
    reference = convert(x, 16000, voice, InferConfig(f0_method="pm", precision="fp32"), services=services).audio
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with caplog.at_level(logging.INFO, logger="voiceapp.infer.speed"):
        got = convert(x, 16000, voice, InferConfig(f0_method="pm"), services=services).audio  # auto
    lines = _fallback_lines(caplog)
    assert len(lines) == 1 and "onnxruntime not installed" in lines[0] and "PyTorch float32" in lines[0]
    np.testing.assert_array_equal(got, reference)
    assert _graphs(workspace) == []


def test_failed_export_falls_back_with_one_line_and_leaves_no_graph(workspace, services, monkeypatch, caplog):
    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    make_voice(workspace, "broken")
    voice = load_voice("broken", services)

    def fail(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::something' to ONNX opset version 17 is not supported")

    monkeypatch.setattr(onnx_decoder, "export_fp32", fail)
    x = harmonic(200, 1.0, 16000)
    reference = convert(x, 16000, voice, InferConfig(f0_method="pm", precision="fp32"), services=services).audio
    with caplog.at_level(logging.WARNING, logger="voiceapp.infer.speed"):
        got = convert(x, 16000, voice, InferConfig(f0_method="pm", precision="ort"), services=services).audio
    lines = _fallback_lines(caplog)
    assert len(lines) == 1 and "RuntimeError" in lines[0] and "not supported" in lines[0]
    np.testing.assert_array_equal(got, reference)
    assert _graphs(workspace) == [] and not list((workspace.models_dir / "cache" / "decoders").glob("*.json"))
