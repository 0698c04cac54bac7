"""The Live tab in the real page: headless Chromium with a fake microphone fed from a generated file of noise bursts.

The app runs in a subprocess (as in test_browser.py); Chromium gets the microphone permission from its flags.
Skipped with a message when Chromium or Playwright is missing.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import running_app

CHROMIUM = os.environ.get("VOICEAPP_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _bursts(path: Path, rate: int = 48000, seconds: float = 6.0) -> Path:
    """Noise bursts of 15 ms at irregular 0.3-0.6 s intervals in silence."""
    rng = np.random.default_rng(1)
    x, t = np.zeros(int(seconds * rate), dtype=np.float32), 0.2
    while t < seconds - 0.1:
        n, i = int(0.015 * rate), int(t * rate)
        x[i:i + n] = np.clip(rng.standard_normal(n) * 0.2, -0.6, 0.6) * np.hanning(n)
        t += rng.uniform(0.3, 0.6)
    sf.write(path, x, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def live_page(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt install chromium); browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed; browser tests skipped")
    root = tmp_path_factory.mktemp("live_ws")
    mic = _bursts(root / "bursts.wav")
    with running_app(root) as url, sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("button[role=tab]")
        yield page, root
        browser.close()


def test_the_live_tab_loads(live_page, tmp_path):
    page, _ = live_page
    page.get_by_role("tab", name="Live", exact=True).click()
    panel = page.locator("#tab-live")
    panel.wait_for(state="visible")
    for element in ("#va-live-model", "#va-live-block", "#va-live-start", "#va-live-stop", "#va-live-stats",
                    "#va-live-in", "#va-live-out"):
        assert panel.locator(element).count() == 1, element
    assert "passthrough" in panel.locator("#va-live-model input").input_value()
    assert page.evaluate("typeof window.voiceappLive.start") == "function"     # the script the head loads
    page.screenshot(path=str(tmp_path / "live_tab.png"), full_page=True)


def test_a_fake_microphone_session_returns_audio(live_page, tmp_path):
    page, root = live_page
    page.get_by_role("tab", name="Live", exact=True).click()
    page.locator("#va-live-start").click()                                     # the real button, passthrough
    page.wait_for_function("() => window.voiceappLive.state === 'running'", timeout=60_000)
    page.wait_for_function("() => window.voiceappLive.measuredMs() !== null", timeout=30_000)
    rec = page.evaluate("window.voiceappLive.record(2.5)")
    stats = page.locator("#va-live-stats").inner_text()
    page.screenshot(path=str(tmp_path / "live_running.png"), full_page=True)
    page.locator("#va-live-stop").click()
    page.wait_for_function("() => window.voiceappLive.state === 'stopped'")
    mic = np.frombuffer(base64.b64decode(rec["mic"]), dtype=np.float32)
    played = np.frombuffer(base64.b64decode(rec["played"]), dtype=np.float32)
    assert len(mic) == len(played) == round(2.5 * rec["rate"])
    assert np.abs(mic).max() > 0.1, "the fake microphone gave silence"
    log = (root / "server.log").read_text()[-1500:]
    assert np.abs(played).max() > 0.05, f"the page played silence; server log: {log}"
    # the played audio is the microphone's, later by about the latency the page shows
    from scipy.signal import correlate

    c = correlate(played, mic, mode="full", method="fft")[len(mic) - 1:len(mic) - 1 + rec["rate"]]
    lag_ms = 1000 * int(np.argmax(np.abs(c))) / rec["rate"]
    assert "Latency" in stats and "measured" in stats
    assert 60 <= lag_ms < 1000
    assert abs(lag_ms - rec["delayMedianMs"]) < 30      # what the page measures is the delay the audio has


def test_the_live_socket_sends_pcm_uncompressed(live_page):
    """The app's socket refuses permessage-deflate (raw float32 does not compress; it only cost CPU each way)."""
    import asyncio

    websockets = pytest.importorskip("websockets")
    page, _ = live_page
    url = page.url.split("?")[0].rstrip("/").replace("http://", "ws://") + "/live/ws"

    async def extensions() -> str:
        async with websockets.connect(url) as ws:        # offers permessage-deflate, as browsers do
            return ws.response.headers.get("Sec-WebSocket-Extensions", "")

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:                  # Playwright's sync API holds this thread's event loop
        offered = pool.submit(lambda: asyncio.run(extensions())).result(timeout=60)
    assert "permessage-deflate" not in offered
