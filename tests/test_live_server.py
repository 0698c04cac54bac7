"""The Live tab's socket (voiceapp/live/server.py): PCM in, converted PCM out with capture indices, stats, errors,
who may connect (origin, Gradio's login), backlog and gap handling. Starlette's TestClient, no browser, CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from voiceapp.errors import VoiceAppError
from voiceapp.live import server
from voiceapp.live.server import Conversion, decode_audio, encode_audio, live_routes

RATE = 16000          # the session resamples nothing at 16 kHz: output[k] == input[k] for passthrough


def _client(services) -> TestClient:
    return TestClient(Starlette(routes=live_routes(services)))


def _start(ws, **settings) -> dict:
    ws.send_json({"type": "start", "settings": {"model": "passthrough", "device_rate": RATE, "gate_db": None,
                                                "block_ms": 40, **settings}})
    return _until(ws, lambda m: isinstance(m, dict) and m["type"] in ("ready", "error"))


def _until(ws, done, limit: int = 2000):
    for _ in range(limit):
        message = ws.receive()
        if message.get("type") == "websocket.close":
            raise AssertionError(f"socket closed: {message}")
        item = json.loads(message["text"]) if message.get("text") is not None else decode_audio(message["bytes"])
        if done(item):
            return item
    raise AssertionError("no such message")


def _stream(ws, x: np.ndarray, first_index: int, frame: int = 256) -> None:
    for i in range(0, len(x), frame):
        ws.send_bytes(encode_audio(first_index + i, x[i:i + frame]))


def _bursts(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.zeros(int(seconds * RATE), dtype=np.float32)
    for start_s in (0.15, 0.4, 0.55, 0.8):
        i = int(start_s * RATE)
        x[i:i + 160] = rng.standard_normal(160).astype(np.float32) * 0.3
    return x


def test_a_passthrough_session_returns_the_input_with_its_capture_indices(services):
    x = _bursts(1.0)
    with _client(services).websocket_connect(server.SOCKET_PATH) as ws:
        ready = _start(ws)
        assert ready["type"] == "ready" and ready["latency_ms"] >= 60       # 40 ms block + 20 ms look-ahead
        latency = int(round(ready["latency_ms"] * RATE / 1000))
        _stream(ws, x, first_index=5000)
        pieces, stats = [], []
        while sum(len(p) for _, p in pieces) < len(x) - latency:
            item = _until(ws, lambda m: True)
            (stats if isinstance(item, dict) else pieces).append(item)
    assert pieces[0][0] == 5000                                             # output[k] carries input k's index
    for (index, samples), (following, _) in zip(pieces, pieces[1:]):
        assert following == index + len(samples)                            # contiguous, nothing repeated
    y = np.concatenate([p for _, p in pieces])
    assert len(y) == len(x) - latency
    a, b = x[RATE // 10:len(y)], y[RATE // 10:]                             # the input itself (the session's 48 Hz
    lags = range(-40, 41)                                                   # high-pass aside), on the same index
    corr = [np.dot(a[40:-40], np.roll(b, -lag)[40:-40]) / (np.linalg.norm(a) * np.linalg.norm(b)) for lag in lags]
    assert lags[int(np.argmax(corr))] == 0 and max(corr) > 0.7          # 0.82 with the high-pass
    assert all(s["type"] == "stats" and "load" in s and "server_dropped_s" in s for s in stats)


def test_errors_are_reported_and_the_socket_stays_usable(services):
    with _client(services).websocket_connect(server.SOCKET_PATH) as ws:
        error = _start(ws, model="nobody")
        assert error["type"] == "error" and "nobody" in error["message"]
        ws.send_json({"type": "start", "settings": {"model": "passthrough", "volume": 3}})
        assert "volume" in _until(ws, lambda m: isinstance(m, dict))["message"]
        ws.send_json({"type": "start", "settings": {"model": "passthrough", "block_ms": 55}})
        assert "block_ms" in _until(ws, lambda m: isinstance(m, dict))["message"]
        ws.send_bytes(b"\x00" * 7)
        assert "8-byte index" in _until(ws, lambda m: isinstance(m, dict))["message"]
        assert _start(ws)["type"] == "ready"
        ws.send_json({"type": "stop"})
        assert _until(ws, lambda m: isinstance(m, dict))["type"] == "stopped"


def test_a_page_of_another_site_is_refused(services):
    client = _client(services)
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(server.SOCKET_PATH, headers={"origin": "http://evil.example"}):
            pass
    assert refused.value.code == server.POLICY_VIOLATION
    for origin in ("http://testserver", "http://localhost:7860"):    # its own page; localhost vs 127.0.0.1 names
        headers = {"origin": origin, "host": "testserver" if "testserver" in origin else "127.0.0.1:7860"}
        with client.websocket_connect(server.SOCKET_PATH, headers=headers) as ws:
            assert _start(ws)["type"] == "ready"


def test_with_a_login_the_socket_needs_gradios_session_cookie(services):
    import gradio as gr
    from gradio.routes import App

    with gr.Blocks() as blocks:
        gr.Markdown("x")
    blocks.auth = [("ann", "secret")]
    client = TestClient(App.create_app(blocks, app_kwargs={"routes": live_routes(services)}))
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(server.SOCKET_PATH):
            pass
    assert refused.value.code == server.POLICY_VIOLATION
    assert client.post("/login", data={"username": "ann", "password": "wrong"}).status_code == 400
    assert client.post("/login", data={"username": "ann", "password": "secret"}).status_code == 200
    with client.websocket_connect(server.SOCKET_PATH) as ws:                # the cookie the login set
        assert _start(ws)["type"] == "ready"
    assert client.get(f"{server.STATIC_PATH}/live.js").status_code == 200
    assert client.get(f"{server.STATIC_PATH}/..%2Fserver.py").status_code == 404


class _CountingSession:
    """Stands in for a LiveSession: echoes its input and counts resets."""

    def __init__(self, settings) -> None:
        self.settings, self.resets, self.latency_ms = settings, 0, 0.0

    def push(self, samples):
        return np.asarray(samples, dtype=np.float32)

    def reset(self) -> None:
        self.resets += 1

    def stats(self) -> dict:
        return {"load": 0.0, "warning": None, "in_db": float("-inf")}


def _conversion(services):
    from voiceapp.live.session import LiveSettings

    sent: list = []
    conv = Conversion(services, sent.append, open_session=lambda settings, _: _CountingSession(settings))
    conv._handle([("start", LiveSettings(model="passthrough", device_rate=RATE))])
    return conv, sent


def test_a_gap_in_the_input_restarts_the_index_mapping(services):
    conv, sent = _conversion(services)
    ones = np.ones(100, dtype=np.float32)
    conv._handle([("audio", 0, ones), ("audio", 100, ones), ("audio", 900, ones)])
    indices = [decode_audio(item)[0] for item in sent if isinstance(item, bytes)]
    assert indices == [0, 900] and conv.session.resets == 1
    assert server.jsonable({"in_db": float("-inf"), "x": np.float32(1.5)}) == {"in_db": None, "x": 1.5}
    conv.close()


def test_a_backlog_past_the_limit_is_dropped_not_played_late(services):
    conv, sent = _conversion(services)
    too_much = int(server.MAX_BACKLOG_S * RATE) + 1
    conv._handle([("audio", 0, np.ones(too_much, dtype=np.float32))])
    assert not any(isinstance(item, bytes) for item in sent)
    assert sent[-1]["server_dropped_s"] >= server.MAX_BACKLOG_S and conv.session.resets == 1
    conv._handle([("audio", too_much, np.ones(160, dtype=np.float32))])
    assert [decode_audio(item)[0] for item in sent if isinstance(item, bytes)] == [too_much]   # live again
    conv.close()


def test_the_app_serves_the_socket_and_its_scripts_and_settings_are_read_as_typed(services):
    from voiceapp.ui.app import launch_kwargs

    kwargs = launch_kwargs(services, "127.0.0.1", 7860, False)
    paths = {route.path for route in kwargs["app_kwargs"]["routes"]}
    assert {server.SOCKET_PATH, server.STATIC_PATH + "/{name}"} <= paths and "live.js" in kwargs["head"]
    for name in server.STATIC_FILES:
        assert (server.STATIC_DIR / name).is_file()
    settings = server.settings_from({"settings": {"model": "alice", "gate_db": None, "block_ms": 60.0,
                                                  "transpose": -3}})
    assert (settings.gate_db, settings.block_ms, settings.transpose) == (None, 60, -3.0)
    for bad in ({"model": "alice", "block_ms": 60.5}, {"model": "alice", "blend": "high"}, {"model": ""}):
        with pytest.raises(VoiceAppError):
            server.settings_from({"settings": bad})
