"""Plain helpers for the tests (fixtures live in conftest.py): generated audio, fake datasets and experiments,
and voice files. Nothing here downloads; everything writes under the paths it is given.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def sine(f0_hz: float = 220.0, seconds: float = 1.0, sample_rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * f0_hz * t)).astype(np.float32)


def harmonic(f0_hz: float = 220.0, seconds: float = 1.0, sample_rate: int = 16_000, n_harmonics: int = 8,
             amplitude: float = 0.5, vibrato_hz: float = 0.0, vibrato_cents: float = 0.0) -> np.ndarray:
    """A voice-like harmonic tone (1/k amplitudes), optionally with vibrato."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f = f0_hz * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    out = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * f0_hz < sample_rate / 2)
    out = out / np.max(np.abs(out)) * amplitude
    return out.astype(np.float32)


def phrase_with_gaps(sample_rate: int = 40_000, tone_s: float = 2.0, gap_s: float = 0.8, n: int = 3) -> np.ndarray:
    """n harmonic tones of `tone_s` separated by silent gaps of `gap_s`."""
    parts = []
    for i in range(n):
        parts.append(harmonic(180 + 40 * i, tone_s, sample_rate))
        if i < n - 1:
            parts.append(np.zeros(int(gap_s * sample_rate), dtype=np.float32))
    return np.concatenate(parts)


def song_stems(sample_rate: int = 22_050, seconds: float = 6.0, seed: int = 0, stereo: bool = True,
               voice_f0_hz: float = 220.0) -> tuple[np.ndarray, np.ndarray]:
    """A generated "song": (vocals, accompaniment), each (2, samples) when `stereo` else (samples,).

    Vocals: sung notes (harmonic, 5.5 Hz vibrato, short gaps), centred. Accompaniment: a drum-like pattern
    (decaying kick every 0.5 s, noise hats every 0.25 s) panned left and a three-note chord pad panned right,
    each with a few ms of inter-channel delay as in real stereo mixes.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    notes = [1.0, 9 / 8, 5 / 4, 4 / 3, 3 / 2, 4 / 3, 5 / 4, 9 / 8]
    note_s = 0.75
    voice = np.zeros(n, dtype=np.float32)
    for i, ratio in enumerate(notes * int(np.ceil(seconds / note_s / len(notes)))):
        start, length = int(i * note_s * sample_rate), int((note_s - 0.1) * sample_rate)
        if start >= n:
            break
        tone = harmonic(voice_f0_hz * ratio, length / sample_rate, sample_rate, n_harmonics=12, amplitude=0.3,
                        vibrato_hz=5.5, vibrato_cents=40)
        tone = tone * np.minimum(1.0, np.minimum(np.arange(len(tone)), np.arange(len(tone))[::-1]) / (0.02 * sample_rate))
        voice[start:start + len(tone)] = tone[: n - start]
    drums = np.zeros(n, dtype=np.float32)
    for beat in np.arange(0, seconds, 0.25):
        i = int(beat * sample_rate)
        m = min(n - i, int(0.15 * sample_rate))
        env = np.exp(-np.arange(m) / (0.02 * sample_rate))
        hat = rng.standard_normal(m) * env * 0.12
        if beat % 0.5 == 0:
            hat += 0.4 * np.sin(2 * np.pi * 55 * np.arange(m) / sample_rate) * np.exp(-np.arange(m) / (0.05 * sample_rate))
        drums[i:i + m] += hat.astype(np.float32)
    pad = sum(harmonic(f, seconds, sample_rate, n_harmonics=4, amplitude=0.06) for f in (130.8, 164.8, 196.0))
    pad = np.asarray(pad, dtype=np.float32)[:n]
    if not stereo:
        return voice, (drums + pad).astype(np.float32)
    shift = int(0.003 * sample_rate)
    delayed = lambda x: np.concatenate([np.zeros(shift, np.float32), x[:-shift]])  # noqa: E731
    acc = np.stack([0.9 * drums + 0.3 * delayed(pad), 0.4 * delayed(drums) + 0.9 * pad]).astype(np.float32)
    return np.stack([voice, voice]), acc


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio (dB) of `estimate` against `reference`, over all channels."""
    error = np.sum((np.asarray(reference, np.float64) - estimate) ** 2)
    return float(10 * np.log10(np.sum(np.asarray(reference, np.float64) ** 2) / max(error, 1e-20)))


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = audio.T if audio.ndim == 2 else audio
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path


# --- datasets, feature experiments ---------------------------------------------------------------------


def make_dataset(workspace, name="ds", n=4, extra=None):
    """A dataset as the Dataset stage leaves it: clips/ at 40 kHz, clips_16k/, manifest.json."""
    ds = workspace.dataset(name)
    clips = {f"k_{i:05d}": harmonic(140 + 30 * i, 0.8 + 0.1 * i, 16000) for i in range(n)}
    clips.update(extra or {})
    for stem, audio in clips.items():
        write_wav(ds.clips_16k_dir / f"{stem}.wav", audio, 16000)
        write_wav(ds.clips_dir / f"{stem}.wav", np.repeat(audio, 5)[::2], 40000)
    ds.manifest_path.write_text(json.dumps({"name": name, "sample_rate": 40000, "sources": {}}))
    return ds, clips


def coarse_from_hz(f0_hz: np.ndarray) -> np.ndarray:
    mel = 1127.0 * np.log1p(f0_hz / 700.0)
    lo, hi = 1127.0 * np.log1p(50 / 700.0), 1127.0 * np.log1p(1100 / 700.0)
    mel = np.where(mel > 0, (mel - lo) * 254 / (hi - lo) + 1, mel)
    return np.rint(np.clip(mel, 1, 255)).astype(np.int64)


