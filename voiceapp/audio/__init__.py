"""Audio input/output and signal helpers."""

from voiceapp.audio.dsp import highpass, peak, resample, rvc_normalize, to_mono
from voiceapp.audio.io import (AUDIO_EXTENSIONS, SAVE_FORMATS, AudioInfo, audio_info, ffmpeg_exe,
                               find_audio_files, iter_blocks, load_audio, save_audio)

__all__ = ["AUDIO_EXTENSIONS", "SAVE_FORMATS", "AudioInfo", "audio_info", "ffmpeg_exe", "find_audio_files",
           "highpass", "iter_blocks", "load_audio", "peak", "resample", "rvc_normalize", "save_audio", "to_mono"]
