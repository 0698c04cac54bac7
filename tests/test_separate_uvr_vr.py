"""UVR's VR-arch and Demucs families: the catalogue entries, UVR's band-split spectrogram, tiny random models of the
real architectures (a VR 5.1 CascadedNet `.pth` as UVR publishes it, a tiny HTDemucs `.th` saved the way Demucs
saves its checkpoints) separated end to end from the picker's name, the model-data lookup by UVR hash, the safe
Demucs loader refusing pickled code, corrupt files refused with a message naming them, and downloads from a local
fake source. Offline, CPU."""

from __future__ import annotations

import fractions
import hashlib
import pickle
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import local_server
from test_separate_uvr import FakeSource, add_model, install, pinned
from voiceapp.assets import uvr, uvr_files
from voiceapp.assets.uvr import DemucsParams, UvrFile, UvrModel, VrParams
from voiceapp.errors import InputError, VoiceAppError

TINY_VR = VrParams("4band_v3", "Instrumental", "Vocals", nout=8, nout_lstm=16)   # a VR 5.1 net, 1/8 of the width
SOURCES = ["drums", "bass", "other", "vocals"]
TINY_HTDEMUCS = dict(sources=SOURCES, audio_channels=2, samplerate=44100, segment=fractions.Fraction(39, 50),
                     channels=8, depth=2, nfft=512, t_layers=1, t_heads=2, t_hidden_scale=1.0, dconv_comp=2)


def tiny_vr_pth(path: Path, params: VrParams = TINY_VR, seed: int = 0) -> Path:
    """A random-weight VR net saved as UVR publishes its `.pth` files: a plain state dict."""
    import torch

    from voiceapp.separate.uvr_vr import build_vr_network, load_band_params

    torch.manual_seed(seed)
    net = build_vr_network(params, load_band_params(params.band_params)["bins"], params.arch_size or 0)
    torch.save(net.state_dict(), path)
    return path


TINY_HDEMUCS = dict(sources=SOURCES, audio_channels=2, samplerate=44100, segment=1, channels=8)


def tiny_demucs_th(folder: Path, seed: int = 0, klass_name: str = "HTDemucs") -> Path:
    """A random tiny HTDemucs (or HDemucs) saved as Demucs saves its checkpoints: {"klass": the class (pickled by
    reference as demucs.htdemucs.HTDemucs), "args", "kwargs", "state" (float16), "training_args"}; named
    <sig>-<sha256[:8]>.th."""
    import torch

    from voiceapp.separate.uvr_demucs import _demucs_classes

    kwargs = dict(TINY_HTDEMUCS if klass_name == "HTDemucs" else TINY_HDEMUCS)
    torch.manual_seed(seed)
    net = _demucs_classes()[klass_name](**kwargs)
    module_name = f"demucs.{klass_name.lower()}"
    demucs, sub = types.ModuleType("demucs"), types.ModuleType(module_name)
    klass = type(klass_name, (), {"__module__": module_name})
    setattr(sub, klass_name, klass)
    saved = {k: sys.modules.get(k) for k in ("demucs", module_name)}
    sys.modules.update({"demucs": demucs, module_name: sub})
    try:
        tmp = folder / f"tiny{seed}.tmp"
        torch.save({"klass": klass, "args": [], "kwargs": kwargs,
                    "state": {k: v.half() for k, v in net.state_dict().items()},
                    "training_args": {"dset": {"name": "musdb"}, "epochs": 3, "lr": np.float64(3e-4),
                                      "weights": np.array([1.0, 0.5], dtype=np.float32)}}, tmp)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    path = folder / f"{seed:08x}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.th"
    tmp.rename(path)
    return path


def demucs_file(path: Path) -> UvrFile:
    return UvrFile(path.name, f"http://127.0.0.1:1/{path.name}", sha256_prefix=path.stem.rsplit("-", 1)[-1])


def song(path: Path, seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * 3100 * t) for f in (220, 330)])
    audio = audio[:channels].astype(np.float32)
    sf.write(path, audio.T, rate, subtype="FLOAT")
    return audio


# --- the catalogue -----------------------------------------------------------------------------------------------

