"""The Live tab in Firefox: the microphone permission path and a session that returns audio (headless Firefox ESR
driven over Marionette, Firefox's fake microphone tone, a private PulseAudio daemon with a null sink as the audio
output: a machine without a sound card has none, and Firefox's AudioContext does not start without one).

Skipped with a message when Firefox, PulseAudio or marionette-driver is missing (Debian: apt install firefox-esr
pulseaudio; .ci/run installs them).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import free_port, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIREFOX = os.environ.get("VOICEAPP_FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox")
PREFS = {
    "media.navigator.streams.fake": True,            # a generated tone as the microphone
    "media.navigator.permission.disabled": True,     # what the user's "Allow" does
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
}


@pytest.fixture
def pulse_null_sink(tmp_path):
    """A PulseAudio daemon of this test only, whose default output is a null sink; yields its environment."""
    if not shutil.which("pulseaudio"):
        pytest.skip("no pulseaudio (Debian: apt install pulseaudio); Firefox needs an audio output to start audio")
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(run)}
    proc = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes",
                             "--load=module-null-sink sink_name=voiceapp_null",
                             "--load=module-native-protocol-unix", "--log-target=stderr"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    socket = run / "pulse" / "native"
    deadline = time.time() + 20
    while not socket.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.skip(f"pulseaudio did not start: {proc.stderr.read().decode(errors='replace')[-500:]}")
        time.sleep(0.2)
    yield {**env, "PULSE_SERVER": f"unix:{socket}"}
    proc.terminate()
    proc.wait(10)


def test_firefox_grants_the_microphone_and_a_passthrough_session_returns_it(tmp_path, pulse_null_sink):
    if not FIREFOX:
        pytest.skip("no Firefox (Debian: apt install firefox-esr); the Firefox Live test is skipped")
    marionette = pytest.importorskip("marionette_driver.marionette", reason="marionette-driver not installed")
    root = tmp_path / "ws"
    root.mkdir()
    old_env = dict(os.environ)
    os.environ.update(pulse_null_sink)                      # Firefox (started below) inherits it
    client = None
    try:
        with running_app(root) as url:
            client = marionette.Marionette(host="127.0.0.1", port=free_port(), bin=FIREFOX, headless=True,
                                           prefs=PREFS, startup_timeout=120, gecko_log=str(tmp_path / "gecko.log"))
            client.start_session()
            client.timeout.script = 60
            client.navigate(url)
            _wait(client, "document.querySelector('button[role=tab]') && typeof window.voiceappLive === 'object'")
            tab = [b for b in client.find_elements("css selector", "button[role=tab]") if b.text.strip() == "Live"]
            tab[0].click()
            _wait(client, "document.querySelector('#va-live-start') && "
                          "document.querySelector('#va-live-start').offsetParent !== null")
            client.find_element("css selector", "#va-live-start").click()      # a real click: a user gesture
            state = _wait(client, "['running', 'stopped'].includes(window.voiceappLive.state) && "
                                  "window.voiceappLive.state", timeout_s=60)
            assert state == "running", client.execute_script("return window.voiceappLive.error", sandbox=None)
            _wait(client, "window.voiceappLive.measuredMs() !== null", timeout_s=30)
            rec = client.execute_async_script(
                "const done = arguments[arguments.length - 1]; window.voiceappLive.record(2.0).then(done);",
                sandbox=None)
            stats = client.execute_script("return document.querySelector('#va-live-stats').innerText", sandbox=None)
            client.find_element("css selector", "#va-live-stop").click()
            _wait(client, "window.voiceappLive.state === 'stopped'")
    finally:
        if client is not None:
            client.delete_session()
            client.cleanup()
        os.environ.clear()
        os.environ.update(old_env)
    mic = np.frombuffer(base64.b64decode(rec["mic"]), dtype=np.float32)
    played = np.frombuffer(base64.b64decode(rec["played"]), dtype=np.float32)
    assert len(mic) == len(played) == round(2.0 * rec["rate"])
    assert np.sqrt(np.mean(mic ** 2)) > 1e-3, "Firefox's fake microphone gave silence"
    assert np.sqrt(np.mean(played ** 2)) > 0.3 * np.sqrt(np.mean(mic ** 2)), "the page played (near) silence"
    assert "Latency" in stats and "measured" in stats
    assert 40 <= rec["delayMedianMs"] < 1000


def _wait(client, condition: str, timeout_s: float = 60.0):
    """Polls the page until the JavaScript expression `condition` is truthy; returns its value."""
    deadline = time.time() + timeout_s
    while True:
        value = client.execute_script(f"return ({condition});", sandbox=None)
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.25)
