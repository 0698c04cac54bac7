"""The U-Net separator that ships inside the package: found without a workspace, loads safely, separates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import sdr_db, song_stems
from voiceapp.separate import list_separators, load_separator, separate_audio
from voiceapp.separate.model import SIDECAR_NAME, WEIGHTS_NAME, UNetSeparator
from voiceapp.separate.separator import DEFAULT_SEPARATOR, SHIPPED_DIR, shipped_separators
from voiceapp.workspace import Workspace

SHIPPED = "unet-speech"


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


def test_shipped_unet_is_listed_without_download(tmp_path):
    assert SHIPPED in shipped_separators()
    assert SHIPPED in list_separators(None)
    assert SHIPPED in list_separators(Workspace(tmp_path))  # an empty workspace still offers it
    assert DEFAULT_SEPARATOR in list_separators(None)
    folder = SHIPPED_DIR / SHIPPED
    assert (folder / "MODEL_CARD.md").exists()
    assert (folder / WEIGHTS_NAME).stat().st_size < 8 * 2 ** 20  # a few MB in git
    info = json.loads((folder / SIDECAR_NAME).read_text())["info"]
    assert "CC BY-SA" in info["licence"]
    assert not any("music" in song for song in info["train_songs"])  # the evaluation songs were never trained on


def test_weights_are_safetensors_not_pickle():
    raw = (SHIPPED_DIR / SHIPPED / WEIGHTS_NAME).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])  # safetensors: u64 length + JSON header, then raw tensors
    assert header and all("dtype" in v for k, v in header.items() if k != "__metadata__")
    assert not raw.startswith(b"\x80") and b"PK\x03\x04" not in raw[:4]  # neither a pickle nor a torch zip


def test_shipped_unet_separates_a_tone_over_a_chord(tmp_path):
    separator = load_separator(SHIPPED, None)
    assert isinstance(separator, UNetSeparator)
    vocals, acc = song_stems(44100, 4.0, seed=3, stereo=False, voice_f0_hz=200.0)
    mix = vocals + acc
    est, inst = separate_audio(mix, 44100, separator)
    assert est.shape == mix.shape and np.allclose(est + inst, mix, atol=1e-5)
    nothing = sdr_db(vocals, mix)  # the do-nothing estimate: the mixture itself
    assert sdr_db(vocals, est) > nothing + 3.0
    assert sdr_db(acc, inst) > sdr_db(acc, mix) + 3.0


def test_workspace_training_of_the_same_name_wins(tmp_path, monkeypatch):
    """A user's own models/separators/unet-speech/ is what loads under that name (the list shows it once)."""
    import shutil

    ws = Workspace(tmp_path).ensure()
    own = ws.separator_dir(SHIPPED)
    shutil.copytree(SHIPPED_DIR / SHIPPED, own)
    assert list_separators(ws).count(SHIPPED) == 1
    seen = []
    import voiceapp.separate.model as model

    real = model.load_unet_separator
    monkeypatch.setattr(model, "load_unet_separator", lambda folder, device="cpu": seen.append(folder) or
                        real(folder, device))
    load_separator(SHIPPED, ws)
    assert seen == [own]
