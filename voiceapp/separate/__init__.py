"""Vocal isolation: U-Net mask separators (trainable), a weight-free DSP separator, and the file-level stage.

Public entry points: `separate_file`, `separate_files`, `isolate_vocals_file` (the Dataset hook),
`list_separators`, `load_separator`, `train_separator` (in `voiceapp.separate.train`).
"""

from voiceapp.separate.separator import (DEFAULT_SEPARATOR, DSP_SEPARATORS, SeparateConfig, SeparationResult,
                                         isolate_vocals_file, list_separators, load_separator, separate_audio,
                                         separate_file, separate_files)

__all__ = ["DEFAULT_SEPARATOR", "DSP_SEPARATORS", "SeparateConfig", "SeparationResult", "isolate_vocals_file",
           "list_separators", "load_separator", "separate_audio", "separate_file", "separate_files"]
