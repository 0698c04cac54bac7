"""UVR models in the Separate tab: the catalogue, downloads from a local fake source, offline import, tiny models of
the real architectures (MDX-Net ONNX, MDX23C and BS-RoFormer checkpoints + yaml) separated end to end through
`load_separator`, and corrupt files refused with a message that names the file and the next step. Offline, CPU."""

from __future__ import annotations

import hashlib
import http.server
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import local_server
from voiceapp.assets import uvr, uvr_files
from voiceapp.assets.uvr import MdxParams, UvrFile, UvrModel
from voiceapp.errors import InputError, MissingArtifactError, VoiceAppError

RATE = 44100


# --- tiny models -------------------------------------------------------------------------------------------------

TINY_MDX = MdxParams(n_fft=2048, dim_f=1024, dim_t_exp=3, compensate=1.0, primary_stem="Vocals")
HIGH_FROM_BIN = 48          # the tiny MDX net passes bins >= 48 (> 1 kHz at 21.5 Hz a bin): the "vocals" are the highs


def tiny_mdx_onnx(path: Path, params: MdxParams = TINY_MDX) -> Path:
    """An MDX-Net-shaped ONNX graph: [batch, 4, dim_f, 2**dim_t_exp] -> same, keeping the bins above 1 kHz."""
    import torch

    class HighPassMask(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            mask = torch.zeros(1, 1, params.dim_f, 1)
            mask[:, :, HIGH_FROM_BIN:] = 1.0
            self.register_buffer("mask", mask)
            self.conv = torch.nn.Conv2d(4, 4, 1, bias=False)   # an identity 1x1 conv: a real kernel in the graph
            with torch.no_grad():
                self.conv.weight.copy_(torch.eye(4)[:, :, None, None])

        def forward(self, x):
            return self.conv(x) * self.mask

    dims = (1, 4, params.dim_f, 2 ** params.dim_t_exp)
    torch.onnx.export(HighPassMask(), torch.zeros(dims), str(path), input_names=["input"], output_names=["output"],
                      dynamo=False, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return path


MDX23C_YAML = """\
audio:
  chunk_size: 4032
  dim_f: 128
  dim_t: 64
  hop_length: 64
  n_fft: 256
  num_channels: 2
  sample_rate: 44100
model:
  act: gelu
  bottleneck_factor: 2
  growth: 4
  norm: InstanceNorm
  num_blocks_per_scale: 1
  num_channels: 8
  num_scales: 2
  num_subbands: 2
  scale:
  - 2
  - 2
training:
  instruments:
  - Vocals
  - Instrumental
  target_instrument: null
inference:
  dim_t: 64
  num_overlap: 2
"""

BS_ROFORMER_YAML = """\
audio:
  chunk_size: 4096
  dim_f: 64
  dim_t: 65
  hop_length: 64
  n_fft: 256
  num_channels: 2
  sample_rate: 44100
model:
  dim: 16
  depth: 1
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  freqs_per_bands: !!python/tuple
    - 32
    - 32
    - 65
  dim_head: 8
  heads: 2
  attn_dropout: 0.0
  ff_dropout: 0.0
  flash_attn: false
  dim_freqs_in: 129
  stft_n_fft: 256
  stft_hop_length: 64
  stft_win_length: 256
  stft_normalized: false
  mask_estimator_depth: 1
  multi_stft_resolutions_window_sizes: !!python/tuple
  - 256
  multi_stft_hop_size: 64
training:
  instruments:
  - Vocals
  - Instrumental
  target_instrument: Vocals
inference:
  dim_t: 65
  num_overlap: 2
"""

MEL_ROFORMER_YAML = (BS_ROFORMER_YAML
                     .replace("  freqs_per_bands: !!python/tuple\n    - 32\n    - 32\n    - 65\n",
                              "  num_bands: 8\n  sample_rate: 44100\n")
                     .replace("target_instrument: Vocals", "target_instrument: null")
                     .replace("num_stems: 1", "num_stems: 2"))   # both instruments come out
TINY_YAML = {"mdx23c": MDX23C_YAML, "bs_roformer": BS_ROFORMER_YAML, "mel_band_roformer": MEL_ROFORMER_YAML,
             "bs_roformer_mono": BS_ROFORMER_YAML.replace("stereo: true", "stereo: false")
                                                 .replace("num_channels: 2", "num_channels: 1")}


def tiny_checkpoint(folder: Path, stem: str, yaml_text: str) -> tuple[Path, Path]:
    """A random-weight MDX23C or BS-RoFormer checkpoint (plain state dict, as published) and its yaml."""
    import torch

    from voiceapp.separate.uvr import _build_network

    config = folder / f"{stem}.yaml"
    config.write_text(yaml_text)
    torch.manual_seed(0)
    net, _ = _build_network(uvr_files.read_uvr_config(config), config)
    ckpt = folder / f"{stem}.ckpt"
    torch.save(net.state_dict(), ckpt)
    return ckpt, config


def _kind_of(config: Path) -> str:
    from voiceapp.separate.uvr import _build_network

    return _build_network(uvr_files.read_uvr_config(config), config)[1]


def pinned(path: Path, url: str = "") -> UvrFile:
    data = path.read_bytes()
    return UvrFile(path.name, url or f"http://127.0.0.1:1/{path.name}", len(data), hashlib.sha256(data).hexdigest(),
                   hashlib.md5(data[-uvr.UVR_HASH_TAIL_BYTES:]).hexdigest())


def add_model(monkeypatch, model: UvrModel) -> UvrModel:
    monkeypatch.setitem(uvr.UVR_MODELS, model.name, model)
    return model


def mdx_entry(path: Path, name: str = "tiny-mdx", **kw) -> UvrModel:
    return UvrModel(name, "Tiny MDX", kw.pop("purpose", "vocals"), "mdx", (pinned(path),), "test", "a test model",
                    kw.pop("mdx", TINY_MDX), **kw)


def install(ws, src: Path) -> Path:
    ws.uvr_models_dir.mkdir(parents=True, exist_ok=True)
    dest = ws.uvr_models_dir / src.name
    dest.write_bytes(src.read_bytes())
    return dest


def stereo_song(path: Path, seconds: float = 2.5, rate: int = RATE) -> tuple[Path, np.ndarray, np.ndarray]:
    """Left: 3 kHz "voice" over 200 Hz "music"; right: 5 kHz over 300 Hz. Returns (file, voice, music)."""
    t = np.arange(int(seconds * rate)) / rate
    voice = np.stack([0.3 * np.sin(2 * np.pi * 3000 * t), 0.25 * np.sin(2 * np.pi * 5000 * t)]).astype(np.float32)
    music = np.stack([0.3 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 300 * t)]).astype(np.float32)
    sf.write(path, (voice + music).T, rate, subtype="FLOAT")
    return path, voice, music


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


# --- the catalogue and the picker --------------------------------------------------------------------------------

def test_catalogue_groups_the_main_uvr_models_by_purpose_with_their_facts(workspace):
    rows = uvr.catalogue_rows(workspace)
    by_purpose = {p: [r["name"] for r in rows if r["purpose"] == p] for p in uvr.PURPOSES}
    assert {"kim-vocal-2", "uvr-mdx-net-inst-hq-3", "bs-roformer-1297", "mdx23c-instvoc-hq"} <= set(by_purpose["vocals"])
    assert {"uvr-mdxnet-kara-2", "mel-roformer-karaoke"} <= set(by_purpose["karaoke"])
    assert by_purpose["dereverb"]
    assert [r["purpose"] for r in rows] == sorted((r["purpose"] for r in rows), key=list(uvr.PURPOSES).index)
    for row in rows:
        assert row["size"] and row["licence"] and row["state"] == "missing" and row["on_disk"] is False
    kim = uvr.UVR_MODELS["kim-vocal-2"]
    assert kim.size == 66_759_214 and kim.model_file.sha256 and kim.mdx.n_fft == 7680
    for model in uvr.UVR_MODELS.values():   # every model family here has an engine; mdxc models ship a yaml
        assert model.family in ("mdx", "mdxc", "vr", "demucs")
        assert (model.config_file is not None) == (model.family == "mdxc")
        assert (model.mdx is not None) == (model.family == "mdx") and (model.vr is not None) == (model.family == "vr")
        assert (model.demucs is not None) == (model.family == "demucs")


def test_picker_reads_the_registry_and_marks_what_is_on_disk(workspace, monkeypatch, tmp_path):
    from voiceapp.separate import list_separators
    from voiceapp.ui.separate_tab import uvr_choices, uvr_table

    model = add_model(monkeypatch, mdx_entry(tiny_mdx_onnx(tmp_path / "tiny.onnx")))
    assert "tiny-mdx" not in list_separators(workspace)
    labels = dict((v, k) for k, v in uvr_choices(workspace))
    assert set(labels) == set(uvr.UVR_MODELS)
    assert "Kim Vocal 2" in labels["kim-vocal-2"] and "66.8 MB" in labels["kim-vocal-2"]
    assert "not downloaded" in labels["tiny-mdx"]
    install(workspace, tmp_path / "tiny.onnx")
    labels = dict((v, k) for k, v in uvr_choices(workspace))
    assert "on disk" in labels["tiny-mdx"]
    assert list_separators(workspace)[-1] == "tiny-mdx"
    table = uvr_table(workspace)
    for title in uvr.PURPOSES.values():
        assert title in table
    assert model.title in table and "on disk" in table


# --- downloads and import ----------------------------------------------------------------------------------------

class FakeSource:
    """Serves files by name under /models/, with Range support; `faults[name]`: "corrupt" or "truncate" once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = {}
        self.gets: list[tuple[str, str | None]] = []
        source = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                name = self.path.split("/models/", 1)[-1]
                if name not in source.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, rng = source.files[name], self.headers.get("Range")
                source.gets.append((name, rng))
                fault = source.faults.get(name, []).pop(0) if source.faults.get(name) else None
                start = int(re.match(r"bytes=(\d+)-", rng).group(1)) if rng else 0
                body = data[start:]
                if fault == "corrupt":
                    body = body[:-64] + bytes(b ^ 0xFF for b in body[-64:])
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if fault == "truncate" else body)
                if fault == "truncate":
                    self.close_connection = True

        self.handler = Handler


def test_download_from_a_mirror_resumes_checks_and_places_atomically(workspace, monkeypatch, tmp_path):
    onnx = tiny_mdx_onnx(tmp_path / "tiny.onnx")
    add_model(monkeypatch, mdx_entry(onnx))
    source = FakeSource()
    source.files["tiny.onnx"] = onnx.read_bytes()
    source.faults["tiny.onnx"] = ["truncate", "corrupt"]
    seen = []
    with local_server(source.handler) as base:
        monkeypatch.setenv(uvr.MIRROR_ENV, f"{base}/models")
        paths = uvr_files.download_uvr_model(workspace, "tiny-mdx", progress=lambda f, m: seen.append((f, m)))
    assert paths == [workspace.uvr_models_dir / "tiny.onnx"]
    assert paths[0].read_bytes() == onnx.read_bytes()
    assert any(rng for _, rng in source.gets), "the broken transfer was resumed with a Range request"
    assert len([g for g in source.gets if g[1] is None]) == 2, "the corrupt file was downloaded again"
    assert seen[-1][0] == 1.0 and any("MB" in m for _, m in seen)
    assert not (workspace.downloads_dir / "uvr-tiny-mdx").exists()
    assert uvr.uvr_status(workspace, "tiny-mdx").usable


def test_download_that_stays_bad_leaves_nothing_and_says_what_to_do(workspace, monkeypatch, tmp_path):
    onnx = tiny_mdx_onnx(tmp_path / "tiny.onnx")
    add_model(monkeypatch, mdx_entry(onnx))
    source = FakeSource()
    source.files["tiny.onnx"] = onnx.read_bytes()
    source.faults["tiny.onnx"] = ["corrupt", "corrupt"]
    with local_server(source.handler) as base, pytest.raises(VoiceAppError) as err:
        uvr_files.download_uvr_model(workspace, "tiny-mdx", mirror=f"{base}/models")
    message = str(err.value)
    assert "tiny.onnx" in message and "sha256" in message and "import" in message and uvr.MIRROR_ENV in message
    assert not (workspace.uvr_models_dir / "tiny.onnx").exists()
    assert not list(workspace.downloads_dir.glob("**/*.part"))


def test_import_recognises_a_file_by_checksum_and_refuses_unknown_or_damaged_files(workspace, monkeypatch, tmp_path):
    onnx = tiny_mdx_onnx(tmp_path / "tiny.onnx")
    add_model(monkeypatch, mdx_entry(onnx))
    renamed = tmp_path / "downloads" / "my copy.onnx"
    renamed.parent.mkdir()
    renamed.write_bytes(onnx.read_bytes())
    placed = uvr_files.import_uvr_files(workspace, [renamed])
    assert placed == [(uvr.UVR_MODELS["tiny-mdx"], workspace.uvr_models_dir / "tiny.onnx")]
    assert renamed.read_bytes() == onnx.read_bytes(), "the user's file is left as it was"

    stranger = tmp_path / "stranger.onnx"
    stranger.write_bytes(b"\x08" * 200)
    with pytest.raises(InputError, match=r"stranger\.onnx is not a model file Voiceapp knows"):
        uvr_files.import_uvr_files(workspace, [stranger])

    damaged = tmp_path / "tiny.onnx.bad" / "tiny.onnx"   # right name, damaged content
    damaged.parent.mkdir()
    data = bytearray(onnx.read_bytes())
    data[-40:] = b"\0" * 40
    damaged.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"tiny\.onnx does not match Tiny MDX's tiny\.onnx.*Download it again"):
        uvr_files.import_uvr_files(workspace, [damaged])
    assert (workspace.uvr_models_dir / "tiny.onnx").read_bytes() == onnx.read_bytes()


def test_assets_cli_lists_downloads_and_imports_uvr_models(workspace, monkeypatch, tmp_path, capsys):
    from voiceapp import cli

    onnx = tiny_mdx_onnx(tmp_path / "tiny.onnx")
    add_model(monkeypatch, mdx_entry(onnx))
    assert cli.main(["assets", "list", "--root", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    assert "kim-vocal-2" in out and "Karaoke" in out and "tiny-mdx" in out
    source = FakeSource()
    source.files["tiny.onnx"] = onnx.read_bytes()
    with local_server(source.handler) as base:
        monkeypatch.setenv(uvr.MIRROR_ENV, f"{base}/models")
        assert cli.main(["assets", "download", "tiny-mdx", "--root", str(workspace.root)]) == 0
    assert (workspace.uvr_models_dir / "tiny.onnx").exists()
    (workspace.uvr_models_dir / "tiny.onnx").unlink()
    assert cli.main(["assets", "import", str(onnx), "--root", str(workspace.root)]) == 0
    assert (workspace.uvr_models_dir / "tiny.onnx").exists()


# --- separation end to end through load_separator ----------------------------------------------------------------

def test_tiny_mdx_onnx_separates_a_song_end_to_end(workspace, monkeypatch, tmp_path, one_torch_thread):
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    install(workspace, tiny_mdx_onnx(tmp_path / "tiny.onnx"))
    add_model(monkeypatch, mdx_entry(tmp_path / "tiny.onnx"))
    song, voice, music = stereo_song(tmp_path / "song.wav", seconds=3.0)
    separator = load_separator("tiny-mdx", workspace, "cpu")
    result = separate_file(song, tmp_path / "out", separator, SeparateConfig(chunk_s=1.0))
    vocals, rate = sf.read(result.vocals, always_2d=True)
    inst, _ = sf.read(result.instrumental, always_2d=True)
    mix, _ = sf.read(song, always_2d=True)
    assert rate == RATE and vocals.shape == mix.shape == inst.shape
    np.testing.assert_allclose(vocals + inst, mix, atol=1e-5)
    edge = slice(RATE // 10, -RATE // 10)   # the song's own start and end are silence-padded by the model
    for ch in (0, 1):   # each channel keeps its own "voice": the L/R and re/im packing is right
        assert corr(vocals.T[ch, edge], voice[ch, edge]) > 0.99
        assert corr(inst.T[ch, edge], music[ch, edge]) > 0.99
    # 1 s chunks with crossfades give the same result as one window over the whole song
    whole = separate_file(song, tmp_path / "whole", separator, SeparateConfig(chunk_s=30.0))
    np.testing.assert_allclose(vocals, sf.read(whole.vocals, always_2d=True)[0], atol=2e-3)


@pytest.mark.parametrize("kind", ["mdx23c", "bs_roformer", "mel_band_roformer", "bs_roformer_mono"])
def test_tiny_random_checkpoints_of_real_architectures_separate_end_to_end(kind, workspace, monkeypatch, tmp_path,
                                                                           small_torch_ops):
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    ckpt, config = tiny_checkpoint(tmp_path, f"tiny_{kind}", TINY_YAML[kind])
    assert _kind_of(config) == kind.removesuffix("_mono")
    add_model(monkeypatch, UvrModel(f"tiny-{kind}", f"Tiny {kind}", "karaoke", "mdxc", (pinned(ckpt), pinned(config)),
                                    "test", "test", stem_names=("lead_vocals", "backing")))
    for f in (ckpt, config):
        install(workspace, f)
    song = tmp_path / "mono48k.flac"
    t = np.arange(int(1.3 * 48000)) / 48000
    sf.write(song, 0.4 * np.sin(2 * np.pi * 440 * t), 48000, subtype="PCM_24")
    separator = load_separator(f"tiny-{kind}", workspace, "cpu")
    separator.context_s = 0.3   # (3 s for real models) less padding for the tiny test networks to run over
    result = separate_file(song, tmp_path / "out", separator, SeparateConfig(output_format="flac"))
    assert result.vocals.name == "lead_vocals.flac" and result.instrumental.name == "backing.flac"
    lead, rate = sf.read(result.vocals, always_2d=True)
    rest, _ = sf.read(result.instrumental, always_2d=True)
    mix, _ = sf.read(song, always_2d=True)
    assert rate == 48000 and lead.shape == mix.shape == (len(t), 1)
    assert np.isfinite(lead).all() and np.abs(lead).max() > 0
    np.testing.assert_allclose(lead + rest, mix, atol=1e-4)


def test_separate_audio_and_the_cli_take_uvr_models(workspace, monkeypatch, tmp_path, one_torch_thread):
    from voiceapp import cli
    from voiceapp.separate import load_separator, separate_audio

    install(workspace, tiny_mdx_onnx(tmp_path / "tiny.onnx"))
    add_model(monkeypatch, mdx_entry(tmp_path / "tiny.onnx"))
    song, voice, _ = stereo_song(tmp_path / "song.wav", seconds=1.5)
    mix = sf.read(song, always_2d=True)[0].T.astype(np.float32)
    vocals, inst = separate_audio(mix, RATE, load_separator("tiny-mdx", workspace))
    assert vocals.shape == mix.shape and corr(vocals[:, 4410:-4410], voice[:, 4410:-4410]) > 0.99
    out = tmp_path / "separated"
    assert cli.main(["separate", str(song), "--out", str(out), "--model", "tiny-mdx",
                     "--root", str(workspace.root)]) == 0
    assert (out / "song" / "vocals.wav").exists() and (out / "song" / "instrumental.wav").exists()


def test_karaoke_model_writes_lead_vocals_and_backing(workspace, monkeypatch, tmp_path, one_torch_thread):
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    install(workspace, tiny_mdx_onnx(tmp_path / "tiny.onnx"))
    backing_primary = replace(TINY_MDX, primary_stem="Instrumental", compensate=1.0)
    add_model(monkeypatch, mdx_entry(tmp_path / "tiny.onnx", name="tiny-kara", purpose="karaoke",
                                     mdx=backing_primary, stem_names=("lead_vocals", "backing")))
    song, voice, music = stereo_song(tmp_path / "song.wav", seconds=1.5)
    result = separate_file(song, tmp_path / "out", load_separator("tiny-kara", workspace), SeparateConfig())
    assert result.vocals.name == "lead_vocals.wav" and result.instrumental.name == "backing.wav"
    lead = sf.read(result.vocals, always_2d=True)[0].T
    # the network's output (the highs) is the backing here, so the lead is the mix minus it: the lows
    assert corr(lead[:, 4410:-4410], music[:, 4410:-4410]) > 0.99


# --- bad model files ----------------------------------------------------------------------------------------------

def test_a_model_that_is_not_downloaded_says_how_to_get_it(workspace):
    from voiceapp.separate import load_separator

    with pytest.raises(MissingArtifactError, match=r"Kim Vocal 2 is not installed.*assets download kim-vocal-2"):
        load_separator("kim-vocal-2", workspace)


def test_corrupt_model_files_give_a_clear_message(workspace, monkeypatch, tmp_path, one_torch_thread):
    from voiceapp.separate import load_separator

    onnx = tiny_mdx_onnx(tmp_path / "tiny.onnx")
    bad = install(workspace, onnx)
    bad.write_bytes(b"\0" * bad.stat().st_size)   # same size, garbage inside (a size check alone passes it)
    add_model(monkeypatch, replace(mdx_entry(onnx), files=(replace(pinned(onnx), sha256=None, uvr_hash=None),)))
    with pytest.raises(InputError) as err:
        load_separator("tiny-mdx", workspace)
    assert str(bad) in str(err.value) and "download" in str(err.value) and "ONNX" in str(err.value)

    ckpt, config = tiny_checkpoint(tmp_path, "tiny_bs", BS_ROFORMER_YAML)
    add_model(monkeypatch, UvrModel("tiny-bs", "Tiny BS", "vocals", "mdxc",
                                    (UvrFile(ckpt.name, "x"), UvrFile(config.name, "x")), "test", "test"))
    install(workspace, config)
    truncated = install(workspace, ckpt)
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(InputError) as err:
        load_separator("tiny-bs", workspace)
    assert str(truncated) in str(err.value) and "does not load" in str(err.value) and "download" in str(err.value)

    install(workspace, ckpt)
    (workspace.uvr_models_dir / config.name).write_text(MDX23C_YAML)   # a config of another network
    with pytest.raises(InputError, match=r"weights do not fit tiny_bs\.yaml"):
        load_separator("tiny-bs", workspace)

    (workspace.uvr_models_dir / config.name).write_text("audio: [unclosed")
    with pytest.raises(InputError, match=r"tiny_bs\.yaml: not a readable model config"):
        load_separator("tiny-bs", workspace)


# --- the Separate tab ---------------------------------------------------------------------------------------------

def test_separate_tab_downloads_imports_and_separates_with_a_uvr_model(services, monkeypatch, tmp_path,
                                                                         one_torch_thread):
    import gradio as gr

    from voiceapp.ui import separate_tab
    from voiceapp.ui.app import build_app

    assert isinstance(build_app(services), gr.Blocks)
    ws = services.workspace
    onnx = tiny_mdx_onnx(tmp_path / "tiny.onnx")
    add_model(monkeypatch, mdx_entry(onnx))
    with pytest.raises(gr.Error, match="Pick a UVR model"):
        separate_tab.download_uvr_ui(services, "dsp", "")
    song, _, _ = stereo_song(ws.root / "song.wav", seconds=1.0)
    with pytest.raises(gr.Error, match="Tiny MDX is not installed"):
        separate_tab.separate_songs(services, [str(song)], "", "tiny-mdx", "wav")

    source = FakeSource()
    source.files["tiny.onnx"] = onnx.read_bytes()
    with local_server(source.handler) as base:
        message, table, picker = separate_tab.download_uvr_ui(services, "tiny-mdx", f"{base}/models")
    assert "Downloaded **Tiny MDX**" in message and picker["value"] == "tiny-mdx"
    assert ("UVR vocals / instrumental: Tiny MDX (MDX-Net, "
            f"{onnx.stat().st_size / 1e6:,.1f} MB, on disk)", "tiny-mdx") in picker["choices"]
    assert "dsp" in picker["choices"] and "on disk" in table["value"]
    summary, _, results, vocals, instrumental, downloads, _, _ = separate_tab.separate_songs(
        services, [str(song)], "", "tiny-mdx", "wav")
    assert vocals["value"].endswith("vocals.wav") and instrumental["value"].endswith("instrumental.wav")
    assert "song.wav" in summary

    (ws.uvr_models_dir / "tiny.onnx").unlink()
    message, _, picker = separate_tab.import_uvr_ui(services, [str(onnx)])
    assert "Tiny MDX** is ready" in message and picker["value"] == "tiny-mdx"
    with pytest.raises(gr.Error, match="not a model file Voiceapp knows"):
        separate_tab.import_uvr_ui(services, [str(song)])


def test_cancel_stops_between_model_windows_and_writes_nothing(workspace, monkeypatch, tmp_path, one_torch_thread):
    from voiceapp.errors import Cancelled
    from voiceapp.progress import CancelToken
    from voiceapp.separate import SeparateConfig, load_separator, separate_file

    install(workspace, tiny_mdx_onnx(tmp_path / "tiny.onnx"))
    add_model(monkeypatch, mdx_entry(tmp_path / "tiny.onnx"))
    separator = load_separator("tiny-mdx", workspace)
    song, _, _ = stereo_song(tmp_path / "song.wav", seconds=2.0)
    token = CancelToken()
    calls = []
    run = separator.net._run

    def counting(waves):
        calls.append(1)
        if len(calls) == 2:
            token.set()
        return run(waves)

    monkeypatch.setattr(separator.net, "_run", counting)
    with pytest.raises(Cancelled):
        separate_file(song, tmp_path / "out", separator, SeparateConfig(), cancel=token)
    assert len(calls) == 2, "the model stopped at the next of its own windows"
    assert not list((tmp_path / "out").glob("*.wav"))


def test_mdx_spectrogram_packing_matches_audio_separators(workspace, monkeypatch, tmp_path, one_torch_thread):
    """Real MDX-Net files expect UVR's exact layout: compare with audio-separator's own STFT helper."""
    import logging

    import torch
    from audio_separator.separator.uvr_lib_v5.stft import STFT

    from voiceapp.separate.uvr import MdxNet

    model = mdx_entry(tiny_mdx_onnx(tmp_path / "tiny.onnx"))
    net = MdxNet(tmp_path / "tiny.onnx", model)
    waves = np.random.default_rng(0).standard_normal((2, 2, net.window_samples)).astype(np.float32)
    theirs = STFT(logging.getLogger("test"), TINY_MDX.n_fft, TINY_MDX.hop_length, TINY_MDX.dim_f, "cpu")
    expected = theirs(torch.from_numpy(waves)).numpy()
    ours = net.spectrogram(waves)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(net.waveform(ours), theirs.inverse(torch.from_numpy(expected)).numpy(), atol=1e-5)
