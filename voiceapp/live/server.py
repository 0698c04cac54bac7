"""The Live tab's transport: one WebSocket per browser session on the app's own server, raw PCM both ways.

The page (voiceapp/ui/static/live.js, live-worklet.js, live-socket.js) captures the microphone in an AudioWorklet
and sends it in small frames from a Worker that holds the socket; a worker thread per socket feeds them to a
`LiveSession` and sends the output back at once.
Messages on `/live/ws`:

    page -> server  text   {"type": "start", "settings": {LiveSettings fields}}   (again: new settings, new session)
                    text   {"type": "stop"}
                    binary <f8 capture index of the first sample> + float32 mono PCM at settings.device_rate
    server -> page  text   {"type": "ready", "latency_ms", "stats"} | {"type": "stats", ...} | {"type": "error",
                           "message"} | {"type": "stopped"}
                    binary <f8 capture index of the first sample> + float32 mono PCM (the converted voice)

Capture indices count the page's AudioContext frames, so an output sample carries the index of the input sample it
belongs to (a session's output[k] belongs to its input[k]) and the page measures the delay on its own clock.
When conversion falls behind by more than MAX_BACKLOG_S the backlog is dropped and the session restarted, so the
output never drifts behind; below that the session itself degrades quality to keep up (see LiveSession.push).

Why a WebSocket and not WebRTC: on 127.0.0.1 a socket of PCM has no codec frames, no jitter buffer but the page's
own and no STUN/TURN story; the app's server already speaks it (uvicorn + `websockets`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voiceapp.errors import InputError, VoiceAppError

if TYPE_CHECKING:
    from voiceapp.live.session import LiveSession, LiveSettings
    from voiceapp.services import Services

log = logging.getLogger(__name__)

SOCKET_PATH = "/live/ws"
STATIC_PATH = "/live/static"
STATIC_DIR = Path(__file__).resolve().parents[1] / "ui" / "static"
STATIC_FILES = ("live.js", "live-worklet.js", "live-socket.js")
HEADER = struct.Struct("<d")        # capture index of a message's first sample (a double is exact up to 2**53)
MAX_BACKLOG_S = 2.0                 # unconverted input past this is dropped (and the session restarted)
STATS_EVERY_S = 0.2
MAX_SESSIONS = 2                    # live sessions converting at once on this server (each wants a core)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
POLICY_VIOLATION = 1008             # WebSocket close code: login missing, foreign page, or too many sessions


def live_routes(services: Services) -> list[BaseRoute]:
    """The socket and the page's two scripts, for `launch(app_kwargs={"routes": ...})` or any Starlette app."""
    slots = SessionSlots(MAX_SESSIONS)

    async def socket(websocket: WebSocket) -> None:
        await serve_socket(websocket, services, slots)

    return [WebSocketRoute(SOCKET_PATH, socket), Route(STATIC_PATH + "/{name}", static_file)]


def pcm_sockets_uncompressed(server: Any) -> None:
    """Turn off permessage-deflate for the sockets a running uvicorn `server` (Gradio's `Blocks.server`) opens
    from now on. uvicorn negotiates it by default and browsers offer it, so every PCM message was deflated and
    inflated on both ends, for nothing: float32 audio does not compress. The app's other traffic (Gradio's
    queue) is HTTP and server-sent events, not sockets, so only the Live tab's socket is affected."""
    config = getattr(server, "config", None)
    if config is not None and hasattr(config, "ws_per_message_deflate"):
        config.ws_per_message_deflate = False


async def static_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        return PlainTextResponse("Not found", status_code=404)
    return FileResponse(STATIC_DIR / name, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


class SessionSlots:
    """How many sockets may convert at once (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self._lock = limit, 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.used = max(0, self.used - 1)


# ----------------------------------------------------------------------------------------------- who may connect

def origin_allowed(websocket: WebSocket) -> bool:
    """Only the app's own page may open the socket (a socket is not bound by CORS: any site the user visits
    could otherwise stream through it). No Origin header (a script, not a browser) is allowed."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin_host = (urlsplit(origin).hostname or "").lower()
    hosts = {_hostname(websocket.headers.get(h, "")) for h in ("host", "x-forwarded-host")} - {""}
    if origin_host in hosts:
        return True
    return origin_host in LOCAL_NAMES and bool(hosts) and hosts <= set(LOCAL_NAMES)


def _hostname(host: str) -> str:
    return (urlsplit(f"//{host.split(',')[0].strip()}").hostname or "").lower()


async def logged_in(websocket: WebSocket) -> bool:
    """True when the app asks no login, or the socket carries the session cookie of a user Gradio logged in."""
    app = websocket.scope.get("app")
    auth, dependency = getattr(app, "auth", None), getattr(app, "auth_dependency", None)
    if auth is None and dependency is None:
        return True
    if dependency is not None:
        user = dependency(websocket)
        user = await user if asyncio.iscoroutine(user) else user
        return user is not None
    cookie_id = getattr(app, "cookie_id", "")
    token = (websocket.cookies.get(f"access-token-{cookie_id}")
             or websocket.cookies.get(f"access-token-unsecure-{cookie_id}"))
    return token is not None and token in getattr(app, "tokens", {})


