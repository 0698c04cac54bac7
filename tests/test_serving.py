"""Nothing exposed (issue 14, points 3 and 4): what the web server serves, who may log in, and which
server folders the web endpoints accept.

The HTTP tests launch the real app on 127.0.0.1 in this process and fetch `/gradio_api/file=...`.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import gradio as gr
import pytest

from helpers import harmonic, write_wav
from voiceapp.errors import InputError
from voiceapp.ui import serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def _fake_app_folder(root: Path) -> dict[str, Path]:
    """What `./launch.sh` serves from: the app folder is the workspace (no --root)."""
    files = {"app": root / "app.py", "env": root / ".env", "source": root / "voiceapp" / "cli.py",
             "app_log": root / "logs" / "app.log", "cli_log": root / "logs" / "voiceapp.log",
             "exp": root / "logs" / "alice" / "train.json", "model": root / "models" / "voices" / "a" / "a.pth",
             "venv": root / ".venv" / "pyvenv.cfg"}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("SECRET=hunter2\n")
    return files


@pytest.fixture
def launched(tmp_path, monkeypatch):
    """Start the app over a workspace that is also its app folder; yields (url, workspace, upload folder, start)."""
    from voiceapp.services import Services
    from voiceapp.ui.app import build_app, launch_kwargs

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    apps = []

    def start(auth=None, app_root: Path | None = None):
        upload = serving.instance_upload_dir()
        root = app_root or tmp_path / "app"
        monkeypatch.setattr(serving, "APP_DIR", root)
        services = Services.create(root, "cpu")
        app = build_app(services)
        port = _free_port()
        app.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(services, "127.0.0.1", port, False, auth))
        apps.append(app)
        return f"http://127.0.0.1:{port}", services.workspace, upload

    yield start
    for app in apps:
        app.close()


def test_only_what_the_app_makes_is_served(tmp_path, launched):
    secrets = _fake_app_folder(tmp_path / "app")
    url, ws, upload = launched()
    output = write_wav(ws.outputs_dir / "converted" / "bob" / "take.wav", harmonic(200, 0.2, 16000), 16000)
    clip = write_wav(ws.dataset("alice").clips_dir / "c_00001.wav", harmonic(220, 0.2, 16000), 16000)
    assert _get(url)[0] == 200
    for path in (output, clip):
        status, body = _get(f"{url}/gradio_api/file={path}")
        assert status == 200 and body == path.read_bytes(), path
    repo_source = Path(__file__).resolve().parents[1] / "voiceapp" / "cli.py"
    for name, path in [*secrets.items(), ("repo source", repo_source)]:
        for form in (str(path), urllib.parse.quote(str(path))):
            status, body = _get(f"{url}/gradio_api/file={form}")
            assert status in (403, 404) and b"hunter2" not in body, (name, status)
    # uploads land in this instance's own folder and are served; another instance's uploads are not
    boundary = "voiceapp-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"up.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + output.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        uploaded = Path(__import__("json").loads(response.read())[0])
    assert upload in uploaded.parents and _get(f"{url}/gradio_api/file={uploaded}")[0] == 200
    other = tmp_path / "gradio-tmp" / "voiceapp-uploads-other" / "theirs.wav"
    other.parent.mkdir(parents=True)
    other.write_bytes(output.read_bytes())
    assert _get(f"{url}/gradio_api/file={other}")[0] == 403


def test_a_login_is_required_when_auth_is_given(tmp_path, launched):
    url, ws, _ = launched(auth=[("ann", "s3cret:x")])
    output = write_wav(ws.outputs_dir / "a.wav", harmonic(200, 0.2, 16000), 16000)
    assert _get(f"{url}/gradio_api/file={output}")[0] == 401
    form = urllib.parse.urlencode({"username": "ann", "password": "wrong"}).encode()
    assert _get_post(f"{url}/login", form)[0] == 400
    status, cookies = _get_post(f"{url}/login", urllib.parse.urlencode({"username": "ann",
                                                                           "password": "s3cret:x"}).encode())
    assert status == 200 and cookies
    assert _get(f"{url}/gradio_api/file={output}", {"Cookie": cookies})[0] == 200


def _get_post(url: str, data: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            cookies = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or []]
            return response.status, "; ".join(cookies)
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_file_access_lists(tmp_path, workspace):
    app_dir = tmp_path / "app"
    _fake_app_folder(app_dir)
    lists = serving.file_access(workspace, app_dir)
    assert lists["allowed_paths"] == [str(workspace.outputs_dir), str(workspace.datasets_dir)]
    blocked = set(lists["blocked_paths"])
    assert {str(workspace.logs_dir), str(workspace.models_dir), str(app_dir / "app.py"), str(app_dir / ".env"),
            str(app_dir / "voiceapp"), str(app_dir / "logs")} <= blocked
    ws_in_app = serving.Workspace(app_dir)  # ./launch.sh: the workspace is the app folder
    blocked = set(serving.file_access(ws_in_app, app_dir)["blocked_paths"])
    assert str(app_dir / "app.py") in blocked and str(app_dir / "logs") in blocked
    assert str(app_dir) not in blocked and str(ws_in_app.outputs_dir) not in blocked


def test_exposure_warnings_and_logins(tmp_path):
    assert serving.is_loopback("127.0.0.1") and serving.is_loopback("localhost") and serving.is_loopback("::1")
    assert not serving.is_loopback("0.0.0.0") and not serving.is_loopback("192.168.1.5")
    assert serving.exposure_warnings("127.0.0.1", False, None) == []
    host, share = serving.exposure_warnings("0.0.0.0", True, None)
    assert "--host 0.0.0.0" in host and "--auth" in host and "gradio.live" in share
    assert "A login is required" in serving.exposure_warnings("0.0.0.0", False, [("a", "b")])[0]
    logins = tmp_path / "logins.txt"
    logins.write_text("# team\nann:pw1\n\nbob:pw:2\n")
    assert serving.read_logins(["cy:pw3"], logins) == [("cy", "pw3"), ("ann", "pw1"), ("bob", "pw:2")]
    assert serving.read_logins(None, None) is None
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(InputError, match="USER:PASSWORD"):
            serving.read_logins([bad], None)
    with pytest.raises(InputError, match="Cannot read the login file"):
        serving.read_logins(None, tmp_path / "missing.txt")


def test_app_entry_prints_warnings_and_refuses_a_bad_login(monkeypatch, capsys):
    import app as entry

    args = entry.parse_args(["--host", "0.0.0.0", "--auth", "a:b", "--auth", "c:d", "--auth-file", "f.txt"])
    assert args.auth == ["a:b", "c:d"] and args.auth_file == Path("f.txt")
    with pytest.raises(SystemExit) as exit_:
        entry.main(["--auth", "broken"])
    assert exit_.value.code == 2 and "USER:PASSWORD" in capsys.readouterr().err


def test_two_instances_get_their_own_upload_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "shared"))
    first = serving.instance_upload_dir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "shared"))
    second = serving.instance_upload_dir()
    assert first != second and first.parent == second.parent == (tmp_path / "shared").resolve()


# --- point 4: server folders typed into the web app -------------------------------------------------------

SETTINGS = {"transpose_semitones": 0, "f0_method": "pm", "index_rate": 0.0, "filter_radius": 3,
            "rms_mix_rate": 0.25, "protect": 0.33, "resample_sr": 0, "speaker_id": 0, "seed": 0,
            "f0_curve": None}  # the Inference tab's settings by name (neighbour blend at its default)
DATASET_SETTINGS = ["40000", True, False, "dsp", -42, 1500, 400, 15, 500, 3.7, 0.3, False]


def test_typed_folders_must_be_inside_the_workspace(tmp_path, workspace, services):
    from helpers import make_voice
    from voiceapp.ui import dataset_tab, infer_tab, separate_tab

    outside = tmp_path / "elsewhere"
    write_wav(outside / "a.wav", harmonic(200, 0.3, 16000), 16000)
    with pytest.raises(gr.Error, match="outside"):
        dataset_tab.prepare(services, [], str(outside), "alice", *DATASET_SETTINGS)
    with pytest.raises(gr.Error, match="outside"):
        separate_tab.separate_songs(services, [], str(outside), "dsp", "wav")
    with pytest.raises(gr.Error, match="outside"):
        separate_tab.train_separator_ui(services, str(outside), "sep", 1, "tiny")
    model = make_voice(workspace, "bob", sample_rate=32000)
    with pytest.raises(gr.Error, match="outside"):
        infer_tab.convert_many(services, str(model), "", None, str(outside), "", "wav", SETTINGS)
    inside = workspace.root / "takes"
    write_wav(inside / "a.wav", harmonic(200, 0.3, 16000), 16000)
    for out in (str(tmp_path / "out"), str(workspace.logs_dir), "../out"):  # outputs go to outputs/ only
        with pytest.raises(gr.Error, match="outside"):
            infer_tab.convert_many(services, str(model), "", None, "takes", out, "wav", SETTINGS)
    (workspace.root / "link").symlink_to(outside)  # a link out of the workspace is outside too
    with pytest.raises(gr.Error, match="outside"):
        dataset_tab.prepare(services, [], "link", "alice", *DATASET_SETTINGS)
    rows, summary = infer_tab.convert_many(services, str(model), "", None, "takes", "outputs/mine", "wav", SETTINGS)
    assert rows[0][1].startswith("ok") and (workspace.outputs_dir / "mine" / "a.wav").is_file()
    assert not list(tmp_path.glob("out*")) and not (outside / "a_bob.wav").exists()


def test_typed_folders_are_refused_when_the_app_is_shared(workspace, services):
    from voiceapp.ui import dataset_tab, separate_tab

    services.shared = True
    inside = workspace.root / "takes"
    write_wav(inside / "a.wav", harmonic(200, 0.3, 16000), 16000)
    for call in (lambda: dataset_tab.prepare(services, [], str(inside), "alice", *DATASET_SETTINGS),
                 lambda: separate_tab.separate_songs(services, [], str(inside), "dsp", "wav")):
        with pytest.raises(gr.Error, match="shared"):
            call()
    assert not workspace.dataset("alice").root.exists()
