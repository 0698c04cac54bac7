"""The RVC model variants, written once (torch-free, so the CLI, the tabs and configs import them cheaply).

Every `choices=`, radio and validation of a version, sample rate or model size reads these.
"""

from __future__ import annotations

SIZES: tuple[str, ...] = ("full", "light", "tiny")         # full = RVC's; light = for CPUs; tiny = tests
VERSIONS: tuple[str, ...] = ("v1", "v2")
SAMPLE_RATES: tuple[int, ...] = (32000, 40000, 48000)
CONTENT_DIMS: dict[str, int] = {"v1": 256, "v2": 768}      # content width RVC's pretrained models take
