"""Conversions on more than one core (`InferConfig.workers`, pieces.convert_overlapped): the content features of
the next piece are computed while a piece is synthesized and the decoder's tiles run one per worker thread. The
output equals the one-thread conversion; a stop, a failing encoder and progress behave as on the serial path, and
no worker thread outlives the conversion."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from helpers import harmonic, make_voice

# four pieces (cut every ~2 s), each decoded in several tiles (PyTorch: 2 s tiles; ONNX Runtime: <= 4 s, so the
# 2.5 s pieces take one or two)
PIECES = dict(f0_method="pm", index_rate=0.0, segment_center_s=2.0, segment_query_s=0.3, segment_max_s=2.4,
              segment_pad_s=0.3, rms_mix_rate=1.0)


def _speech(seconds=6.5):
    x = harmonic(180, seconds, 16000, vibrato_hz=5, vibrato_cents=60)
    x[int(2.1 * 16000):int(2.3 * 16000)] *= 0.01  # quiet spots for the cuts
    x[int(4.1 * 16000):int(4.3 * 16000)] *= 0.01
    return x


def _worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("voiceapp-convert")]


@pytest.fixture
def voice(workspace, services):
    from voiceapp.infer.pipeline import load_voice

    make_voice(workspace, "par")
    return load_voice("par", services)


@pytest.mark.parametrize("precision", ["fp32", "ort"])
def test_two_workers_give_the_one_thread_output(voice, services, one_torch_thread, precision):
    from voiceapp.infer.pipeline import InferConfig, convert

    if precision == "ort":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    x = _speech()
    serial = convert(x, 16000, voice, InferConfig(**PIECES, precision=precision, workers=1), services=services)
    torch.set_num_threads(2)  # what a user with two cores has (workers=2 also where pytest got one core)
    both = convert(x, 16000, voice, InferConfig(**PIECES, precision=precision, workers=2), services=services)
    assert serial.segments == both.segments >= 3
    assert "workers" not in serial.timings and both.timings["workers"] == 2.0
    assert both.timings["pieces"] > 0 and both.timings["cpu_synthesis"] > 0 and both.timings["cpu_features"] > 0
    assert "overlapped in 2 threads" in both.summary() and "overlapped" not in serial.summary()
    assert torch.get_num_threads() == 2  # restored after the conversion (it ran single-threaded ops inside)
    assert np.abs(both.audio - serial.audio).max() <= 1e-6
    assert np.abs(serial.audio).max() > 1e-2  # not a silent comparison
    other_seed = convert(x, 16000, voice, InferConfig(**PIECES, precision=precision, seed=1), services=services)
    assert np.abs(other_seed.audio - serial.audio).max() > 1e-3  # the seed's noise is drawn in piece order
    assert not _worker_threads()


def test_tiles_are_decoded_in_the_worker_threads(voice, services, one_torch_thread, monkeypatch):
    from voiceapp.infer import tiles
    from voiceapp.infer.pipeline import InferConfig, convert

    seen = []  # (thread, tiles of that decoder call)
    real = tiles.submit_tiles

    def spy(decode, items):
        def where(tile):
            seen.append((threading.current_thread().name, len(items)))
            return decode(tile)
        return real(where, items)

    import voiceapp.infer.speed as speed

    monkeypatch.setattr(speed, "submit_tiles", spy)
    convert(_speech(), 16000, voice, InferConfig(**PIECES, precision="fp32", workers=2), services=services)
    assert {name for name, _ in seen} == {"voiceapp-convert_0", "voiceapp-convert_1"}
    seen.clear()
    convert(_speech(), 16000, voice, InferConfig(**PIECES, precision="fp32", workers=1), services=services)
    assert seen and {name for name, _ in seen} == {threading.current_thread().name}


def _encoder_of(services, voice):
    from voiceapp.infer.models import encoder_name_for, load_encoder_cached

    return load_encoder_cached(encoder_name_for(voice, None), voice, services)


def test_a_stop_during_an_overlapped_conversion_stops_it_and_leaves_no_thread(voice, services, one_torch_thread,
                                                                              monkeypatch):
    from voiceapp.errors import Cancelled
    from voiceapp.infer.pipeline import InferConfig, convert
    from voiceapp.progress import CancelToken

    cancel, calls = CancelToken(), []
    encoder = _encoder_of(services, voice)
    real = encoder.encode

    def encode(audio):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:  # the second piece's features, in a worker while the first piece is synthesized
            cancel.set()
        return real(audio)

    monkeypatch.setattr(encoder, "encode", encode)
    progress = []
    with pytest.raises(Cancelled):
        convert(_speech(), 16000, voice, InferConfig(**PIECES, precision="fp32", workers=2), services=services,
                cancel=cancel, progress=lambda f, m: progress.append(f))
    assert len(calls) == 2 and all(name.startswith("voiceapp-convert") for name in calls)  # no third piece began
    assert max(progress) < 1.0
    assert not _worker_threads() and torch.get_num_threads() == 1


def test_an_encoder_failing_in_a_worker_raises_what_the_serial_path_raises(voice, services, one_torch_thread,
                                                                          monkeypatch):
    from voiceapp.errors import InputError
    from voiceapp.infer.pipeline import InferConfig, convert

    encoder = _encoder_of(services, voice)

    def broken(audio):
        raise InputError("The content encoder 'fake' cannot read this audio; re-download it.")

    monkeypatch.setattr(encoder, "encode", broken)
    errors = []
    for workers in (1, 2):
        with pytest.raises(InputError) as info:
            convert(_speech(), 16000, voice, InferConfig(**PIECES, precision="fp32", workers=workers),
                    services=services)
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "re-download" in errors[0]
    assert not _worker_threads()


def test_progress_reaches_one_in_order(voice, services, one_torch_thread):
    from voiceapp.infer.pipeline import InferConfig, convert

    seen = []
    convert(_speech(), 16000, voice, InferConfig(**PIECES, precision="fp32", workers=2), services=services,
            progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    pieces = [m for _, m in seen if m.startswith("piece")]
    assert len(pieces) >= 3 and pieces == [f"piece {i + 1}/{len(pieces)}" for i in range(len(pieces))]


def test_workers_follow_torch_threads_and_the_cores(voice, services, one_torch_thread, monkeypatch):
    import os

    from voiceapp.infer.pipeline import conversion_workers
    from voiceapp.infer.speed import for_precision

    fast = for_precision(voice, "fp32")
    assert conversion_workers(fast) == 1  # one torch thread: the serial path
    torch.set_num_threads(4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert conversion_workers(fast) == 2 and conversion_workers(fast, 3) == 3
    assert conversion_workers(voice) == 1  # the model as loaded (RVC's own decoder) decodes no tiles in threads


def test_tiles_for_workers_come_in_multiples_of_them():
    from voiceapp.infer.tiles import decoder_tiles, even_core

    assert even_core(1100, 400) == 368 and even_core(1100, 400, multiple=2) == 280  # 3 tiles alone, 4 for two
    assert even_core(800, 400, multiple=2) == 400 and even_core(5, 400, multiple=2) == 8

    class Dec:
        upsample = 4

    frames, tiles = decoder_tiles(Dec(), torch.zeros(1, 3, 1100), None, None, None, 400, 16, True, 2)
    assert frames == 1100 and len(tiles) == 4 and all(t.shape[-1] == 280 + 32 for t, _ in tiles)


@pytest.mark.parametrize("precision", ["fp32", "ort"])
def test_a_model_without_pitch_gives_the_one_thread_output_too(workspace, services, one_torch_thread, precision):
    from voiceapp.infer.pipeline import InferConfig, convert, load_voice

    if precision == "ort":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    make_voice(workspace, "nof0", use_f0=False)
    voice = load_voice("nof0", services)
    cfg = dict(PIECES, f0_method=None, precision=precision)
    serial = convert(_speech(), 16000, voice, InferConfig(**cfg, workers=1), services=services)
    both = convert(_speech(), 16000, voice, InferConfig(**cfg, workers=2), services=services)
    assert serial.segments == both.segments >= 3 and both.timings["workers"] == 2.0
    assert np.abs(both.audio - serial.audio).max() <= 1e-6 and np.abs(serial.audio).max() > 1e-2
    assert not _worker_threads()


def test_ort_decoder_keeps_one_session_per_thread_count(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from concurrent.futures import ThreadPoolExecutor

    from voiceapp.infer import onnx_decoder
    from voiceapp.infer.tiles import tiles_in
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.progress import NEVER

    torch.manual_seed(0)
    cfg = SynthConfig.preset("v2", 40000, True, "tiny")
    dec = Synthesizer(cfg, with_posterior=False).eval().dec
    graph = onnx_decoder.export_fp32(dec, tmp_path / "dec.onnx", gin_channels=cfg.gin_channels)
    built = []
    real = onnx_decoder.session
    monkeypatch.setattr(onnx_decoder, "session", lambda path, threads: built.append(threads) or real(path, threads))
    ort_dec = onnx_decoder.OrtDecoder(dec, graph, threads=2, tile_frames=60, context=8, even=True)
    x, g = torch.randn(1, dec.conv_pre.in_channels, 150), torch.randn(1, cfg.gin_channels, 1)
    f0 = torch.full((1, 150), 180.0)
    outputs = []
    for _ in range(2):  # a serial caller (2 intra-op threads), then tiles side by side (one thread each), twice
        outputs.append(ort_dec(x, f0, g, torch.Generator().manual_seed(3)))
        with ThreadPoolExecutor(2) as pool, tiles_in(pool, NEVER, 2):
            outputs.append(ort_dec(x, f0, g, torch.Generator().manual_seed(3)))
    assert built == [1, 2]  # built once each, kept
    inner = slice(8 * dec.upsample, -8 * dec.upsample)
    assert all(torch.max(torch.abs(y[..., inner] - outputs[0][..., inner])) <= 1e-6 for y in outputs)
