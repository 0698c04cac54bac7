"""Browser tests of the app's state as a person meets it (issue #16): lists that follow the workspace and
remember the last choice, errors that stay readable beside a clickable field, the Train form showing an
experiment's saved settings, a refused Start that leaves train.json byte-identical, Stop's states with a real
training child, honest labels for a Voiceapp-only model, clips traceable to their sources (two uploads of one name
told apart), per-clip progress of feature extraction, and screenshots of every tab at 1400 px and 800 px.

Screenshots go to tests/artifacts/ (ignored by git; the folder is printed). The app runs in a subprocess on a
temporary workspace (the `app_url` fixture of test_browser.py); what a training would leave on disk is
written there directly, as the training child does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import make_dataset, make_feature_experiment, make_voice
from test_browser import app_url, browser, open_tab, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _workspace(root: Path):
    from voiceapp.workspace import Workspace

    return Workspace(root)


def _quick_voice(ws, name: str) -> Path:
    import torch

    from voiceapp.voices.file import save_voice_tensors

    meta = {"engine": "quick", "sample_rate": 24000, "encoder": "whisper-tiny", "f0": True, "steps": 40,
            "epochs": 0, "minutes_of_data": 1.0, "version": "1", "config": {"content_dim": 384, "hop": 240}}
    g = torch.Generator().manual_seed(0)
    tensors = {"frames": torch.randn(50, 384, generator=g), "count": torch.tensor([50], dtype=torch.int64)}
    path = ws.voice_dir(name) / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_voice_tensors(path, tensors, meta)


def _value(panel, label: str) -> str:
    return panel.get_by_label(label, exact=True).first.input_value()


def _options(page, panel, label: str) -> list[str]:
    panel.get_by_label(label, exact=True).first.click()
    page.wait_for_selector("[role=option]")
    names = [o.inner_text().replace("✓", "").strip() for o in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    return names


def _wait_value(page, panel, label: str, expected: str, timeout_ms: int = 20_000) -> None:
    box = panel.get_by_label(label, exact=True).first
    for _ in range(timeout_ms // 250):
        if box.input_value() == expected:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"{label}: {box.input_value()!r}, expected {expected!r}")


def test_lists_follow_the_workspace_after_a_reload_and_remember_the_choice(page, app_url):  # noqa: F811
    """A model, an experiment and a dataset that appear on disk while the app runs (as a training leaves them)
    are in every picker after a reload, with no Refresh button; the model the user picked is picked again."""
    url, root = app_url
    ws = _workspace(root)
    make_dataset(ws, "newds")
    make_feature_experiment(ws, "trained")
    _quick_voice(ws, "trained")
    make_voice(ws, "second")
    page.reload()
    page.wait_for_selector("button[role=tab]")

    panel = open_tab(page, "Inference")
    assert {"trained", "second"} <= set(_options(page, panel, "Voice model"))
    panel = open_tab(page, "TTS")
    assert {"trained", "second"} <= set(_options(page, panel, "Voice model"))
    panel = open_tab(page, "Models")
    assert {"trained", "second"} <= set(_options(page, panel, "Model"))
    page.wait_for_function("document.querySelector('#tab-models').innerText.includes('own frames')")  # its row
    panel = open_tab(page, "Train")
    assert "trained" in _options(page, panel, "Experiment")
    assert "newds" in _options(page, panel, "Dataset")
    panel = open_tab(page, "Dataset")
    assert "newds" in _options(page, panel, "Dataset name")

    panel = open_tab(page, "Inference")
    stored = page.evaluate("localStorage.getItem('voiceapp-voice-model')")
    panel.get_by_label("Voice model", exact=True).first.click()
    page.get_by_role("option", name="trained", exact=True).first.click()
    _wait_value(page, panel, "Voice model", "trained")
    # the choice reaches the browser's storage through a server round trip: wait for it, not a fixed time
    page.wait_for_function("(old) => localStorage.getItem('voiceapp-voice-model') !== old", arg=stored,
                           timeout=20_000)
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Inference")
    _wait_value(page, panel, "Voice model", "trained")


def test_an_error_stays_readable_and_the_field_stays_clickable(page):  # noqa: F811
    panel = open_tab(page, "Dataset")
    box = panel.get_by_label("Dataset name")
    box.fill("nothing_uploaded")
    box.press("Enter")
    panel.get_by_role("button", name="Prepare dataset").click()
    message = panel.locator(".block.va-message")
    message.wait_for(state="visible")
    assert "Upload recordings" in message.inner_text()
    page.wait_for_timeout(12_000)   # longer than a toast lasts
    assert message.is_visible() and "Upload recordings" in message.inner_text()
    box.click(timeout=5_000)        # no badge over the box
    box.fill("still_clickable")
    assert box.input_value() == "still_clickable"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "error_beside_button.png"), full_page=True)


def _saved_settings(ws, name: str, **settings) -> Path:
    from voiceapp.train.config import TrainConfig

    exp = ws.experiment(name)
    exp.root.mkdir(parents=True, exist_ok=True)
    exp.train_config_path.write_text(json.dumps(TrainConfig(experiment=name, **settings).to_json(), indent=2))
    return exp.train_config_path


def _pick_experiment(page, panel, name: str) -> None:
    panel.get_by_label("Experiment", exact=True).first.click()
    page.get_by_role("option", name=name, exact=True).first.click()


def test_picking_an_experiment_after_a_reload_shows_its_settings(page, app_url):  # noqa: F811
    url, root = app_url
    ws = _workspace(root)
    make_feature_experiment(ws, "saved_rvc")
    _saved_settings(ws, "saved_rvc", engine="rvc", epochs=3, save_every_epochs=1, pretrained="none")
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Train")
    _pick_experiment(page, panel, "saved_rvc")
    _wait_value(page, panel, "number input for Epochs", "3")
    assert _value(panel, "number input for Save every N epochs") == "1"
    assert panel.get_by_text("Showing the settings saved with").first.is_visible()


def test_a_failed_start_leaves_train_json_byte_identical(page, app_url):  # noqa: F811
    url, root = app_url
    ws = _workspace(root)
    exp = make_feature_experiment(ws, "quick_exp")
    saved = _saved_settings(ws, "quick_exp", engine="quick", minutes=3)
    (exp.root / "Q_40.pth").write_bytes(b"a quick checkpoint")
    before = saved.read_bytes()
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Train")
    _pick_experiment(page, panel, "quick_exp")
    _wait_value(page, panel, "number input for Training minutes", "3")
    panel.get_by_label("rvc: RVC's model", exact=False).first.check()
    panel.get_by_role("button", name="Start", exact=True).click()
    message = panel.locator(".block.va-message").filter(has_text="cannot continue")
    message.wait_for(state="visible")
    assert "Nothing was changed" in message.inner_text()
    assert saved.read_bytes() == before


def test_stop_shows_its_states(page, app_url):  # noqa: F811
    """A real (tiny) training child started from the Train tab: Stop answers "Stopping…" at once, and the status
    then says "Stopped at epoch N" once the child has saved and ended."""
    url, root = app_url
    ws = _workspace(root)
    make_feature_experiment(ws, "stopper", lengths_s=(0.5, 0.6, 0.7, 0.55))
    _saved_settings(ws, "stopper", engine="rvc", preset="tiny", epochs=1000, save_every_epochs=1, batch_size=2,
                    pretrained="none", validation_clips=0, save_voice_each_save=False)
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Train")
    _pick_experiment(page, panel, "stopper")
    _wait_value(page, panel, "number input for Epochs", "1000")
    panel.get_by_role("button", name="Start", exact=True).click()
    text = "document.querySelector('#tab-train').innerText"
    page.wait_for_function(f"{text}.includes('Training: epoch')", timeout=120_000)   # the child is stepping
    page.locator("#train-stop").click()
    page.wait_for_function(f"{text}.includes('Stopping…')", timeout=5_000)          # at once, not ~20 s later
    page.wait_for_function(f"/Stopped at epoch \\d+/.test({text})", timeout=90_000)
    assert re.search(r"Stopped at epoch \d+, step \d+", panel.inner_text())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "train_stopped.png"), full_page=True)


def test_labels_of_a_voiceapp_only_model_do_not_promise_rvc(page, app_url):  # noqa: F811
    url, root = app_url
    _quick_voice(_workspace(root), "own_only")
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Models")
    panel.get_by_label("Model", exact=True).first.click()
    page.get_by_role("option", name="own_only", exact=True).first.click()
    panel.get_by_role("button", name="Export as zip").click()
    note = panel.get_by_text("loads in Voiceapp only").first
    note.wait_for(state="visible")
    details = panel.locator("table").filter(has_text=re.compile(r"Engine\s+quick")).first
    details.wait_for(state="visible")
    assert "Loads in\tVoiceapp" in details.inner_text() and "RVC" not in details.inner_text()
    assert "Applio" not in details.inner_text()


@pytest.mark.parametrize("width", [1400, 800])
def test_screenshots_of_every_tab(browser, app_url, width):  # noqa: F811
    from voiceapp.ui.app import TABS

    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url[0])
    pg.wait_for_selector("button[role=tab]")
    ARTIFACTS.mkdir(exist_ok=True)
    for title, _ in TABS:
        if not pg.get_by_role("tab", name=title, exact=True).is_visible():
            pg.get_by_role("button", name="More tabs").first.click(timeout=2_000) if \
                pg.get_by_role("button", name="More tabs").count() else None
        pg.get_by_role("tab", name=title, exact=True).first.click()
        pg.locator(f"#tab-{title.lower()}").wait_for(state="visible")
        pg.wait_for_timeout(500)
        pg.screenshot(path=str(ARTIFACTS / f"tab_{title.lower()}_{width}px.png"), full_page=True)
    print(f"screenshots in {ARTIFACTS}")
    context.close()


def test_a_queued_job_is_visible_and_cancellable(page, app_url, tmp_path):  # noqa: F811
    """The demo runs; a dataset preparation pressed meanwhile is listed as waiting behind it, Cancel takes it
    off before it starts (no dataset is made), and cancelling the demo empties the panel."""
    from helpers import phrase_with_gaps, write_wav
    from test_browser import prepare_dataset_from_upload

    url, root = app_url
    page.locator("#demo-run").click()
    jobs = page.locator("#jobs-table")
    page.wait_for_function("document.querySelector('#jobs-table').innerText.includes('running')")
    src = write_wav(tmp_path / "queued voice.wav", phrase_with_gaps(40_000, tone_s=2.0, n=3), 40_000)
    prepare_dataset_from_upload(page, src, "never_made")
    page.wait_for_function("document.querySelector('#jobs-table').innerText.includes('waiting (1 ahead)')")
    assert "Prepare dataset" in jobs.inner_text() and "Demo" in jobs.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "job_panel_waiting.png"), full_page=False)
    page.locator("#jobs-pick").get_by_role("listbox").or_(page.locator("#jobs-pick input")).first.click()
    page.get_by_role("option", name="Prepare dataset (waiting)").first.click()
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_text("will not start").first.wait_for(state="visible")
    page.locator("#jobs-pick input").first.click()
    page.get_by_role("option", name="Demo (running)").first.click()
    page.get_by_role("button", name="Cancel job").click()
    page.wait_for_function("document.querySelector('#jobs-table').innerText.includes('No job is running')",
                           timeout=180_000)
    assert not (root / "datasets" / "never_made").exists()


def test_clips_show_their_source_and_span_and_same_named_uploads_differ(page, tmp_path):  # noqa: F811
    """Two different recordings both called mixture.wav, uploaded together: the clip table names each clip's source
    (mixture.wav / mixture (2).wav) and its time span, and a click on a row plays that clip."""
    from helpers import phrase_with_gaps, write_wav

    first = write_wav(tmp_path / "a" / "mixture.wav", phrase_with_gaps(40_000, tone_s=2.0, n=2), 40_000)
    second = write_wav(tmp_path / "b" / "mixture.wav", 0.6 * phrase_with_gaps(40_000, tone_s=3.0, n=1), 40_000)
    panel = open_tab(page, "Dataset")
    panel.locator("input[type=file]").first.set_input_files([str(first), str(second)])
    page.wait_for_function("document.querySelector('#tab-dataset').innerText.split('⇣').length > 2",
                           timeout=30_000)   # both uploads listed, each with its download link once uploaded
    box = panel.get_by_label("Dataset name")
    box.fill("traced")
    box.press("Enter")
    panel.get_by_role("button", name="Prepare dataset").click()
    table = page.locator("#dataset-clips")
    page.wait_for_function("document.querySelector('#dataset-clips').innerText.includes('mixture (2).wav')",
                           timeout=120_000)
    text = table.inner_text()
    assert "mixture.wav" in text and "source file" in text and "start (s)" in text
    assert re.search(r"\d+\.\d+", text)
    shown = _value(panel, "Clip")                      # the clip picker names the clip's source and span
    assert re.search(r"\.wav · mixture( \(2\))?\.wav \d+\.\d\d–\d+\.\d\d s", shown), shown
    other = "mixture.wav" if "mixture (2).wav" in shown else "mixture (2).wav"
    table.locator(".virtual-body [role=row]").filter(has_text=other).first.click()
    box = panel.get_by_label("Clip", exact=True).first
    for _ in range(80):                                # the click picks that row's clip (and the player loads it)
        if f"· {other} " in box.input_value():
            break
        page.wait_for_timeout(250)
    assert f"· {other} " in box.input_value(), box.input_value()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dataset_clip_sources.png"), full_page=True)


def test_feature_extraction_shows_clip_n_of_n(page, app_url):  # noqa: F811
    """Extract features (the offline defaults) from a 12-clip dataset: while it runs the page says which clip of how
    many it is on, with the time left, not only a time counter."""
    url, root = app_url
    make_dataset(_workspace(root), "counted", n=12)
    page.reload()
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Train")
    panel.get_by_label("Dataset", exact=True).first.click()
    page.get_by_role("option", name="counted", exact=True).first.click()
    panel.get_by_label("Experiment name").first.fill("counted")
    panel.get_by_role("button", name="Extract features", exact=True).click()
    page.wait_for_function("/clip \\d+ of 12 \\(k_\\d+\\), about \\d+ (s|min) left/.test(document.body.innerText)",
                           timeout=180_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "features_progress.png"), full_page=True)
    page.get_by_text("12 clips", exact=False).first.wait_for(timeout=180_000)
