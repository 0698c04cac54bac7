"""RVC voice model files (voiceapp.voices.rvc): export -> reload with weights_only -> infer; community files; refusing code-carrying pickles."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.nets.discriminator import MultiPeriodDiscriminator
from voiceapp.nets.synthesizer import SynthConfig, Synthesizer, parse_sample_rate
from voiceapp.train.pretrained import load_pretrained
from voiceapp.voices.file import read_voice_info
from voiceapp.voices.rvc import export_voice_model, infer_config, load_voice_model

VARIANTS = [f"{v}_{r}_{f}" for v in ("v1", "v2") for r in ("32k", "40k", "48k") for f in ("f0", "nof0")]


@pytest.fixture(autouse=True)
def _fast_small_convs(small_torch_ops):
    yield


class NotAModel:
    """A class that a malicious pickle could reference; loading must never import or run it."""

    def __reduce__(self):
        return (print, ("this ran code",))


def _tiny_state(cfg: SynthConfig) -> dict:
    torch.manual_seed(0)
    return Synthesizer(cfg).state_dict()


def _export_tiny(tmp_path: Path, use_f0: bool = True, **kwargs) -> tuple[Path, SynthConfig, dict]:
    cfg = SynthConfig.tiny(use_f0=use_f0)
    state = _tiny_state(cfg)
    path = export_voice_model(state, cfg, tmp_path / "voices" / "alice" / "alice.pth", epoch=12, step=340,
                              embedder="fake-768", name="alice", author="me", **kwargs)
    return path, cfg, state


def test_export_writes_the_community_format(tmp_path):
    path, cfg, state = _export_tiny(tmp_path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert set(ckpt) >= {"weight", "config", "info", "sr", "f0", "version", "epoch", "step", "embedder_model",
                         "speakers_id", "author", "vocoder", "model_hash", "creation_date", "model_name", "voiceapp"}
    assert ckpt["sr"] == "40k" and ckpt["f0"] == 1 and ckpt["version"] == "v2" and ckpt["info"] == "12epoch"
    assert ckpt["config"] == cfg.to_rvc_list() and len(ckpt["config"]) == 18
    assert ckpt["vocoder"] == "HiFi-GAN" and ckpt["epoch"] == 12 and ckpt["step"] == 340
    expected_hash = hashlib.sha256(f"alice-12-340-40k-v2-{cfg.to_rvc_list()}".encode()).hexdigest()
    assert ckpt["model_hash"] == expected_hash
    assert ckpt["voiceapp"]["size"] == "tiny" and ckpt["voiceapp"]["rvc_compatible"] is False
    weight = ckpt["weight"]
    assert not any(k.startswith("enc_q") for k in weight)
    assert set(weight) == {k for k in state if not k.startswith("enc_q")}
    assert all(v.dtype == torch.float16 for v in weight.values())
    assert not list(path.parent.glob(".*tmp*"))  # atomic write left no temporary


def test_export_reload_infer_has_frames_times_hop(tmp_path):
    path, cfg, state = _export_tiny(tmp_path)
    voice = load_voice_model(path)
    assert voice.sample_rate == 40000 and voice.use_f0 and voice.version == "v2" and voice.embedder == "fake-768"
    assert voice.n_speakers == cfg.spk_embed_dim and voice.net.enc_q is None and not voice.net.training
    frames = 37
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((frames, cfg.content_dim)).astype(np.float32)
    f0 = np.where(np.arange(frames) < 25, 220.0, 0.0).astype(np.float32)
    audio = voice.infer(feats, f0, seed=1)
    assert audio.dtype == np.float32 and audio.shape == (frames * 400,)
    assert np.array_equal(audio, voice.infer(feats, f0, seed=1))
    # the fp16 round trip keeps the weights
    for key in ("dec.ups.0.weight_v", "enc_p.emb_phone.weight", "flow.flows.0.enc.in_layers.0.weight_g"):
        assert torch.allclose(voice.net.state_dict()[key], state[key].float(), atol=2e-3, rtol=1e-2)
    with pytest.raises(InputError, match="Speaker id"):
        voice.infer(feats, f0, speaker_id=99)
    with pytest.raises(InputError, match="768-wide"):
        voice.infer(feats[:, :10], f0)


def test_no_f0_model_round_trip(tmp_path):
    path, cfg, _ = _export_tiny(tmp_path, use_f0=False)
    assert torch.load(path, weights_only=True)["f0"] == 0
    voice = load_voice_model(path)
    assert not voice.use_f0
    assert voice.infer(np.zeros((20, cfg.content_dim), np.float32)).shape == (20 * 400,)


@pytest.mark.parametrize("variant", VARIANTS)
def test_exported_names_and_shapes_equal_the_reference(variant, reference, tmp_path):
    version, rate, f0 = variant.split("_")
    cfg = SynthConfig.preset(version, parse_sample_rate(rate), f0 == "f0")
    ref = reference["synthesizers"][variant]
    state = {k: torch.empty(shape, dtype=torch.float16) for k, shape in ref["full_generator"].items()}
    path = export_voice_model(state, cfg, tmp_path / f"{variant}.pth", epoch=1, step=1, embedder="contentvec",
                              name=variant)
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    assert {k: list(v.shape) for k, v in ckpt["weight"].items()} == ref["small"]
    assert ckpt["config"] == ref["config"] and ckpt["version"] == version and ckpt["f0"] == int(f0 == "f0")
    assert ckpt["sr"] == rate and ckpt["voiceapp"]["rvc_compatible"] is True


def test_export_refuses_weights_that_do_not_fit(tmp_path):
    cfg = SynthConfig.tiny()
    state = _tiny_state(SynthConfig.tiny(use_f0=False))
    with pytest.raises(ConfigError, match="missing"):
        export_voice_model(state, cfg, tmp_path / "x.pth", epoch=1, step=1, embedder="fake", name="x")
    assert not (tmp_path / "x.pth").exists()


def test_community_v1_file_with_string_rate_and_no_f0_or_version_loads(reference, tmp_path):
    """An RVC-WebUI-era v1 40k file: sr "40k", no 'f0'/'version' keys (-> f0 1, v1), speaker rows from emb_g."""
    ref = reference["synthesizers"]["v1_40k_f0"]
    gen = torch.Generator().manual_seed(0)
    weight = collections.OrderedDict(
        (k, (torch.randn(shape, generator=gen) * 0.02).half()) for k, shape in ref["small"].items())
    weight["emb_g.weight"] = (torch.randn(3, 256, generator=gen) * 0.02).half()  # 3 speakers; config still says 109
    path = tmp_path / "community.pth"
    torch.save({"weight": weight, "config": ref["config"], "info": "200epoch", "sr": "40k"}, path)
    voice = load_voice_model(path)
    assert voice.version == "v1" and voice.use_f0 and voice.sample_rate == 40000 and voice.n_speakers == 3
    assert voice.config.spk_embed_dim == 3 and voice.content_dim == 256 and voice.embedder == "contentvec"
    frames = 12
    audio = voice.infer(np.zeros((frames, 256), np.float32), np.full(frames, 200.0, np.float32), speaker_id=2, seed=0)
    assert audio.shape == (frames * 400,) and np.isfinite(audio).all()
    meta = read_voice_info(path)
    assert meta.epochs == 200 and meta.version == "v1" and meta.sample_rate == 40000
    assert meta.use_f0 and meta.size == "full" and meta.rvc_compatible and meta.speakers == 3


@pytest.mark.parametrize("sr", [40000, "40000", "40k"])
def test_applio_style_file_loads(tmp_path, sr):
    """Applio: int/str sample rate, bool f0, parametrization-style weight-norm keys."""
    cfg = SynthConfig.tiny()
    state = {k.replace(".weight_g", ".parametrizations.weight.original0")
              .replace(".weight_v", ".parametrizations.weight.original1"): v.half()
             for k, v in _tiny_state(cfg).items() if not k.startswith("enc_q")}
    path = tmp_path / "applio.pth"
    torch.save({"weight": state, "config": cfg.to_rvc_list(), "sr": sr, "f0": True, "version": "v2",
                "vocoder": "HiFi-GAN", "embedder_model": "spin-v2", "epoch": 5, "step": 50}, path)
    voice = load_voice_model(path)
    assert voice.sample_rate == 40000 and voice.use_f0 and voice.embedder == "spin-v2"
    assert read_voice_info(path).epochs == 5


def test_refinegan_and_mismatched_files_are_refused(tmp_path):
    cfg = SynthConfig.tiny()
    weight = {k: v.half() for k, v in _tiny_state(cfg).items() if not k.startswith("enc_q")}
    path = tmp_path / "refine.pth"
    torch.save({"weight": weight, "config": cfg.to_rvc_list(), "sr": 40000, "vocoder": "RefineGAN"}, path)
    with pytest.raises(InputError, match="RefineGAN"):
        load_voice_model(path)
    bad = dict(weight)
    bad["dec.conv_pre.weight"] = torch.zeros(3, 3, 3, dtype=torch.float16)
    torch.save({"weight": bad, "config": cfg.to_rvc_list(), "sr": "40k", "version": "v2"}, path)
    with pytest.raises(InputError, match="do not fit"):
        load_voice_model(path)
    torch.save({"something": 1}, path)
    with pytest.raises(InputError, match="no 'weight'"):
        load_voice_model(path)
    with pytest.raises(MissingArtifactError):
        load_voice_model(tmp_path / "missing.pth")
    (tmp_path / "torn.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable"):
        load_voice_model(tmp_path / "torn.pth")


def test_pickle_that_needs_code_is_refused(tmp_path, capsys):
    cfg = SynthConfig.tiny()
    weight = {k: v.half() for k, v in _tiny_state(cfg).items() if not k.startswith("enc_q")}
    path = tmp_path / "evil.pth"
    torch.save({"weight": weight, "config": cfg.to_rvc_list(), "sr": "40k", "payload": NotAModel()}, path)
    with pytest.raises(InputError, match="run code"):
        load_voice_model(path)
    with pytest.raises(InputError, match="run code"):
        read_voice_info(path)
    assert "this ran code" not in capsys.readouterr().out


@pytest.mark.slow
def test_full_generator_checkpoint_loads_by_shape(tmp_path):
    """G_*.pth / pretrained f0G: {'model': full state dict incl. enc_q}, no config; layout found from shapes."""
    for variant in ("v2_48k_f0", "v1_32k_f0", "v2_32k_nof0"):
        version, rate, f0 = variant.split("_")
        cfg = SynthConfig.preset(version, parse_sample_rate(rate), f0 == "f0")
        with torch.device("meta"):
            assert infer_config(Synthesizer(cfg).state_dict()) == cfg
    cfg = SynthConfig.preset("v2", 48000, size="light")
    state = {k: torch.zeros(v.shape, dtype=torch.float16) for k, v in Synthesizer(cfg).state_dict().items()}
    path = tmp_path / "G_2333333.pth"
    torch.save({"model": state, "iteration": 7, "learning_rate": 1e-4}, path)
    voice = load_voice_model(path)
    assert voice.sample_rate == 48000 and voice.hop_length == 480 and voice.version == "v2"
    assert voice.size == "light" and voice.config.upsample_initial_channel == cfg.upsample_initial_channel


def test_load_pretrained_strict_partial_and_width_message(tmp_path):
    disc = MultiPeriodDiscriminator("v2", "tiny")
    torch.save({"model": disc.state_dict(), "iteration": 3}, tmp_path / "D.pth")
    fresh = MultiPeriodDiscriminator("v2", "tiny")
    report = load_pretrained(fresh, tmp_path / "D.pth")
    assert not report.skipped
    assert torch.equal(fresh.state_dict()["discriminators.1.convs.0.weight_v"],
                       disc.state_dict()["discriminators.1.convs.0.weight_v"])
    with pytest.raises(InputError, match="do not fit"):
        load_pretrained(MultiPeriodDiscriminator("v1", "tiny"), tmp_path / "D.pth")

    torch.save({"model": _tiny_state(SynthConfig.tiny())}, tmp_path / "G.pth")
    whisper_width = Synthesizer(SynthConfig.tiny(content_dim=384))
    with pytest.raises(InputError, match="768-wide content features"):
        load_pretrained(whisper_width, tmp_path / "G.pth")
    narrower = Synthesizer(SynthConfig.tiny(content_dim=384))
    report = load_pretrained(narrower, tmp_path / "G.pth", partial=True)
    assert "enc_p.emb_phone.weight" in report.skipped and "flow.flows.0.pre.weight" in report.loaded


def test_light_model_exports_and_loads_but_is_marked_voiceapp_only(tmp_path):
    cfg = SynthConfig.preset("v2", 32000, size="light", content_dim=384)
    path = export_voice_model(Synthesizer(cfg).state_dict(), cfg, tmp_path / "light.pth", epoch=3, step=30,
                              embedder="whisper-tiny", name="light")
    meta = read_voice_info(path)
    assert meta.size == "light" and meta.rvc_compatible is False and meta.encoder == "whisper-tiny"
    assert meta.sample_rate == 32000 and meta.content_dim == 384 and meta.epochs == 3
    voice = load_voice_model(path)
    assert voice.size == "light" and voice.config.hidden_channels == cfg.hidden_channels
    assert voice.infer(np.zeros((9, 384), np.float32), np.full(9, 150.0, np.float32)).shape == (9 * 320,)