def test_catalogue_has_the_vr_and_demucs_families_with_their_facts(workspace):
    models = uvr.UVR_MODELS
    vr = {n: m for n, m in models.items() if m.family == "vr"}
    demucs = {n: m for n, m in models.items() if m.family == "demucs"}
    assert {"vr-1-hp", "vr-2-hp", "vr-5-hp-karaoke", "vr-6-hp-karaoke", "vr-deecho-dereverb", "vr-de-echo-normal",
            "vr-de-echo-aggressive", "vr-denoise"} <= set(vr)
    assert {"htdemucs", "htdemucs-ft-vocals", "htdemucs-6s", "hdemucs-mmi"} <= set(demucs)
    assert {m.purpose for m in vr.values()} == {"vocals", "karaoke", "dereverb"}
    for m in vr.values():
        assert m.vr is not None and m.model_file.name.endswith(".pth") and m.config_file is None
        assert m.model_file.uvr_hash is None or uvr.VR_MODEL_DATA[m.model_file.uvr_hash] == m.vr
    for m in demucs.values():
        assert m.licence.startswith("MIT") and "Meta" in m.licence
        assert all(f.kind == "demucs" and f.sha256_prefix == f.name[9:17] for f in m.files)
    assert models["htdemucs-ft-vocals"].model_file.sha256.startswith("f3cf25b2")
    assert uvr.VR_MODEL_DATA["0fb9249ffe4ffc38d7b16243f394c0ff"].primary_stem == "No Reverb"
    rows = {r["name"]: r for r in uvr.catalogue_rows(workspace)}
    assert rows["vr-5-hp-karaoke"]["purpose"] == "karaoke" and rows["vr-denoise"]["purpose"] == "dereverb"
    assert rows["htdemucs"]["family"] == "Demucs (.th)" and "MB" in rows["htdemucs"]["size"]
    assert rows["vr-1-hp"]["checksum"].startswith("no checksum")   # none on record for 1_HP-UVR: it says so
    assert rows["htdemucs"]["checksum"].startswith("sha256 prefix")
    assert rows["htdemucs-ft-vocals"]["checksum"].startswith("sha256/")


# --- the VR band-split spectrogram ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,v51", [("4band_v3", True), ("3band_44100_msb2", False), ("4band_v4_ms_fullband", True),
                                      ("1band_sr44100_hl1024", True)])
def test_band_split_spectrogram_inverts_to_the_signal(name, v51):
    from voiceapp.separate.uvr_vr import BandSplit, load_band_params

    split = BandSplit(load_band_params(name), v51=v51)
    t = np.arange(44100) / 44100
    wave = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 2500 * t)]).astype(np.float32)
    spec = split.spectrogram(wave)
    assert spec.shape[:2] == (2, split.p["bins"] + 1)
    back = split.waveform(spec)
    n = min(back.shape[1], wave.shape[1]) - 4096
    assert np.abs(back[:, 4096:n] - wave[:, 4096:n]).max() < 0.01, "bands cover the spectrum and invert exactly"


# --- separation end to end through load_separator ----------------------------------------------------------------

def test_tiny_vr_model_separates_from_the_picker_name_with_model_data_by_uvr_hash(workspace, monkeypatch, tmp_path,
                                                                                 small_torch_ops):
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    pth = tiny_vr_pth(tmp_path / "Tiny_VR.pth")
    entry = UvrModel("tiny-vr", "Tiny VR", "vocals", "vr", (pinned(pth),), "test", "test")   # no model data in it
    add_model(monkeypatch, entry)
    install(workspace, pth)
    with pytest.raises(InputError, match=r"Tiny_VR\.pth: no VR model data for this file \(UVR hash [0-9a-f]{32}\)"):
        load_separator("tiny-vr", workspace)
    monkeypatch.setitem(uvr.VR_MODEL_DATA, uvr_files.uvr_hash(pth), TINY_VR)   # UVR keys its model data by hash
    separator = load_separator("tiny-vr", workspace)
    assert separator.net.params == TINY_VR
    separator.context_s = 0.3
    mix = song(tmp_path / "song48k.wav", 1.4, 48000, 2)
    result = separate_file(tmp_path / "song48k.wav", tmp_path / "out", separator, SeparateConfig())
    vocals, rate = sf.read(result.vocals, always_2d=True)
    rest, _ = sf.read(result.instrumental, always_2d=True)
    assert rate == 48000 and vocals.shape == rest.shape == mix.T.shape
    assert np.isfinite(vocals).all() and 0 < np.abs(vocals).max() < 2
    np.testing.assert_allclose(vocals + rest, mix.T, atol=1e-5)


