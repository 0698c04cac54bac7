"""Browser test of UVR models in the Separate tab: pick a catalogue model, download it from a local mirror, separate
an uploaded song with it (real app in a subprocess, Chromium). The mirror serves a tiny random BS-RoFormer under the
catalogue's file names for `bs-roformer-dereverb` (an entry with no checksum on record, so the files' own checks
apply: the checkpoint loads with weights_only, the yaml parses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import local_server, running_app
from test_browser import CHROMIUM, browser, open_tab  # noqa: F401 - shared browser fixtures
from test_separate_uvr import BS_ROFORMER_YAML, FakeSource, tiny_checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEREVERB_YAML = BS_ROFORMER_YAML.replace("  - Vocals\n  - Instrumental\n  target_instrument: Vocals",
                                         "  - No Reverb\n  - Reverb\n  target_instrument: No Reverb")


@pytest.fixture
def mirrored_app(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; browser tests skipped")
    from voiceapp.assets.uvr import UVR_MODELS

    model = UVR_MODELS["bs-roformer-dereverb"]
    assert DEREVERB_YAML != BS_ROFORMER_YAML
    ckpt, config = tiny_checkpoint(tmp_path, Path(model.model_file.name).stem, DEREVERB_YAML)
    assert [ckpt.name, config.name] == [f.name for f in model.files]
    source = FakeSource()
    source.files = {p.name: p.read_bytes() for p in (ckpt, config)}
    root = tmp_path / "ws"
    root.mkdir()
    with local_server(source.handler) as base:
        with running_app(root, env={"VOICEAPP_UVR_MIRROR": f"{base}/models"}) as url:
            yield url, root, source


def test_download_a_uvr_model_from_a_mirror_and_separate_with_it(browser, mirrored_app, tmp_path):  # noqa: F811
    url, root, source = mirrored_app
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("button[role=tab]")
    panel = open_tab(page, "Separate")
    panel.get_by_label("Separator", exact=True).first.click()
    page.get_by_role("option", name="BS-RoFormer De-Reverb", exact=False).first.click()
    panel.get_by_role("button", name="Download the picked UVR model").click()
    page.wait_for_function("document.body.innerText.includes('Downloaded BS-RoFormer De-Reverb')", timeout=120_000)
    assert (root / "models" / "uvr" / "deverb_bs_roformer_8_256dim_8depth.ckpt").exists()
    assert sorted(name for name, _ in source.gets) == ["deverb_bs_roformer_8_256dim_8depth.ckpt",
                                                       "deverb_bs_roformer_8_256dim_8depth.yaml"]
    assert "on disk" in panel.get_by_label("Separator", exact=True).first.input_value()

    t = np.arange(44100) / 44100
    song = tmp_path / "take.wav"
    sf.write(song, np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).T, 44100)
    panel.locator("input[type=file]").first.set_input_files(str(song))
    page.wait_for_function("document.body.innerText.includes('take.wav')", timeout=60_000)
    panel.get_by_role("button", name="Separate", exact=True).click()
    page.wait_for_function("document.body.innerText.includes('output folder')", timeout=180_000)
    page.wait_for_function("document.body.innerText.includes('Dry voice (reverb removed)')", timeout=60_000)
    page.screenshot(path=str(tmp_path / "separate_uvr_done.png"), full_page=True)
    out = root / "outputs" / "separated" / "take"
    assert (out / "dry.wav").exists() and (out / "reverb.wav").exists()
    context.close()
