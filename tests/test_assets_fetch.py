"""The one downloader (`voiceapp.assets.download.fetch`) against a local server: resume, restart, checks, errors."""

from __future__ import annotations

import hashlib
import http.server
import re

import pytest

from helpers import local_server
from voiceapp.assets.download import DownloadError, fetch

DATA = bytes(range(256)) * 2000  # 512,000 bytes


class Server:
    """GET /file (Range honoured unless `ignore_range`); `cuts` is how many of the next GETs send half and close."""

    def __init__(self) -> None:
        self.cuts = 0
        self.ignore_range = False
        self.requests: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                server.requests.append(rng)
                if self.path != "/file":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = int(re.match(r"bytes=(\d+)-", rng).group(1)) if rng and not server.ignore_range else 0
                body = DATA[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Disposition", 'attachment; filename="voice.zip"')
                self.end_headers()
                if server.cuts:
                    server.cuts -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.handler = Handler
        self.url = ""


@pytest.fixture
def server():
    s = Server()
    with local_server(s.handler) as s.url:
        yield s


def test_fetch_resumes_a_broken_transfer_with_a_range(server, tmp_path):
    server.cuts = 1
    seen = []
    got = fetch(f"{server.url}/file", tmp_path / "out.bin", progress=lambda f, m: seen.append((f, m)))
    assert (tmp_path / "out.bin").read_bytes() == DATA and got.sha256 == hashlib.sha256(DATA).hexdigest()
    assert server.requests == [None, f"bytes={len(DATA) // 2}-"]
    assert got.server_name == "voice.zip" and seen[-1][0] == 1.0 and "downloading voice.zip" in seen[-1][1]
    assert not (tmp_path / "out.bin.part").exists()


def test_fetch_starts_again_when_the_server_ignores_the_range(server, tmp_path):
    server.cuts, server.ignore_range = 1, True
    fetch(f"{server.url}/file", tmp_path / "out.bin", size=len(DATA))
    assert (tmp_path / "out.bin").read_bytes() == DATA and len(server.requests) == 2


def test_fetch_retries_a_bad_file_then_gives_up_leaving_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="wrong bytes"):
        fetch(f"{server.url}/file", tmp_path / "out.bin", check=lambda path, sha256: "wrong bytes", attempts=2,
              part=tmp_path / "staging" / "out.part")
    assert server.requests == [None, None]
    assert not (tmp_path / "out.bin").exists() and not any((tmp_path / "staging").iterdir())


def test_fetch_does_not_retry_a_missing_file(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        fetch(f"{server.url}/nope", tmp_path / "out.bin", attempts=3)
    assert len(server.requests) == 1 and not err.value.retry