def test_vr_voice_stem_follows_the_model_data(workspace, monkeypatch, tmp_path, small_torch_ops):
    """A model whose primary stem is the voice (de-echo: "No Echo") writes mask * mix; a vocal remover
    (primary "Instrumental") writes (1 - mask) * mix: the two add up to UVR's band-limited mix."""
    from voiceapp.separate import load_separator

    pth = tiny_vr_pth(tmp_path / "tiny.pth")
    install(workspace, pth)
    deecho = replace(TINY_VR, primary_stem="No Echo", secondary_stem="Echo")
    add_model(monkeypatch, UvrModel("tiny-echo", "Tiny echo", "dereverb", "vr", (pinned(pth),), "t", "t", vr=deecho,
                                    voice_stems=("no echo",), stem_names=("dry", "echo")))
    add_model(monkeypatch, UvrModel("tiny-hp", "Tiny HP", "vocals", "vr", (pinned(pth),), "t", "t", vr=TINY_VR))
    rng, t = np.random.default_rng(1), np.arange(30000) / 44100
    # below 4band_v3's top (its last band stops at bin 383 of 481: 17.6 kHz; the VR mix is band-limited there)
    mix = sum(0.05 * np.sin(2 * np.pi * rng.uniform(50, 12000, (2, 1)) * t + rng.uniform(0, 6, (2, 1)))
              for _ in range(12)).astype(np.float32)
    dry = load_separator("tiny-echo", workspace).vocals(mix, 44100)
    vocals = load_separator("tiny-hp", workspace).vocals(mix, 44100)
    assert dry.shape == vocals.shape == mix.shape
    both = dry + vocals   # mask * X + (1 - mask) * X = the band-split mix
    inner = slice(4096, -4096)
    assert np.abs(both[:, inner] - mix[:, inner]).max() < 0.05 * np.abs(mix).max() + 0.02
    assert np.abs(dry - vocals).max() > 1e-4


@pytest.mark.parametrize("klass_name", ["HTDemucs", "HDemucs"])
def test_tiny_demucs_separates_from_the_picker_name(klass_name, workspace, monkeypatch, tmp_path, small_torch_ops):
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    th = tiny_demucs_th(tmp_path, klass_name=klass_name)
    add_model(monkeypatch, UvrModel("tiny-demucs", "Tiny Demucs", "vocals", "demucs", (demucs_file(th),), "MIT",
                                    "test", demucs=DemucsParams()))
    install(workspace, th)
    separator = load_separator("tiny-demucs", workspace)
    separator.context_s = 0.3
    mix = song(tmp_path / "mono22k.wav", 1.7, 22050, 1)
    result = separate_file(tmp_path / "mono22k.wav", tmp_path / "out", separator, SeparateConfig(chunk_s=1.0))
    vocals, rate = sf.read(result.vocals, always_2d=True)
    rest, _ = sf.read(result.instrumental, always_2d=True)
    assert rate == 22050 and vocals.shape == rest.shape == mix.T.shape
    assert np.isfinite(vocals).all() and np.abs(vocals).max() > 0
    np.testing.assert_allclose(vocals + rest, mix.T, atol=1e-5)


def test_demucs_bag_weights_pick_the_member_for_vocals(workspace, monkeypatch, tmp_path, small_torch_ops):
    from voiceapp.separate.uvr_demucs import DemucsNet

    a, b = tiny_demucs_th(tmp_path, seed=1), tiny_demucs_th(tmp_path, seed=2)
    only_a = DemucsParams(weights=((0.0, 0.0, 0.0, 1.0), (1.0, 1.0, 1.0, 0.0)))   # htdemucs_ft's shape of matrix
    model = UvrModel("bag", "Bag", "vocals", "demucs", (demucs_file(a), demucs_file(b)), "MIT", "t", demucs=only_a)
    mix = np.random.default_rng(2).standard_normal((2, 40000)).astype(np.float32) * 0.1
    bag = DemucsNet([a, b], model, only_a)
    calls = []
    monkeypatch.setattr(bag.nets[1], "forward", lambda x: calls.append(1))
    from_bag = bag(mix)["vocals"]
    alone = DemucsNet([a], replace(model, files=(demucs_file(a),), demucs=DemucsParams()), DemucsParams())(mix)
    np.testing.assert_allclose(from_bag, alone["vocals"], atol=1e-6)
    assert not calls, "a member with no weight on vocals is not run"


# --- safe loading and bad files ----------------------------------------------------------------------------------

class _Payload:
    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran():
    _Payload.ran = True
    return {}


