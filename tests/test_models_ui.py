"""Models tab: builds on its own, and its handlers import, show, rename, export and delete; assets section."""

from __future__ import annotations

import gradio as gr
import pytest

from helpers import FAISS_HEAD, write_pth
from voiceapp.ui import models_tab


def test_models_tab_builds(services):
    with gr.Blocks() as demo:
        with gr.Tab("Models"):
            models_tab.build(services)
    assert isinstance(demo, gr.Blocks)


def test_models_tab_is_registered_last():
    from voiceapp.ui.app import TABS

    assert TABS[-1] == ("Models", "voiceapp.ui.models_tab")


def test_handlers_manage_a_model(services, tmp_path):
    pth = write_pth(tmp_path / "june.pth")
    index = tmp_path / "added_IVF4_Flat_nprobe_1_june_v2.index"
    index.write_bytes(FAISS_HEAD)
    msg, table, picker = models_tab.import_voice(services, [str(pth), str(index)], "", "", False)
    assert "Imported **june** with its index" in msg
    assert table["value"][0][:4] == ["june", "v2", 40000, "yes"] and picker["value"] == "june"
    with pytest.raises(gr.Error, match="already exists"):
        models_tab.import_voice(services, [str(pth)], "", "", False)
    assert "Replaced" in models_tab.import_voice(services, [str(pth)], "", "june", True)[0]

    info = models_tab.show_info(services, "june")
    assert "40000" in info and "sha256" in info
    msg, table, picker = models_tab.rename_voice(services, "june", "July")
    assert picker["value"] == "July" and table["value"][0][0] == "July"
    zip_path = models_tab.export_voice(services, "July")
    assert zip_path.endswith("July.zip") and str(services.workspace.root) in zip_path
    with pytest.raises(gr.Error, match="confirm"):
        models_tab.delete_voice(services, "July", False)
    msg, table, picker, confirm = models_tab.delete_voice(services, "July", True)
    assert table["value"] == [] and picker["value"] is None and confirm["value"] is False
    with pytest.raises(gr.Error, match="Upload"):
        models_tab.import_voice(services, [], " ", "", False)


def test_asset_handlers(services, tmp_path):
    rows = models_tab.asset_rows(services)
    assert [r[0] for r in rows][:2] == ["contentvec", "rmvpe"] and all(r[1] for r in rows)
    stranger = tmp_path / "random.bin"
    stranger.write_bytes(b"not an asset")
    with pytest.raises(gr.Error, match="not a known"):
        models_tab.import_asset_ui(services, [str(stranger)], "")
    with pytest.raises(gr.Error, match="Pick"):
        models_tab.download_assets_ui(services, [])
