"""Browser tests: the real app in a subprocess, driven by Playwright with the system's Chromium.

Skipped with a message when Chromium or Playwright is missing (CI installs Debian's chromium).
Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import phrase_with_gaps, write_wav

CHROMIUM = os.environ.get("VOICEAPP_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt install chromium); browser tests skipped")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed; browser tests skipped")
    root = tmp_path_factory.mktemp("browser_ws")
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--root", str(root), "--port", str(port),
                             "--device", "cpu"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("app did not start in 120 s")
    yield url, root
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        instance = play.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url[0])
    pg.wait_for_selector("button[role=tab]")
    yield pg
    context.close()


def open_tab(page, title: str):
    page.get_by_role("tab", name=title, exact=True).click()
    panel = page.locator(f"#tab-{title.lower()}")
    panel.wait_for(state="visible")
    return panel


def test_every_tab_loads(page, tmp_path):
    from voiceapp.ui.app import TABS

    for title, _ in TABS:
        panel = open_tab(page, title)
        assert panel.is_visible()
        page.screenshot(path=str(tmp_path / f"tab_{title.lower()}.png"), full_page=True)


def test_dataset_from_upload(page, app_url, tmp_path):
    src = write_wav(tmp_path / "my voice.wav", phrase_with_gaps(44_100, tone_s=4.0, n=3), 44_100)
    panel = open_tab(page, "Dataset")
    panel.locator("input[type=file]").first.set_input_files(str(src))
    page.wait_for_timeout(1500)
    name = panel.get_by_label("Dataset name")
    name.fill("browser_ds")
    name.press("Enter")
    panel.get_by_role("button", name="Prepare dataset").click()
    page.get_by_text("clips", exact=False).first.wait_for()
    page.wait_for_function("document.body.innerText.includes('file(s) processed')", timeout=120_000)
    page.screenshot(path=str(tmp_path / "dataset_done.png"), full_page=True)
    clips = list((app_url[1] / "datasets" / "browser_ds" / "clips").glob("*.wav"))
    assert len(clips) >= 3


def test_bad_upload_shows_an_error(page, tmp_path):
    junk = tmp_path / "not audio.wav"
    junk.write_bytes(b"\x00garbage" * 500)
    panel = open_tab(page, "Dataset")
    panel.locator("input[type=file]").first.set_input_files(str(junk))
    page.wait_for_timeout(1500)
    name = panel.get_by_label("Dataset name")
    name.fill("bad_ds")
    name.press("Enter")
    panel.get_by_role("button", name="Prepare dataset").click()
    page.wait_for_function("document.body.innerText.includes('No training clips could be made')", timeout=60_000)
    page.screenshot(path=str(tmp_path / "bad_upload.png"), full_page=True)
