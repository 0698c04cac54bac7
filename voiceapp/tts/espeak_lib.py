"""eSpeak NG through the shared library bundled by the `espeakng-loader` package (ctypes, no program needed).

The C library keeps one synthesizer per process, so this module loads it once, on first use, and
serialises every call with a lock. Audio comes back through the synth callback in
AUDIO_OUTPUT_SYNCHRONOUS mode as 16-bit samples at the rate `espeak_Initialize` returns (22050 Hz).

Voice ids are language codes (`en-us`, `fr-fr`, `de`, ...), optionally with a variant after `+`
(`en-us+f3` is a female variant); `voices()` lists every language voice and a few English variants.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from pathlib import Path

import numpy as np

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.tts.engine import TtsEngine, TtsVoice

log = logging.getLogger(__name__)

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_POS_CHARACTER = 1
_PARAM_RATE = 1
_RATE_DEFAULT_WPM = 175
_RATE_MIN_WPM, _RATE_MAX_WPM = 80, 450
_GENDERS = {1: "male", 2: "female"}
# Variants listed with English (US) in voices(); any variant name works after "+" with any language.
_LISTED_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
_LISTED_VARIANT_BASE = "en-us"

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.POINTER(ctypes.c_char)),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte),
                ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int),
                ("spare", ctypes.c_void_p)]


def _languages(raw: ctypes.POINTER(ctypes.c_char)) -> list[str]:
    """espeak_VOICE.languages: repeated (priority byte, NUL-terminated name), ended by a NUL byte."""
    out, i = [], 0
    while raw[i] != b"\0":
        i += 1  # priority byte
        name = bytearray()
        while raw[i] != b"\0":
            name += raw[i]
            i += 1
        i += 1
        out.append(name.decode("utf-8", "replace"))
    return out


class _Library:
    """The loaded libespeak-ng: initialised once; `synth` is serialised by a lock."""

    def __init__(self) -> None:
        import espeakng_loader

        lib_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        try:
            self.lib = ctypes.CDLL(lib_path)
        except OSError as err:
            raise MissingArtifactError(f"Cannot load the eSpeak NG library {lib_path}: {err}. Reinstall it with "
                                       f"`pip install --force-reinstall espeakng-loader`.") from err
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lock = threading.Lock()
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                                      _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise MissingArtifactError(f"eSpeak NG did not start with the data in {data_path}. Reinstall "
                                       f"`espeakng-loader`.")
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.variants = frozenset(Path(v["identifier"]).name for v in self._list(b"variant"))
        self.voices = self._list(None)

    def _on_audio(self, samples, n_samples: int, events) -> int:
        if n_samples > 0 and samples:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(n_samples,)).copy())
        return 0

    def _list(self, language: bytes | None) -> list[dict]:
        spec = None
        if language is not None:
            selector = _Voice()
            selector.languages = ctypes.cast(ctypes.c_char_p(language), ctypes.POINTER(ctypes.c_char))
            spec = ctypes.byref(selector)
        array = self.lib.espeak_ListVoices(spec)
        out, i = [], 0
        while array[i]:
            v = array[i].contents
            out.append({"name": v.name.decode("utf-8", "replace"), "languages": _languages(v.languages),
                        "identifier": v.identifier.decode(), "gender": _GENDERS.get(v.gender, "")})
            i += 1
        return out

    def synth(self, text: str, identifier: str, rate_wpm: int) -> np.ndarray:
        data = text.encode("utf-8")
        with self.lock:
            if self.lib.espeak_SetVoiceByName(identifier.encode()) != 0:
                raise InputError(f"eSpeak NG cannot load the voice {identifier!r}.")
            self.lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
            self._chunks = []
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE,
                                           None, None)
            chunks, self._chunks = self._chunks, []
        if status != 0:
            raise InputError(f"eSpeak NG could not speak the text (status {status}).")
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0


@functools.lru_cache(maxsize=1)
def _library() -> _Library:
    # The C library is a process-wide singleton by design; this mirrors it.
    return _Library()


@functools.lru_cache(maxsize=1)
def _voice_table() -> tuple[tuple[TtsVoice, ...], dict[str, str]]:
    """(voices, id -> espeak identifier). Ids are language codes; a shared code falls back to the file name."""
    entries = _library().voices
    counts: dict[str, int] = {}
    for entry in entries:
        code = entry["languages"][0] if entry["languages"] else ""
        counts[code] = counts.get(code, 0) + 1
    voices, ids = [], {}
    for entry in entries:
        code = entry["languages"][0] if entry["languages"] else ""
        voice_id = code if code and counts[code] == 1 else Path(entry["identifier"]).name.lower()
        ids[voice_id] = entry["identifier"]
        voices.append(TtsVoice(voice_id, entry["name"], code, entry["gender"]))
    voices.sort(key=lambda v: v.id)
    base = next((v for v in voices if v.id == _LISTED_VARIANT_BASE), None)
    if base is not None:
        variants = _library().variants
        for variant in _LISTED_VARIANTS:
            if variant in variants:
                gender = "female" if variant.startswith("f") else "male"
                voices.append(TtsVoice(f"{base.id}+{variant}", f"{base.name} ({variant})", base.language, gender))
    return tuple(voices), ids


class EspeakLibraryEngine(TtsEngine):
    name = "espeak"
    label = "eSpeak NG (built in, offline, 100+ languages)"
    requirement = "the `espeakng-loader` package (in requirements.txt)"
    default_voice = "en-us"

    @classmethod
    def is_available(cls, workspace=None) -> bool:
        try:
            import espeakng_loader

            return Path(espeakng_loader.get_library_path()).exists()
        except (ImportError, RuntimeError):
            return False

    def voices(self) -> list[TtsVoice]:
        return list(_voice_table()[0])

    def voice(self, voice_id: str | None) -> TtsVoice:
        wanted = (voice_id or self.default_voice).strip()
        base_id, _, variant = wanted.partition("+")
        if not variant:
            return super().voice(base_id)
        base = super().voice(base_id)
        if variant not in _library().variants:
            raise InputError(f"Unknown eSpeak NG variant {variant!r} in {wanted!r}; use one of "
                             f"{', '.join(sorted(_library().variants)[:20])}, ... (e.g. en-us+f3).")
        gender = {"f": "female", "m": "male"}.get(variant[:1], "") if variant[1:].isdigit() else ""
        return TtsVoice(f"{base.id}+{variant}", f"{base.name} ({variant})", base.language, gender)

    def _synthesize(self, text: str, voice: TtsVoice, rate: float) -> tuple[np.ndarray, int]:
        base_id, _, variant = voice.id.partition("+")
        identifier = _voice_table()[1][base_id] + (f"+{variant}" if variant else "")
        wpm = int(round(min(max(_RATE_DEFAULT_WPM * rate, _RATE_MIN_WPM), _RATE_MAX_WPM)))
        library = _library()
        return library.synth(text, identifier, wpm), library.sample_rate