def make_feature_experiment(workspace, name: str = "alice", lengths_s=(0.6, 0.8, 1.0, 0.7, 0.9, 1.1),
                            sample_rate: int = 40000, dim: int = 16, version: str = "v2", encoder: str = "fake-16",
                            extra_short_s: tuple[float, ...] = ()) -> object:
    """Clips under datasets/<name>/clips and features under logs/<name>/features; returns the ExperimentDir."""
    ds = workspace.dataset(name)
    exp = workspace.experiment(name)
    feats = exp.features_dir
    rng = np.random.default_rng(0)
    clips = {}
    for i, seconds in enumerate(tuple(lengths_s) + tuple(extra_short_s)):
        stem = f"clip_{i:02d}"
        f0 = 140.0 + 20 * i
        audio = harmonic(f0, seconds, sample_rate, amplitude=0.4)
        write_wav(ds.clips_dir / f"{stem}.wav", audio, sample_rate)
        n16 = int(round(seconds * 16000))
        f0_frames = n16 // 160 + 1
        content_frames = max(1, (n16 - 400) // 320 + 1)
        f0_hz = np.full(f0_frames, f0, dtype=np.float32)
        f0_hz[:3] = 0.0
        for sub, arr in (("content", rng.standard_normal((content_frames, dim)).astype(np.float32)),
                         ("f0", f0_hz), ("f0_coarse", coarse_from_hz(f0_hz))):
            (feats / sub).mkdir(parents=True, exist_ok=True)
            np.save(feats / sub / f"{stem}.npy", arr)
        clips[stem] = {"frames": f0_frames}
    manifest = {"dataset": name, "dataset_dir": str(ds.root), "clips_dir": str(ds.clips_dir),
                "sample_rate": sample_rate, "encoder": encoder, "dim": dim, "version": version, "f0_method": "pm",
                "clips": clips, "failed": {}, "versions": {}}
    (feats / "manifest.json").write_text(json.dumps(manifest))
    return exp


def tiny_config(name: str = "alice", **changes):
    from voiceapp.train.config import TrainConfig

    base = dict(experiment=name, preset="tiny", epochs=2, save_every_epochs=1, batch_size=2, validation_clips=1,
                log_every_steps=1, pretrained="none")
    base.update(changes)
    return TrainConfig(**base)


# --- voice files ------------------------------------------------------------------------------------------


V2_40K_CONFIG = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                 [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000]
FAISS_HEAD = b"IwFl" + (768).to_bytes(4, "little") + bytes(56)  # a faiss IVF header of 768-d vectors (v2)


def voice_dict(version: str = "v2", f0: int = 1, sr: int = 40000, applio: bool = False, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    dim = 768 if version == "v2" else 256
    ckpt = {"weight": {"emb_g.weight": torch.randn(2, 256, generator=g).half(),
                       "enc_p.emb_phone.weight": torch.randn(192, dim, generator=g).half(),
                       "dec.conv_pre.weight": torch.randn(16, 192, 7, generator=g).half()}
            | ({"enc_p.emb_pitch.weight": torch.randn(256, 192, generator=g).half()} if f0 else {}),
            "config": V2_40K_CONFIG[:-1] + [sr], "info": "120epoch", "sr": f"{sr // 1000}k", "f0": f0,
            "version": version}
    if applio:
        ckpt.update(epoch=150, step=3000, embedder_model="whisper-tiny", author="me", model_name="x",
                    creation_date="2026-01-01T00:00:00")
    return ckpt


def write_pth(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(voice_dict(**kwargs), path)
    return path


def make_voice(workspace, name, version="v2", use_f0=True, sample_rate=40000, size="tiny", embedder="fake"):
    import torch

    from voiceapp.nets.synthesizer import SynthConfig, Synthesizer
    from voiceapp.voices.rvc import export_voice_model

    cfg = SynthConfig.preset(version, sample_rate, use_f0, size)
    torch.manual_seed(0)
    net = Synthesizer(cfg)
    return export_voice_model(net.state_dict(), cfg, workspace.voice_model_path(name), epoch=1, step=1,
                              embedder=embedder, name=name)


def make_index(workspace, name, version):
    """Features of a generated voice through the fake encoder, then `build_index` (copy beside the model)."""
    from voiceapp.features.encoders import load_encoder
    from voiceapp.index.build import build_index

    exp = workspace.experiment(name)
    encoder = load_encoder("fake", version)
    exp.content_dir.mkdir(parents=True)
    clips = {}
    for i, f0 in enumerate((140, 190, 250)):
        feats = encoder.encode(harmonic(f0, 2.0, 16000, vibrato_hz=5, vibrato_cents=50))
        np.save(exp.content_dir / f"c{i}.npy", feats)
        clips[f"c{i}"] = {"frames": 2 * len(feats)}
    manifest = {"dataset": name, "sample_rate": 40000, "encoder": "fake", "dim": encoder.dim, "version": version,
                "f0_method": "pm", "clips": clips, "failed": {}, "versions": {}}
    exp.features_manifest_path.write_text(json.dumps(manifest))
    return build_index(exp, voices_dir=workspace.voice_dir(name))


@contextlib.contextmanager
def local_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(root: Path, env: dict | None = None, timeout_s: float = 120.0) -> Iterator[str]:
    """`app.py --root ROOT --device cpu` in a subprocess on a free port; yields its URL once it answers, stops it
    after. Its output goes to ROOT/server.log (quoted when it exits early or does not start in time)."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    import pytest

    app_py = Path(__file__).resolve().parents[1] / "app.py"
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **(env or {})}
    log_path = Path(root) / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, str(app_py), "--root", str(root), "--port", str(port), "--device", "cpu"],
                            cwd=app_py.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app exited: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"app did not start in {timeout_s:.0f} s: {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
