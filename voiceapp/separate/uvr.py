"""UVR models as separators: MDX-Net ONNX files (onnxruntime), MDX23C / RoFormer checkpoints (networks from
the `audio-separator` package), VR-arch `.pth` files (`uvr_vr.py`) and Demucs `.th` files (`uvr_demucs.py`), run on
Voiceapp's streaming file stage.

A `UvrSeparator` is a waveform separator (`kind = "wave"`): `vocals(audio, sample_rate)` returns the voice stem of
a window of audio (the model's first output: vocals, lead vocals or the dry voice); the file stage writes it and
the input minus it. `wave_chunks` streams a file through it in windows of `chunk_s` seconds with `context_s` of
audio on both sides (dropped) and a `crossfade_s` blend between windows, so memory stays bounded whatever the
length and window joins are inaudible. Every model works at 44.1 kHz stereo: each window is resampled there and
back; mono is duplicated (and averaged back), more channels go through in pairs.

Facts used (UVR / audio-separator; our code): MDX-Net takes the STFT (periodic Hann, centred, hop 1024) of
hop * (2 ** dim_t_exp - 1) samples as [batch, 4, dim_f, frames] (L.re, L.im, R.re, R.im), the 3 lowest bins zeroed,
and returns the primary stem's spectrogram; windows step by that length minus n_fft, keeping the middle. The other
stem is mix - primary * compensate. MDX23C (TFC-TDF v3) and RoFormer networks map a waveform window
(1, 2, chunk) to (1, [stems,] 2, chunk); windows overlap `inference.num_overlap` times with a Hamming weight.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from voiceapp.assets.uvr import VR_MODEL_DATA, UvrModel, VrParams, require_uvr_model
from voiceapp.assets.uvr_files import read_uvr_config, structural_problem, uvr_hash
from voiceapp.devices import torch_device
from voiceapp.errors import ConfigError, InputError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress
from voiceapp.separate.stft import SampleSource
from voiceapp.workspace import Workspace

log = logging.getLogger(__name__)

MODEL_RATE = 44100


class MdxNet:
    """An MDX-Net ONNX model: (2, n) at 44.1 kHz -> its primary stem (2, n)."""

    def __init__(self, path: Path, model: UvrModel, device: str = "cpu", batch_windows: int = 1) -> None:
        import onnxruntime as ort
        import torch

        p = model.mdx
        if p is None:
            raise ConfigError(f"{model.name}: an MDX-Net entry needs its model data")
        self.n_fft, self.hop, self.dim_f = p.n_fft, p.hop_length, p.dim_f
        self.dim_t = 2 ** p.dim_t_exp
        self.window_samples = self.hop * (self.dim_t - 1)
        self.trim = self.n_fft // 2
        self.step = self.window_samples - 2 * self.trim
        if self.step <= 0 or self.dim_f > self.n_fft // 2 + 1:
            raise ConfigError(f"{model.name}: model data n_fft={self.n_fft}, dim_f={self.dim_f}, "
                              f"dim_t=2**{p.dim_t_exp} do not make a usable window")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            else:
                log.warning("%s runs on the CPU: this onnxruntime has no CUDA provider (install onnxruntime-gpu "
                            "for GPU MDX-Net separation)", model.title)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own types for a bad file
            raise InputError(f"{path}: not a usable ONNX model ({type(err).__name__}: {str(err)[:200]}). Delete it "
                             f"and download {model.title} again (Separate > UVR models), or import a good copy.") \
                from err
        self.input_name = self.session.get_inputs()[0].name
        self.device = torch_device("cpu")
        self.window = torch.hann_window(self.n_fft, periodic=True)
        self.batch_windows = max(1, batch_windows)

    def spectrogram(self, waves: np.ndarray) -> np.ndarray:
        """(b, 2, window_samples) -> the network input (b, 4, dim_f, dim_t): L.re, L.im, R.re, R.im."""
        import torch

        b = waves.shape[0]
        x = torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)).reshape(b * 2, -1)
        spec = torch.view_as_real(torch.stft(x, self.n_fft, self.hop, window=self.window, center=True,
                                             return_complex=True))  # (b*2, bins, frames, re/im)
        spec = spec.permute(0, 3, 1, 2).reshape(b, 4, self.n_fft // 2 + 1, -1)[:, :, :self.dim_f]
        return spec.contiguous().numpy()

    def waveform(self, spec: np.ndarray) -> np.ndarray:
        """Inverse of `spectrogram` (bins above dim_f are zero): (b, 4, dim_f, dim_t) -> (b, 2, window_samples)."""
        import torch

        b, n_bins = spec.shape[0], self.n_fft // 2 + 1
        out = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(spec, dtype=np.float32)),
                                      (0, 0, 0, n_bins - spec.shape[2]))  # (b, 4, bins, frames)
        out = out.reshape(b * 2, 2, n_bins, -1).permute(0, 2, 3, 1).contiguous()
        wav = torch.istft(torch.view_as_complex(out), self.n_fft, self.hop, window=self.window, center=True,
                          length=self.window_samples)
        return wav.reshape(b, 2, -1).numpy()

    def _run(self, waves: np.ndarray) -> np.ndarray:
        """(b, 2, window_samples) -> the network's stem, same shape."""
        spec = self.spectrogram(waves)
        spec[:, :, :3] = 0   # UVR silences the 3 lowest bins before the network
        out = self.session.run(None, {self.input_name: spec})[0]
        return self.waveform(out)

    def __call__(self, mix: np.ndarray, cancel: CancelToken = NEVER) -> np.ndarray:
        n = mix.shape[1]
        count = max(1, -(-n // self.step))
        out = np.zeros_like(mix)
        for first in range(0, count, self.batch_windows):
            cancel.raise_if_set()
            ks = range(first, min(first + self.batch_windows, count))
            waves = np.zeros((len(ks), 2, self.window_samples), dtype=np.float32)
            for i, k in enumerate(ks):  # window k covers mix[k*step - trim : k*step - trim + window_samples]
                start = k * self.step - self.trim
                lo, hi = max(start, 0), min(start + self.window_samples, n)
                if hi > lo:
                    waves[i, :, lo - start:hi - start] = mix[:, lo:hi]
            stems = self._run(waves)
            for i, k in enumerate(ks):
                lo, hi = k * self.step, min((k + 1) * self.step, n)
                out[:, lo:hi] = stems[i, :, self.trim:self.trim + hi - lo]
        return out


class MdxcNet:
    """An MDX23C (TFC-TDF v3) or BS/Mel-band RoFormer checkpoint: (2, n) at 44.1 kHz -> {stem: (2, n)}."""

    def __init__(self, ckpt: Path, config_path: Path, model: UvrModel, device: str = "cpu") -> None:
        import torch

        cfg = read_uvr_config(config_path)
        self.device = torch_device(device)
        self.net, self.kind = _build_network(cfg, config_path)
        try:
            state = torch.load(str(ckpt), map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated zip, a pickle that needs code, ...
            raise InputError(f"{ckpt}: the checkpoint does not load ({type(err).__name__}: {str(err)[:200]}). "
                             f"Delete it and download {model.title} again (Separate > UVR models), or import a "
                             f"good copy.") from err
        for key in ("state_dict", "model"):   # some checkpoints wrap the weights
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
        try:
            self.net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise InputError(f"{ckpt}: the weights do not fit {config_path.name} ({str(err)[:240]}). Use the config "
                             f"published with this checkpoint, or download {model.title} again.") from err
        self.net.eval().to(self.device)
        training, inference, audio = cfg["training"], cfg.get("inference") or {}, cfg["audio"]
        target = training.get("target_instrument")
        self.stems = [str(target)] if target else [str(s) for s in training.get("instruments") or []]
        if not self.stems:
            raise InputError(f"{config_path}: training.instruments is empty; it cannot say what the model outputs.")
        hop = int((cfg["model"].get("stft_hop_length") if self.kind != "mdx23c" else None)
                  or audio.get("hop_length", 1024))
        self.window_samples = int(audio.get("chunk_size") or hop * (int(inference.get("dim_t", 256)) - 1))
        self.overlap = max(1, int(inference.get("num_overlap", 2)))
        self.config_name = config_path.name
        stereo = cfg["model"].get("stereo", True) if self.kind != "mdx23c" else True
        self.channels = 2 if stereo and int(audio.get("num_channels", 2)) == 2 else 1

    def __call__(self, mix: np.ndarray, cancel: CancelToken = NEVER) -> dict[str, np.ndarray]:
        if self.channels == 2:
            return self._run(mix, cancel)
        parts = [self._run(mix[c:c + 1], cancel) for c in range(mix.shape[0])]   # a mono model: one channel a time
        return {stem: np.concatenate([p[stem] for p in parts]) for stem in self.stems}

    def _run(self, mix: np.ndarray, cancel: CancelToken) -> dict[str, np.ndarray]:
        """(channels, n) with the model's channel count -> {stem: (channels, n)}, windows overlap-added."""
        import torch
        from scipy.signal import windows

        (channels, n), size = mix.shape, self.window_samples
        step = max(1, size // self.overlap)
        weight = windows.hamming(size).astype(np.float32)
        result = np.zeros((len(self.stems), channels, n), dtype=np.float32)
        total = np.zeros(n, dtype=np.float32)
        starts = list(range(0, max(n - size, 0) + 1, step))
        if starts[-1] + size < n:
            starts.append(n - size)
        with torch.inference_mode():
            for start in starts:
                cancel.raise_if_set()
                part = mix[:, start:start + size]
                length = part.shape[1]
                if length < size:
                    part = np.pad(part, ((0, 0), (0, size - length)))
                x = torch.from_numpy(np.ascontiguousarray(part))[None].to(self.device)
                y = self.net(x).float().cpu().numpy()[0]
                y = y[None] if y.ndim == 2 else y   # (stems, channels, samples)
                if y.ndim != 3 or y.shape[:2] != (len(self.stems), channels):
                    raise InputError(f"{self.config_name}: the config names {len(self.stems)} output stem(s) "
                                     f"({', '.join(self.stems)}) of {channels} channel(s), but the network returns "
                                     f"{tuple(y.shape)}; use the config published with the checkpoint.")
                used = min(length, y.shape[-1])   # a network may return a few samples less than it was given
                result[:, :, start:start + used] += y[:, :, :used] * weight[:used]
                total[start:start + used] += weight[:used]
        result /= np.maximum(total, 1e-8)
        return dict(zip(self.stems, result))


def _build_network(cfg: dict, config_path: Path) -> tuple[Any, str]:
    """The network the config describes (audio-separator's classes), with random weights."""
    try:
        if "freqs_per_bands" in cfg["model"] or "num_bands" in cfg["model"]:
            if "freqs_per_bands" in cfg["model"]:
                from audio_separator.separator.uvr_lib_v5.roformer.bs_roformer import BSRoformer as cls
                kind = "bs_roformer"
            else:
                from audio_separator.separator.uvr_lib_v5.roformer.mel_band_roformer import MelBandRoformer as cls
                kind = "mel_band_roformer"
            accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
            kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["model"].items() if k in accepted}
            dropped = sorted(set(cfg["model"]) - accepted)
            if dropped:
                log.info("%s: config keys not used by %s: %s", config_path.name, cls.__name__, dropped)
            return cls(**kwargs), kind
        from audio_separator.separator.uvr_lib_v5.tfc_tdf_v3 import TFC_TDF_net

        return TFC_TDF_net(_Namespace.of(cfg), device="cpu"), "mdx23c"
    except ImportError as err:
        raise InputError(f"MDX23C / RoFormer models need the `audio-separator` package ({err}). Install it with "
                         f"`pip install --no-deps -r requirements-nodeps.txt`.") from err
    except (TypeError, KeyError, ValueError, AttributeError, AssertionError) as err:
        raise InputError(f"{config_path}: the config does not describe a network Voiceapp can build "
                         f"({type(err).__name__}: {str(err)[:200]}).") from err


class _Namespace:
    """Attribute access to a nested config dict (what TFC_TDF_net reads); missing keys read as None."""

    def __init__(self, data: dict) -> None:
        self._data = data

    @classmethod
    def of(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return cls({k: cls.of(v) for k, v in value.items()})
        return value

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._data.get(key)


def _is_voice(stem: str, model: UvrModel) -> bool:
    return stem.strip().lower() in {s.lower() for s in model.voice_stems}


class UvrSeparator:
    """A waveform separator around one UVR model (see module docstring)."""

    kind = "wave"

    def __init__(self, model: UvrModel, net: Any, chunk_s: float = 30.0, context_s: float = 3.0,
                 crossfade_s: float = 1.0) -> None:
        self.model = model
        self.name = model.name
        self.net = net
        self.stem_names = model.stem_names
        self.chunk_s, self.context_s, self.crossfade_s = chunk_s, context_s, crossfade_s

    def _voice_44k(self, stereo: np.ndarray, cancel: CancelToken) -> np.ndarray:
        """(2, n) at 44.1 kHz -> the voice stem (2, n)."""
        model = self.model
        out = self.net(stereo, cancel)
        if isinstance(out, dict):
            voice = [s for s in out if _is_voice(s, model)]
            if voice:
                return out[voice[0]]
            if len(out) == 1:
                return stereo - next(iter(out.values()))
            raise InputError(f"{model.title}: its config names the stems {list(out)}, none of which is "
                             f"{'/'.join(model.voice_stems)}; use the config published with the model.")
        if model.mdx is not None and not _is_voice(model.mdx.primary_stem, model):
            return stereo - out * np.float32(model.mdx.compensate)
        return out

    def vocals(self, audio: np.ndarray, sample_rate: int, cancel: CancelToken = NEVER) -> np.ndarray:
        """(channels, n) at `sample_rate` -> the voice stem, same shape and rate; `cancel` is checked between the
        model's own windows (a few seconds of audio each)."""
        from voiceapp.audio.dsp import resample

        channels, n = audio.shape
        x = resample(audio, sample_rate, MODEL_RATE) if sample_rate != MODEL_RATE else audio
        pairs = [x[[c, c + 1 if c + 1 < channels else c]] for c in range(0, channels, 2)]
        voice = np.concatenate([self._voice_44k(np.ascontiguousarray(p, dtype=np.float32), cancel) for p in pairs])
        if channels == 1:
            voice = voice.mean(axis=0, keepdims=True)
        voice = voice[:channels]
        if sample_rate != MODEL_RATE:
            voice = resample(voice, MODEL_RATE, sample_rate)
        if voice.shape[1] < n:
            voice = np.pad(voice, ((0, 0), (0, n - voice.shape[1])))
        return np.ascontiguousarray(voice[:, :n], dtype=np.float32)


def load_uvr_separator(workspace: Workspace, name: str, device: str = "cpu") -> UvrSeparator:
    """The catalogue model `name` from models/uvr/ (MissingArtifactError saying how to get it when absent)."""
    model = require_uvr_model(workspace, name)
    paths = model.paths(workspace)
    if model.family == "mdx":
        problem = structural_problem(paths[0], model.model_file, model)
        if problem:
            raise InputError(f"{paths[0]}: {problem}. Delete it and download {model.title} again "
                             f"(Separate > UVR models), or import a good copy.")
        # MDX-Net windows keep their middle (n_fft / 2 of margin): 1 s of context is plenty.
        return UvrSeparator(model, MdxNet(paths[0], model, device), context_s=1.0)
    if model.family == "vr":
        from voiceapp.separate.uvr_vr import VrNet

        # VR windows are ~5.5 s (512 frames) and the network sees 64-128 frames (~1 s) of margin: 2 s is plenty.
        return UvrSeparator(model, VrNet(paths[0], model, resolve_vr_params(model, paths[0]), device),
                            context_s=2.0)
    if model.family == "demucs":
        from voiceapp.separate.uvr_demucs import DemucsNet

        if model.demucs is None:
            raise ConfigError(f"{model.name}: a Demucs entry needs its DemucsParams")
        # Demucs windows are the training segment (7.8 s) overlapping by a quarter: 3 s of context at chunk edges.
        return UvrSeparator(model, DemucsNet(paths, model, model.demucs, device), context_s=3.0)
    # MDX23C / RoFormer windows (~6-8 s) overlap 2-4 times: give the chunk edges a few seconds of context.
    return UvrSeparator(model, MdxcNet(paths[0], paths[1], model, device), context_s=3.0)


def resolve_vr_params(model: UvrModel, path: Path) -> VrParams:
    """UVR's model data for a VR `.pth`: by the file's UVR hash (`VR_MODEL_DATA`, as UVR looks it up), else the
    catalogue entry's own; InputError when neither has it."""
    digest = uvr_hash(path)
    found = VR_MODEL_DATA.get(digest)
    if found is not None:
        if model.vr is not None and found != model.vr:
            log.warning("%s: UVR's model data for hash %s differs from the catalogue entry; using UVR's", path, digest)
        return found
    if model.vr is None:
        raise InputError(f"{path}: no VR model data for this file (UVR hash {digest}); it is not a VR model Voiceapp "
                         f"knows. Download {model.title} again, or import the published file.")
    return model.vr


def wave_chunks(source: SampleSource, sample_rate: int, separator: UvrSeparator, chunk_s: float = 30.0,
                progress: Progress = no_progress, cancel: CancelToken = NEVER,
                total_samples: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (mix, vocals) blocks of (channels, samples) covering the whole signal in order (see module docstring)."""
    hop = max(int(chunk_s * sample_rate), 1)
    fade = min(int(separator.crossfade_s * sample_rate), hop // 2)
    ctx = int(separator.context_s * sample_rate)
    ramp = (np.arange(fade, dtype=np.float32) + 0.5) / max(fade, 1)
    tail: np.ndarray | None = None  # the previous window's estimate of [k*hop - fade, k*hop)
    k = 0
    while True:
        cancel.raise_if_set()
        a, b = k * hop - fade, (k + 1) * hop          # this window estimates [a, b)
        segment = source.read(a - ctx, b + ctx)
        n_total = source.length
        last = n_total is not None and n_total <= b  # the signal ends in this window: stop there (plus context)
        stop = max(n_total, a) if last else b
        segment = segment[:, :stop + ctx - (a - ctx)]
        estimate = separator.vocals(segment, sample_rate, cancel)[:, ctx:ctx + stop - a]
        head = estimate[:, :fade]
        if tail is not None:
            w = ramp[:head.shape[1]]
            head = tail[:, :head.shape[1]] * (1.0 - w) + head * w
        vocals = np.concatenate([head, estimate[:, fade:] if last else estimate[:, fade:hop]], axis=1)
        mix = segment[:, ctx:ctx + vocals.shape[1]]
        start, end = max(a, 0), a + vocals.shape[1]   # vocals covers [a, end): b - fade, or the signal's end
        if end > start:
            yield mix[:, start - a:], vocals[:, start - a:]
        if total_samples:
            progress(min(1.0, end / total_samples), f"separating: {end / sample_rate:.0f} s")
        if last:
            return
        tail = estimate[:, hop:hop + fade]
        source.release_before(b - fade - ctx)
        k += 1
