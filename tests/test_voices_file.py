"""Voice files of every engine (voiceapp.voices.file): Voiceapp's own .safetensors round trip, tampering,
VoiceInfo for .pth and .safetensors, and the store listing and resolving both."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from voiceapp.errors import ConfigError, InputError, MissingArtifactError
from voiceapp.voices import store
from voiceapp.voices.file import load_voice_tensors, read_voice_info, save_voice_tensors


def own_meta(**overrides) -> dict:
    meta = {"engine": "instant", "sample_rate": 24000, "encoder": "whisper-tiny", "f0": True, "steps": 0,
            "epochs": 0, "minutes_of_data": 3.5, "version": "1", "config": {"content_dim": 384, "hop": 240}}
    return meta | overrides


def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"frames": torch.randn(50, 384, generator=g), "f0": torch.rand(50, generator=g).to(torch.bfloat16),
            "count": torch.tensor([50], dtype=torch.int64)}


def save(path: Path, **overrides) -> Path:
    return save_voice_tensors(path, tensors(), own_meta(**overrides))


def header_of(path: Path) -> tuple[int, dict]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return n, json.loads(raw[8:8 + n])


def rewrite_header(path: Path, edit) -> None:
    raw = path.read_bytes()
    n, header = header_of(path)
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def test_save_load_round_trip_and_info(tmp_path):
    path = save(tmp_path / "voices" / "ann" / "ann.safetensors")
    loaded, meta = load_voice_tensors(path)
    assert set(loaded) == set(tensors()) and all(torch.equal(loaded[k], v) for k, v in tensors().items())
    assert meta == {"format": 1, **own_meta()}
    assert not [p for p in path.parent.iterdir() if p != path]  # atomic: no temporary left
    info = read_voice_info(path)
    assert (info.engine, info.name, info.sample_rate, info.use_f0, info.encoder) == ("instant", "ann", 24000, True,
                                                                                    "whisper-tiny")
    assert (info.content_dim, info.minutes_of_data, info.speakers, info.file_bytes) == (384, 3.5, 1,
                                                                                     path.stat().st_size)
    assert info.apps == ("Voiceapp",) and not info.rvc_compatible


def test_save_refuses_incomplete_metadata(tmp_path):
    with pytest.raises(ConfigError, match="lacks"):
        save_voice_tensors(tmp_path / "x.safetensors", tensors(), {"engine": "quick"})
    with pytest.raises(ConfigError, match="engine"):
        save(tmp_path / "x.safetensors", engine="rvc")
    with pytest.raises(ConfigError, match=".safetensors"):
        save(tmp_path / "x.pth")
    assert not list(tmp_path.iterdir())


def test_tampered_or_foreign_files_are_refused_with_the_file_name(tmp_path):
    path = save(tmp_path / "bob.safetensors")
    rewrite_header(path, lambda h: h["__metadata__"].update(
        voiceapp=h["__metadata__"]["voiceapp"].replace('"sample_rate": 24000', '"sample_rate": 48000')))
    with pytest.raises(InputError, match="bob.safetensors.*changed"):
        load_voice_tensors(path)

    path = save(tmp_path / "bob.safetensors")
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # one weight byte
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="changed"):
        load_voice_tensors(path)

    path = save(tmp_path / "bob.safetensors")
    rewrite_header(path, lambda h: h["__metadata__"].update(voiceapp="{not json"))
    for reader in (load_voice_tensors, read_voice_info):
        with pytest.raises(InputError, match="bob.safetensors has unreadable Voiceapp metadata"):
            reader(path)

    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="other.safetensors is a safetensors file but not a Voiceapp voice"):
        read_voice_info(tmp_path / "other.safetensors")
    (tmp_path / "torn.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(InputError, match="torn.safetensors is not a readable safetensors file"):
        load_voice_tensors(tmp_path / "torn.safetensors")
    with pytest.raises(MissingArtifactError):
        load_voice_tensors(tmp_path / "missing.safetensors")


def test_pth_info_lists_the_community_apps(tmp_path):
    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.voices.rvc import export_voice_model

    cfg = SynthConfig.tiny()
    path = export_voice_model(Synthesizer(cfg).state_dict(), cfg, tmp_path / "t.pth", epoch=2, step=9,
                              embedder="fake", name="t")
    info = read_voice_info(path)
    assert (info.engine, info.epochs, info.steps, info.size, info.minutes_of_data) == ("rvc", 2, 9, "tiny", None)
    assert info.apps == ("Voiceapp",)  # tiny preset: not loadable by RVC WebUI
    full = type(info)(**{**info.__dict__, "rvc_compatible": True})
    assert full.apps == ("Voiceapp", "RVC WebUI", "Applio")


def test_store_lists_and_resolves_both_formats(workspace, tmp_path):
    save(workspace.voice_dir("quick_one") / "quick_one.safetensors", engine="quick", steps=300)
    (workspace.voice_dir("quick_one") / "quick_one.index").write_bytes(b"IwFl" + bytes(60))
    assert [(m.name, m.path.suffix, m.index.name) for m in store.list_models(workspace)] == [
        ("quick_one", ".safetensors", "quick_one.index")]
    assert store.resolve_voice_path("quick_one", workspace).suffix == ".safetensors"
    assert [p.name for p in store.voice_files(workspace)] == ["quick_one.safetensors"]
    info = store.model_info(workspace, "quick_one", with_hash=False)
    assert (info["engine"], info["step"], info["apps"], info["index_present"]) == ("quick", 300, ["Voiceapp"], True)
    assert "quick engine" in store.describe_model(store.resolve_voice_path("quick_one", workspace))
    from voiceapp.voices.rvc import load_voice_model

    with pytest.raises(InputError, match="rvc"):
        load_voice_model(store.resolve_voice_path("quick_one", workspace))


def test_one_index_rule(workspace):
    folder = workspace.voice_dir("eve")
    folder.mkdir(parents=True)
    voice = folder / "eve.pth"
    voice.write_bytes(b"x")
    assert store.find_index(voice, workspace) is None
    (folder / "trained_IVF4_Flat_nprobe_1_eve_v2.index").write_bytes(b"x")
    assert store.find_index(voice, workspace) is None  # RVC's empty trained index is never used
    (folder / "some.index").write_bytes(b"x")
    assert store.find_index(voice, workspace) == folder / "some.index"  # the only usable one
    (folder / "other.index").write_bytes(b"x")
    assert store.find_index(voice, workspace) is None  # ambiguous: none rather than a guess
    (folder / "added_IVF4_Flat_nprobe_1_eve_v2.index").write_bytes(b"x")
    assert store.find_index(voice, workspace).name == "added_IVF4_Flat_nprobe_1_eve_v2.index"
    (folder / "eve.index").write_bytes(b"x")
    assert store.find_index(voice, workspace).name == "eve.index"
    assert store.list_models(workspace)[0].index == store.find_index(voice, workspace)  # Models tab == Inference