def test_demucs_loader_never_runs_pickled_code_and_names_what_it_refused(tmp_path):
    import torch

    from voiceapp.assets.demucs_checkpoint import load_demucs_package

    evil = tmp_path / "evil.th"
    torch.save({"klass": None, "args": [], "kwargs": {}, "state": {}, "training_args": _Payload()}, evil)
    with pytest.raises(InputError) as err:
        load_demucs_package(evil)
    assert not _Payload.ran, "the payload's code never ran"
    assert str(evil) in str(err.value) and "_mark_ran" in str(err.value) and "download" in str(err.value)

    plain = tmp_path / "plain.th"
    with open(plain, "wb") as fh:                      # an old-style plain pickle: refused the same way
        pickle.dump({"klass": _Payload()}, fh)
    with pytest.raises(InputError, match="not a Demucs checkpoint Voiceapp can load safely"):
        load_demucs_package(plain)
    assert not _Payload.ran

    good = tiny_demucs_th(tmp_path)
    package = load_demucs_package(good)
    assert package["klass"] == "HTDemucs" and package["kwargs"]["segment"] == fractions.Fraction(39, 50)


def test_corrupt_vr_and_demucs_files_give_a_clear_message(workspace, monkeypatch, tmp_path, small_torch_ops):
    from voiceapp.separate import load_separator

    pth = tiny_vr_pth(tmp_path / "tiny.pth")
    add_model(monkeypatch, UvrModel("tiny-vr", "Tiny VR", "vocals", "vr", (UvrFile("tiny.pth", "x"),), "t", "t",
                                    vr=TINY_VR))
    bad = install(workspace, pth)
    bad.write_bytes(pth.read_bytes()[: pth.stat().st_size // 2])
    with pytest.raises(InputError) as err:
        load_separator("tiny-vr", workspace)
    assert str(bad) in str(err.value) and "does not load" in str(err.value) and "download" in str(err.value)

    install(workspace, pth)   # good weights, wrong model data: another width
    add_model(monkeypatch, replace(uvr.UVR_MODELS["tiny-vr"], vr=replace(TINY_VR, nout=16)))
    with pytest.raises(InputError, match=r"tiny\.pth: the weights do not fit a VR 5\.1 \(nout 16\) network"):
        load_separator("tiny-vr", workspace)

    th = tiny_demucs_th(tmp_path)
    add_model(monkeypatch, UvrModel("tiny-demucs", "Tiny Demucs", "vocals", "demucs", (UvrFile(th.name, "x"),), "t",
                                    "t", demucs=DemucsParams()))
    broken = install(workspace, th)
    broken.write_bytes(th.read_bytes()[:-5000])
    with pytest.raises(InputError) as err:
        load_separator("tiny-demucs", workspace)
    assert str(broken) in str(err.value) and "download" in str(err.value)


# --- downloads and import ----------------------------------------------------------------------------------------

def test_vr_and_demucs_downloads_from_a_fake_source_are_checked_and_placed_atomically(workspace, monkeypatch,
                                                                                      tmp_path):
    pth = tiny_vr_pth(tmp_path / "Tiny_VR.pth")
    th = tiny_demucs_th(tmp_path)
    vr_file = replace(pinned(pth), sha256=None)     # as for UVR's VR files: size and UVR hash on record
    add_model(monkeypatch, UvrModel("tiny-vr", "Tiny VR", "karaoke", "vr", (vr_file,), "t", "t", vr=TINY_VR))
    add_model(monkeypatch, UvrModel("tiny-demucs", "Tiny Demucs", "vocals", "demucs", (demucs_file(th),), "MIT", "t",
                                    demucs=DemucsParams()))
    source = FakeSource()
    source.files.update({pth.name: pth.read_bytes(), th.name: th.read_bytes()})
    source.faults.update({pth.name: ["corrupt"], th.name: ["truncate"]})
    with local_server(source.handler) as base:
        monkeypatch.setenv(uvr.MIRROR_ENV, f"{base}/models")
        assert uvr_files.download_uvr_model(workspace, "tiny-vr") == [workspace.uvr_models_dir / pth.name]
        assert uvr_files.download_uvr_model(workspace, "tiny-demucs") == [workspace.uvr_models_dir / th.name]
    assert (workspace.uvr_models_dir / pth.name).read_bytes() == pth.read_bytes()
    assert (workspace.uvr_models_dir / th.name).read_bytes() == th.read_bytes()
    assert [g for g in source.gets if g[0] == pth.name][1][1] is None, "the corrupt VR file was fetched again"
    assert any(rng for name, rng in source.gets if name == th.name), "the cut transfer resumed"
    assert not list(workspace.downloads_dir.glob("**/*"))
    assert uvr.uvr_status(workspace, "tiny-vr").usable and uvr.uvr_status(workspace, "tiny-demucs").usable

    # a Demucs file whose content does not match the sha256 prefix in its name never lands
    (workspace.uvr_models_dir / th.name).unlink()
    source.files[th.name] = th.read_bytes()[:-10] + b"\0" * 10
    with local_server(source.handler) as base, pytest.raises(VoiceAppError) as err:
        uvr_files.download_uvr_model(workspace, "tiny-demucs", mirror=f"{base}/models")
    assert th.name in str(err.value) and "does not start with" in str(err.value)
    assert not (workspace.uvr_models_dir / th.name).exists()


def test_import_recognises_vr_and_demucs_files_by_their_checksums(workspace, monkeypatch, tmp_path):
    pth = tiny_vr_pth(tmp_path / "Tiny_VR.pth")
    th = tiny_demucs_th(tmp_path)
    add_model(monkeypatch, UvrModel("tiny-vr", "Tiny VR", "vocals", "vr", (replace(pinned(pth), sha256=None),), "t",
                                    "t", vr=TINY_VR))
    add_model(monkeypatch, UvrModel("tiny-demucs", "Tiny Demucs", "vocals", "demucs", (demucs_file(th),), "MIT", "t",
                                    demucs=DemucsParams()))
    renamed = tmp_path / "mine"
    renamed.mkdir()
    (renamed / "my vr.pth").write_bytes(pth.read_bytes())
    (renamed / "demucs copy.th").write_bytes(th.read_bytes())
    placed = uvr_files.import_uvr_files(workspace, [renamed / "my vr.pth", renamed / "demucs copy.th"])
    assert [(m.name, p.name) for m, p in placed] == [("tiny-vr", pth.name), ("tiny-demucs", th.name)]
    assert (renamed / "my vr.pth").read_bytes() == pth.read_bytes(), "the user's file is left as it was"


def test_vr_5_0_files_get_their_capacity_class_from_their_size(tmp_path, small_torch_ops):
    """UVR sizes a VR 5.0 net by its file (nearest of the known sizes in KiB); the weights then fit that class."""
    from voiceapp.separate.uvr_vr import VrNet, arch_size_for

    for kib, expected in ((123_800, 123812), (123_830, 123821), (31_000, 31191), (537_230, 537227)):
        sparse = tmp_path / f"{kib}.pth"
        with open(sparse, "wb") as fh:
            fh.truncate(kib * 1024)
        assert arch_size_for(sparse) == expected
    params = VrParams("1band_sr44100_hl1024", "Instrumental", "Vocals")   # no arch size: from the file
    pth = tiny_vr_pth(tmp_path / "sp.pth", replace(params, arch_size=31191))
    assert arch_size_for(pth) == 31191, "a 31191-class state dict is itself about 31,191 KiB"
    model = UvrModel("sp", "SP", "vocals", "vr", (UvrFile(pth.name, "x"),), "t", "t", vr=params)
    net = VrNet(pth, model, params)
    assert type(net.net).__name__ == "CascadedASPPNet" and net.net.offset == 128


def test_cancel_stops_vr_and_demucs_between_their_windows(tmp_path, monkeypatch, small_torch_ops):
    from voiceapp.errors import Cancelled
    from voiceapp.progress import CancelToken
    from voiceapp.separate.uvr_demucs import DemucsNet
    from voiceapp.separate.uvr_vr import VrNet

    pth = tiny_vr_pth(tmp_path / "tiny.pth")
    model = UvrModel("v", "V", "vocals", "vr", (UvrFile(pth.name, "x"),), "t", "t", vr=TINY_VR)
    vr = VrNet(pth, model, TINY_VR, window_size=256, batch_windows=1)   # 128-frame (1.4 s) steps
    th = tiny_demucs_th(tmp_path)
    demucs = DemucsNet([th], replace(model, family="demucs", vr=None), DemucsParams())
    mix = np.random.default_rng(3).standard_normal((2, 3 * 44100)).astype(np.float32) * 0.1
    for net, module in ((vr.net, "predict_mask"), (demucs.nets[0], "forward")):
        token, calls, run = CancelToken(), [], getattr(net, module)

        def counting(*a, _run=run, _token=token, _calls=calls):
            _calls.append(1)
            _token.set()
            return _run(*a)

        monkeypatch.setattr(net, module, counting)
        with pytest.raises(Cancelled):
            (vr if net is vr.net else demucs)(mix, token)
        assert len(calls) == 1, "the model stopped before its next window"
