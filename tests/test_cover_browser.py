"""The Cover section in a browser: upload a song, press Make cover, the cover plays and its files are on disk."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import harmonic, make_feature_experiment, write_wav
from test_browser import _block, _pick, _wait_file, app_url, browser, open_tab, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_make_cover_from_the_inference_tab(page, app_url, tmp_path):  # noqa: F811
    from voiceapp.train.instant import build_instant
    from voiceapp.workspace import Workspace

    url, root = app_url
    ws = Workspace(root)
    build_instant(make_feature_experiment(ws, "coverme", lengths_s=(4.0, 4.2, 3.8, 4.1, 3.9), sample_rate=16000), ws)
    rate = 22050
    t = np.arange(3 * rate) / rate
    chord = 0.08 * (np.sin(2 * np.pi * 130.81 * t) + np.sin(2 * np.pi * 196.0 * t))
    vocal = harmonic(300, 3.0, rate, amplitude=0.3)
    song = write_wav(tmp_path / "tune.wav", np.stack([vocal + chord, vocal + 0.3 * chord]).astype(np.float32), rate)
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Inference")
    _pick(page, panel, "Voice model", "coverme")
    _block(panel, "Song").locator("input[type=file]").set_input_files(str(song))
    page.wait_for_function("document.querySelector('#tab-inference').innerText.includes('tune.wav')")
    panel.get_by_role("button", name="Make cover", exact=True).click()
    page.wait_for_function("[...document.querySelectorAll('#tab-inference textarea')]"
                           ".some(t => t.value.includes('Cover of tune.wav'))", timeout=300_000)
    text = panel.get_by_label("Cover result").input_value()
    assert "LUFS" in text and "Stems:" in text
    covers = _wait_file("outputs/covers/coverme/tune.wav", root, 30)
    assert covers and (root / "outputs" / "covers" / "coverme" / "tune_stems" / "converted_vocals.wav").is_file()
    # the cover's player has the file: its duration shows
    page.wait_for_function("document.querySelector('#tab-inference').innerText.includes('0:03')", timeout=30_000)
