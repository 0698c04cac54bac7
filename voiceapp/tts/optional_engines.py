"""Engines that appear only when an optional package is installed (neither is in requirements.txt).

- `piper`: Piper voices found on disk as `models/base/piper/<voice>.onnx` + `<voice>.onnx.json`
  (or `<voice>.json`), run by the `piper-tts` package. Offline.
- `edge-tts`: Microsoft's online neural voices through the `edge-tts` package. The text is SENT TO
  MICROSOFT'S SERVERS; the engine is marked `online` and the UI and CLI say so every time.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.tts.engine import TtsEngine, TtsVoice

log = logging.getLogger(__name__)


def _piper_dir(workspace) -> Path | None:
    return workspace.piper_dir if workspace is not None else None


def _piper_config_path(model: Path) -> Path | None:
    for candidate in (model.with_name(model.name + ".json"), model.with_suffix(".json")):
        if candidate.exists():
            return candidate
    return None


def _piper_models(workspace) -> list[tuple[Path, Path]]:
    folder = _piper_dir(workspace)
    if folder is None or not folder.is_dir():
        return []
    pairs = [(m, _piper_config_path(m)) for m in sorted(folder.glob("*.onnx"))]
    return [(m, c) for m, c in pairs if c is not None]


class PiperEngine(TtsEngine):
    name = "piper"
    label = "Piper (neural voices on disk, offline)"
    requirement = ("the `piper-tts` package (pip install piper-tts) and at least one voice, "
                   "<voice>.onnx + <voice>.onnx.json, in models/base/piper/")
    needs_workspace = True

    def __init__(self, workspace) -> None:
        self.workspace = workspace
        self._models = {m.stem: (m, c) for m, c in _piper_models(workspace)}
        self._loaded: dict[str, object] = {}

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        return importlib.util.find_spec("piper") is not None and bool(_piper_models(workspace))

    @property
    def default_voice(self) -> str:  # type: ignore[override]
        return next(iter(self._models), "")

    def voices(self) -> list[TtsVoice]:
        out = []
        for stem, (_, config_path) in self._models.items():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                config = {}
            language = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get("voice", "")
            out.append(TtsVoice(stem, stem, language, ""))
        return out

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        from piper import PiperVoice

        model_path, config_path = self._models[voice.id]
        if voice.id not in self._loaded:
            self._loaded[voice.id] = PiperVoice.load(str(model_path), config_path=str(config_path))
        piper_voice = self._loaded[voice.id]
        try:
            from piper import SynthesisConfig  # piper-tts >= 1.3
        except ImportError:
            raw = b"".join(piper_voice.synthesize_stream_raw(text, length_scale=1.0 / rate))
            return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0, piper_voice.config.sample_rate
        chunks = list(piper_voice.synthesize(text, syn_config=SynthesisConfig(length_scale=1.0 / rate)))
        if not chunks:
            return np.zeros(0, dtype=np.float32), piper_voice.config.sample_rate
        audio = np.frombuffer(b"".join(c.audio_int16_bytes for c in chunks), dtype=np.int16)
        return audio.astype(np.float32) / 32768.0, chunks[0].sample_rate


class EdgeTtsEngine(TtsEngine):
    name = "edge-tts"
    label = "Edge TTS (Microsoft neural voices)"
    online = True
    online_notice = "your text is sent to Microsoft's servers over the internet; needs a connection"
    requirement = "the `edge-tts` package (pip install edge-tts; optional, online)"
    default_voice = "en-US-AriaNeural"

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        return importlib.util.find_spec("edge_tts") is not None

    def voices(self) -> list[TtsVoice]:
        return list(_edge_voices())

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        import edge_tts

        from voiceapp.audio import load_audio

        log.warning("edge-tts: sending %d characters of text to Microsoft's servers", len(text))
        percent = int(round((rate - 1.0) * 100))
        with tempfile.TemporaryDirectory(prefix="voiceapp-edge-") as tmp:
            path = Path(tmp) / "speech.mp3"
            try:
                asyncio.run(edge_tts.Communicate(text, voice.id, rate=f"{percent:+d}%").save(str(path)))
            except Exception as err:  # noqa: BLE001 - network errors come in many types
                raise InputError(f"edge-tts could not reach Microsoft's service: {err}. Check the internet "
                                 f"connection or use an offline engine (espeak).") from err
            audio, sample_rate = load_audio(path, None, mono=True)
        return audio, sample_rate


@functools.lru_cache(maxsize=1)
def _edge_voices() -> tuple[TtsVoice, ...]:
    import edge_tts

    try:
        entries = asyncio.run(edge_tts.list_voices())
    except Exception as err:  # noqa: BLE001
        raise MissingArtifactError(f"edge-tts could not list voices (no internet?): {err}. "
                                   f"Use an offline engine (espeak).") from err
    return tuple(TtsVoice(e["ShortName"], e.get("FriendlyName", e["ShortName"]), e.get("Locale", ""),
                          str(e.get("Gender", "")).lower()) for e in entries)


OPTIONAL_ENGINES: dict[str, type[TtsEngine]] = {"piper": PiperEngine, "edge-tts": EdgeTtsEngine}
