"""Setup errors (issue 14, point 5): a read-only workspace or output folder, permission denied and a full disk are
VoiceAppErrors that say what and where, exit 2, and leave no partial file.

Tests run as root on CI, where chmod does not stop writes: the disk's refusal is simulated by patching the
system calls (os.open, os.mkdir, open) for one folder, and a full disk by a writer that raises ENOSPC.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import gradio as gr
import pytest

from helpers import harmonic, make_voice, phrase_with_gaps, write_wav
from voiceapp import cli


def _root(workspace):
    return ["--root", str(workspace.root)]


def refuse_writes(monkeypatch, folder: Path, code: int = errno.EROFS) -> None:
    """From now on, creating or writing any file or folder under `folder` fails with `code`, as the kernel does."""
    top = os.path.abspath(folder)
    real_os_open, real_mkdir, real_open = os.open, os.mkdir, builtins.open

    def inside(path) -> bool:
        try:
            name = os.path.abspath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            return False
        return name == top or name.startswith(top + os.sep)

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    def os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path) and not os.path.isdir(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and inside(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "unexpected" not in err, err


def test_read_only_workspace(tmp_path, workspace, monkeypatch, capsys):
    from helpers import write_pth

    take = write_wav(tmp_path / "take.wav", phrase_with_gaps(16000, n=2), 16000)
    assert cli.main(["dataset", "alice", str(take), *_root(workspace)]) == 0
    pth = write_pth(tmp_path / "bob.pth")
    capsys.readouterr()
    refuse_writes(monkeypatch, workspace.root)
    commands = [["dataset", "carol", str(take)],
                ["features", "alice", "--dataset", "alice", "--encoder", "fake", "--f0-method", "pm"],
                ["train", "alice", "--preset", "tiny"],
                ["models", "import", str(pth)],
                ["index", "alice"]]
    for command in commands:
        code = cli.main([*command, *_root(workspace)])
        err = capsys.readouterr().err
        assert code == 2, (command, err)
        _no_traceback(err)
        assert "cannot write the log file" in err and "voiceapp.log" in err  # one warning, then the console
        if command[0] != "index":  # index stops earlier: no features (nothing could be written)
            assert "read-only disk" in err and str(workspace.root) in err, (command, err)
    assert not workspace.dataset("carol").root.exists() and not workspace.experiment("alice").root.exists()


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only disk"), (errno.EACCES, "permission denied")])
def test_unwritable_output_folder(tmp_path, workspace, monkeypatch, capsys, code, words):
    make_voice(workspace, "bob", sample_rate=32000)
    src = write_wav(tmp_path / "a.wav", harmonic(200, 0.3, 16000), 16000)
    out_dir = tmp_path / "locked"
    out_dir.mkdir()
    refuse_writes(monkeypatch, out_dir, code)
    for out in (out_dir / "a.wav", out_dir / "sub" / "a.wav", out_dir):
        assert cli.main(["infer", "--model", "bob", "--input", str(src), "--out", str(out), "--f0-method", "pm",
                         *_root(workspace)]) == 2
        err = capsys.readouterr().err
        _no_traceback(err)
        assert words in err and str(out_dir) in err
    assert list(out_dir.iterdir()) == []


def _disk_full_writer(monkeypatch):
    """soundfile.write that writes half a file and then finds the disk full."""
    import voiceapp.audio.io as audio_io

    def write(file, data, samplerate, **kwargs):
        Path(file).write_bytes(b"RIFF" + bytes(1000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(audio_io.sf, "write", write)


def test_disk_full_conversion(tmp_path, workspace, monkeypatch, capsys):
    make_voice(workspace, "bob", sample_rate=32000)
    folder = tmp_path / "in"
    for name in ("a.wav", "b.wav"):
        write_wav(folder / name, harmonic(200, 0.3, 16000), 16000)
    _disk_full_writer(monkeypatch)
    out = tmp_path / "out"
    for target in (out / "a.wav", out):  # one file, then a folder (stops at the first file)
        source = folder / "a.wav" if target.suffix else folder
        assert cli.main(["infer", "--model", "bob", "--input", str(source), "--out", str(target), "--f0-method",
                         "pm", *_root(workspace)]) == 2
        err = capsys.readouterr().err
        _no_traceback(err)
        assert "the disk is full" in err and str(out) in err and "free some space" in err.lower()
    assert list(out.rglob("*")) == []  # the half-written file is gone


def test_disk_full_dataset_removes_its_partial_files(tmp_path, workspace, monkeypatch, capsys):
    take = write_wav(tmp_path / "take.wav", phrase_with_gaps(16000, n=3), 16000)
    _disk_full_writer(monkeypatch)
    assert cli.main(["dataset", "dora", str(take), *_root(workspace)]) == 2
    err = capsys.readouterr().err
    _no_traceback(err)
    assert "the disk is full" in err and "clips" in err
    assert not workspace.dataset("dora").root.exists()  # a new dataset that got nothing leaves no folder


def test_a_writer_that_hides_the_reason_is_diagnosed(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from voiceapp.audio import save_audio
    from voiceapp.errors import StorageError

    import voiceapp.audio.io as audio_io

    def write(file, data, samplerate, **kwargs):
        raise RuntimeError("Error opening 'x.wav': System error.")  # libsndfile's words on a full disk

    monkeypatch.setattr(audio_io.sf, "write", write)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 0))
    with pytest.raises(StorageError, match="disk is full"):
        save_audio(tmp_path / "x.wav", harmonic(200, 0.1, 16000), 16000)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 0, 10**9))
    with pytest.raises(RuntimeError, match="System error"):  # not the disk: the error stays what it is
        save_audio(tmp_path / "x.wav", harmonic(200, 0.1, 16000), 16000)


def test_unwritable_log_file_falls_back_to_the_console(tmp_path, capsys):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "logs").write_text("a file where the logs folder should be")
    assert cli.main(["models", "list", "--root", str(root)]) == 0
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1 and "Traceback" not in err
    import logging

    import app as entry

    before = list(logging.getLogger().handlers)
    entry.setup_logging(root)
    assert "cannot write the log file" in capsys.readouterr().err
    for handler in set(logging.getLogger().handlers) - set(before):
        logging.getLogger().removeHandler(handler)


def test_the_web_app_shows_setup_errors_as_messages(tmp_path, services, monkeypatch):
    from voiceapp.ui.jobs import run_job

    def job(progress):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.wav"))

    with pytest.raises(gr.Error, match="the disk is full"):
        run_job(job)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_real_read_only_folder(tmp_path, workspace, capsys):
    make_voice(workspace, "bob", sample_rate=32000)
    src = write_wav(tmp_path / "a.wav", harmonic(200, 0.3, 16000), 16000)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert cli.main(["infer", "--model", "bob", "--input", str(src), "--out", str(locked / "a.wav"),
                         "--f0-method", "pm", *_root(workspace)]) == 2
        assert "permission denied" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)
