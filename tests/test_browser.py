"""Browser tests: the real app in a subprocess, driven by Playwright with the system's Chromium.

Skipped with a message when Chromium or Playwright is missing (CI installs Debian's chromium).
Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from helpers import phrase_with_gaps, running_app, write_wav

CHROMIUM = os.environ.get("VOICEAPP_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt install chromium); browser tests skipped")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed; browser tests skipped")
    root = tmp_path_factory.mktemp("browser_ws")
    with running_app(root) as url:
        yield url, root


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt install chromium); browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed; browser tests skipped")
    sync_playwright = sync_api.sync_playwright

    with sync_playwright() as play:
        instance = play.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--disable-quic", "--no-first-run", "--disable-sync",
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


def prepare_dataset_from_upload(page, path: Path, name: str):
    """Upload `path` in the Dataset tab and press Prepare with dataset name `name`; returns the tab."""
    panel = open_tab(page, "Dataset")
    panel.locator("input[type=file]").first.set_input_files(str(path))
    page.wait_for_timeout(1500)
    box = panel.get_by_label("Dataset name")
    box.fill(name)
    box.press("Enter")
    panel.get_by_role("button", name="Prepare dataset").click()
    return panel


def test_every_tab_loads(page, tmp_path):
    from voiceapp.ui.app import TABS

    for title, _ in TABS:
        panel = open_tab(page, title)
        assert panel.is_visible()
        page.screenshot(path=str(tmp_path / f"tab_{title.lower()}.png"), full_page=True)


def test_dataset_from_upload(page, app_url, tmp_path):
    src = write_wav(tmp_path / "my voice.wav", phrase_with_gaps(44_100, tone_s=4.0, n=3), 44_100)
    prepare_dataset_from_upload(page, src, "browser_ds")
    page.get_by_text("clips", exact=False).first.wait_for()
    page.wait_for_function("document.body.innerText.includes('file(s) processed')", timeout=120_000)
    page.screenshot(path=str(tmp_path / "dataset_done.png"), full_page=True)
    clips = list((app_url[1] / "datasets" / "browser_ds" / "clips").glob("*.wav"))
    assert len(clips) >= 3


def test_bad_upload_shows_an_error(page, tmp_path):
    junk = tmp_path / "not audio.wav"
    junk.write_bytes(b"\x00garbage" * 500)
    prepare_dataset_from_upload(page, junk, "bad_ds")
    page.wait_for_function("document.body.innerText.includes('No training clips could be made')", timeout=60_000)
    page.screenshot(path=str(tmp_path / "bad_upload.png"), full_page=True)


def _block(panel, label: str):
    """The Gradio block (component container) whose label text is `label`."""
    return panel.locator(".block").filter(has=panel.page.get_by_text(label, exact=True)).last


def _pick(page, panel, label: str, option: str):
    panel.get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).first.click()


def _wait_file(path_glob, root: Path, timeout_s: float = 300) -> list[Path]:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = list(root.glob(path_glob))
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"no {path_glob} under {root} after {timeout_s} s")


def test_whole_workflow_dataset_extract_train_convert_tts(page, app_url, tmp_path):
    """Upload -> dataset -> features -> a short training reaches a checkpoint -> a conversion plays -> TTS audio."""
    url, root = app_url
    src = write_wav(tmp_path / "flow voice.wav", phrase_with_gaps(40_000, tone_s=4.0, n=5), 40_000)
    prepare_dataset_from_upload(page, src, "flow_ds")
    page.wait_for_function("document.body.innerText.includes('flow_ds')", timeout=120_000)
    _wait_file("datasets/flow_ds/report.json", root, 120)

    panel = open_tab(page, "Train")
    _pick(page, panel, "Dataset", "flow_ds")
    panel.get_by_label("Experiment name").fill("flow")
    panel.get_by_role("button", name="Extract features", exact=True).click()
    page.wait_for_function("document.body.innerText.includes('clips** ready') || "
                           "document.body.innerText.includes('clips ready')", timeout=300_000)
    page.screenshot(path=str(tmp_path / "extracted.png"), full_page=True)

    exp = panel.get_by_label("Experiment", exact=True).first
    exp.fill("flow")
    exp.press("Enter")
    # without RVC's base assets the quick engine is the default: one minute of training, saved every minute
    box = panel.get_by_label("number input for Training minutes").first
    box.fill("1")
    box.press("Enter")
    panel.get_by_role("button", name="Start", exact=True).click()
    _wait_file("logs/flow/Q_*.pth", root, 420)
    _wait_file("models/voices/flow/flow.safetensors", root, 120)
    page.screenshot(path=str(tmp_path / "trained.png"), full_page=True)

    panel = open_tab(page, "Inference")   # its lists are read again when the tab is shown
    page.wait_for_timeout(1500)
    _pick(page, panel, "Voice model", "flow")
    _block(panel, "Input (upload or record)").locator("input[type=file]").set_input_files(str(src))
    page.wait_for_timeout(1500)
    panel.get_by_role("button", name="Convert", exact=True).click()
    page.wait_for_function("[...document.querySelectorAll('#tab-inference textarea')]"
                           ".some(t => t.value.includes('real-time factor'))", timeout=300_000)
    player = _block(panel, "Converted")
    duration = "0:00"
    for _ in range(60):
        times = re.findall(r"\d+:\d\d", player.inner_text())
        if len(times) >= 2 and times[-1] != "0:00":
            duration = times[-1]
            break
        page.wait_for_timeout(500)
    assert duration != "0:00", "the converted audio never loaded"
    player.get_by_role("button", name="Play", exact=True).click()
    played = "0:00"
    for _ in range(20):
        page.wait_for_timeout(250)
        played = re.findall(r"\d+:\d\d", player.inner_text())[0]
        if played != "0:00":
            break
    page.screenshot(path=str(tmp_path / "converted.png"), full_page=True)
    assert played != "0:00", "the converted audio did not play"

    panel = open_tab(page, "TTS")
    panel.locator("textarea").first.fill("Hello. This sentence was typed in the browser.")
    panel.get_by_role("button", name="Speak", exact=True).click()
    speech = _block(panel, "Base speech")
    for _ in range(240):
        times = re.findall(r"\d+:\d\d", speech.inner_text())
        if len(times) >= 2 and times[-1] != "0:00":
            break
        page.wait_for_timeout(500)
    else:
        raise AssertionError("the TTS tab produced no audio")
    page.screenshot(path=str(tmp_path / "tts.png"), full_page=True)
