"""Browser test of the Separate tab: upload a song, separate it, get both players (real app, Chromium)."""

from __future__ import annotations

import pytest
import soundfile as sf

from helpers import song_stems
from test_browser import app_url, browser, open_tab, page  # noqa: F401 - shared browser fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_separate_an_uploaded_song(page, app_url, tmp_path):  # noqa: F811
    vocals, acc = song_stems(22050, 3.0)
    song = tmp_path / "duet.wav"
    sf.write(song, (vocals + acc).T, 22050)
    panel = open_tab(page, "Separate")
    panel.locator("input[type=file]").first.set_input_files(str(song))
    page.wait_for_timeout(1500)
    panel.get_by_role("button", name="Separate", exact=True).click()
    page.wait_for_function("document.body.innerText.includes('output folder')", timeout=120_000)
    page.wait_for_timeout(3000)  # players, downloads and spectrograms render (see the screenshot)
    page.screenshot(path=str(tmp_path / "separate_done.png"), full_page=True)
    out = app_url[1] / "outputs" / "separated" / "duet"
    assert (out / "vocals.wav").exists() and (out / "instrumental.wav").exists()