# ----------------------------------------------------------------------------------------------- messages

def settings_from(message: dict[str, Any]) -> LiveSettings:
    """The `settings` of a start message -> LiveSettings (types checked; unknown fields refused)."""
    from voiceapp.live.session import LiveSettings

    given = message.get("settings")
    if not isinstance(given, dict) or not isinstance(given.get("model"), str) or not given["model"]:
        raise InputError("Live: the start message needs settings with a model name; pick a voice model and press "
                         "Start again.")
    fields = {f.name: f for f in dataclasses.fields(LiveSettings)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise InputError(f"Live: unknown settings {unknown}; known: {sorted(fields)}.")
    values: dict[str, Any] = {"model": given["model"]}
    for name in ("transpose", "blend", "gate_db"):
        if name in given:
            values[name] = None if given[name] is None and name == "gate_db" else _number(given, name, float)
    for name in ("block_ms", "lookahead_ms", "device_rate"):
        if name in given:
            values[name] = _number(given, name, int)
    if "f0_method" in given:
        values["f0_method"] = str(given["f0_method"])
    return LiveSettings(**values)


def _number(given: dict[str, Any], name: str, kind: type) -> Any:
    value = given[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InputError(f"Live: setting {name} must be a number, got {value!r}.")
    if kind is int and value != int(value):
        raise InputError(f"Live: setting {name} must be a whole number, got {value!r}.")
    return kind(value)


def decode_audio(data: bytes) -> tuple[int, np.ndarray]:
    """A binary message -> (capture index of its first sample, float32 samples)."""
    if len(data) < HEADER.size or (len(data) - HEADER.size) % 4:
        raise InputError(f"Live: an audio message of {len(data)} bytes is not an 8-byte index + float32 samples.")
    (index,) = HEADER.unpack_from(data)
    return int(index), np.frombuffer(data, dtype="<f4", offset=HEADER.size).astype(np.float32)  # push() zeroes NaN


def encode_audio(index: int, samples: np.ndarray) -> bytes:
    return HEADER.pack(float(index)) + np.ascontiguousarray(samples, dtype="<f4").tobytes()


def error_text(err: Exception) -> str:
    if isinstance(err, VoiceAppError):
        return str(err)
    log.error("live session failed", exc_info=err)
    return f"Unexpected error ({type(err).__name__}); details in logs/app.log"


# ----------------------------------------------------------------------------------------------- the conversion

class Conversion:
    """One socket's conversion on its own thread: start/stop/audio go in through `put_*`; output PCM (bytes) and
    JSON messages (dicts) come out through `emit`, called on that thread."""

    def __init__(self, services: Services, emit: Callable[[bytes | dict[str, Any]], None],
                 open_session: Callable[[LiveSettings, Services], LiveSession] | None = None) -> None:
        if open_session is None:
            from voiceapp.live.session import open_session
        self.services, self.emit, self.open_session = services, emit, open_session
        self.inbox: queue.Queue = queue.Queue()
        self.session: LiveSession | None = None
        self.thread = threading.Thread(target=self._run, name="voiceapp-live", daemon=True)
        self.thread.start()

    def put_audio(self, index: int, samples: np.ndarray) -> None:
        self.inbox.put(("audio", index, samples))

    def put_start(self, settings: LiveSettings) -> None:
        self.inbox.put(("start", settings))

    def put_stop(self) -> None:
        self.inbox.put(("stop",))

    def close(self, timeout_s: float = 10.0) -> None:
        self.inbox.put(None)
        self.thread.join(timeout_s)

    # -- on the worker thread

    def _run(self) -> None:
        from voiceapp.live.session import one_compute_thread

        try:
            with one_compute_thread():
                while True:
                    items = [self.inbox.get()]
                    while True:                   # everything that arrived while the last block converted
                        try:
                            items.append(self.inbox.get_nowait())
                        except queue.Empty:
                            break
                    if not self._handle(items):
                        return
        except Exception as err:  # noqa: BLE001 - reported to the page, logged; the socket stays usable
            self.emit({"type": "error", "message": error_text(err)})
        finally:
            self.session = None

    def _handle(self, items: list[Any]) -> bool:
        chunks: list[tuple[int, np.ndarray]] = []
        for item in items:
            if item is None:
                return False
            if item[0] == "audio":
                chunks.append(item[1:])
                continue
            self._convert(chunks)
            chunks = []
            if item[0] == "start":
                self._start(item[1])
            else:
                self.session = None
                self.emit({"type": "stopped"})
        self._convert(chunks)
        return True

    def _start(self, settings: LiveSettings) -> None:
        self.session = None
        try:
            session = self.open_session(settings, self.services)
        except Exception as err:  # noqa: BLE001 - the page shows it; Start can be pressed again
            self.emit({"type": "error", "message": error_text(err)})
            return
        self._drop_stale_audio()
        self.session, self.next_index, self.produced = session, None, 0
        self.dropped_s, self.last_stats = 0.0, 0.0
        log.info("live session: %s, %d ms blocks, %d Hz", settings.model, settings.block_ms, settings.device_rate)
        self.emit({"type": "ready", "latency_ms": float(session.latency_ms), "stats": self._stats()})

    def _drop_stale_audio(self) -> None:
        """Audio that arrived while the model loaded is old by now: converting it would start the session late."""
        keep = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if item is None or item[0] != "audio":
                keep.append(item)
        for item in keep:
            self.inbox.put(item)

    def _convert(self, chunks: list[tuple[int, np.ndarray]]) -> None:
        if self.session is None or not chunks:
            return
        rate = self.session.settings.device_rate
        backlog = sum(len(c) for _, c in chunks)
        if backlog > MAX_BACKLOG_S * rate:       # far behind: drop it, start again from the newest audio
            self.dropped_s += backlog / rate
            self.session.reset()
            self.next_index, self.produced = None, 0
            self.emit(self._stats())
            return
        run: list[np.ndarray] = []
        for index, samples in chunks:            # contiguous runs of capture indices go to push() together
            if self.next_index is not None and index != self.next_index:
                self._push(run)
                run = []
                self.session.reset()             # a gap in the input: the output mapping starts again
                self.next_index, self.produced = None, 0
            if self.next_index is None:
                self.origin = index              # the capture index of the session's input sample 0
            run.append(samples)
            self.next_index = index + len(samples)
        self._push(run)

    def _push(self, run: list[np.ndarray]) -> None:
        if not run:
            return
        out = self.session.push(np.concatenate(run))
        if len(out):
            self.emit(encode_audio(self.origin + self.produced, out))
            self.produced += len(out)
        now = time.monotonic()
        if now - self.last_stats >= STATS_EVERY_S:
            self.last_stats = now
            self.emit(self._stats())

    def _stats(self) -> dict[str, Any]:
        stats = dict(self.session.stats()) if self.session is not None else {}
        return {**stats, "type": "stats", "server_dropped_s": round(self.dropped_s, 3)}


# ----------------------------------------------------------------------------------------------- the socket

async def serve_socket(websocket: WebSocket, services: Services, slots: SessionSlots,
                       open_session: Callable[..., Any] | None = None) -> None:
    """Serve one page: refuse foreign pages and missing logins, then relay messages to a `Conversion`."""
    if not origin_allowed(websocket):
        log.warning("live socket refused: page of another site (Origin %s, Host %s)",
                    websocket.headers.get("origin"), websocket.headers.get("host"))
        await websocket.close(code=POLICY_VIOLATION)
        return
    if not await logged_in(websocket):
        log.info("live socket refused: not logged in")
        await websocket.close(code=POLICY_VIOLATION)
        return
    await websocket.accept()
    if not slots.take():
        await websocket.send_json({"type": "error", "message": f"{slots.limit} Live sessions are running on this "
                                   f"server already; stop one (close its page) and press Start again."})
        await websocket.close(code=POLICY_VIOLATION)
        return
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue = asyncio.Queue()

    def emit(item: bytes | dict[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(outbox.put_nowait, item)
        except RuntimeError:   # the loop has closed: the page is gone
            pass

    conversion = Conversion(services, emit, open_session)
    sender = asyncio.create_task(_send_all(websocket, outbox))
    try:
        await _receive_all(websocket, conversion)
    finally:
        conversion.put_stop()
        await asyncio.get_running_loop().run_in_executor(None, conversion.close)
        sender.cancel()
        slots.give_back()


async def _receive_all(websocket: WebSocket, conversion: Conversion) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    conversion.put_audio(*decode_audio(message["bytes"]))
                elif message.get("text") is not None:
                    _command(json.loads(message["text"]), conversion)
            except (VoiceAppError, ValueError) as err:
                await websocket.send_json({"type": "error", "message": str(err)})
    except WebSocketDisconnect:
        return


def _command(message: Any, conversion: Conversion) -> None:
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "start":
        conversion.put_start(settings_from(message))
    elif kind == "stop":
        conversion.put_stop()
    else:
        raise InputError(f"Live: unknown message type {kind!r}; expected start or stop.")


async def _send_all(websocket: WebSocket, outbox: asyncio.Queue) -> None:
    try:
        while True:
            item = await outbox.get()
            if isinstance(item, bytes):
                await websocket.send_bytes(item)
            else:
                await websocket.send_text(json.dumps(jsonable(item), allow_nan=False))
    except asyncio.CancelledError:
        return
    except Exception as err:  # noqa: BLE001 - the page has gone (each server stack names that differently)
        log.debug("live socket closed while sending: %r", err)


def jsonable(value: Any) -> Any:
    """Stats -> plain JSON: numpy scalars as numbers, -inf/nan (silence) as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
