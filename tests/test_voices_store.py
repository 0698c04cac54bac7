"""Voice-model store: import (.pth/.index/.zip, disk or URL), safety checks, info, rename, delete, export, CLI."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from helpers import FAISS_HEAD, voice_dict, write_pth
from voiceapp import cli
from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.voices import store
from voiceapp.voices.importer import StoreLimits, import_model

class Touch:
    """An object whose unpickling would create a file: what a malicious model does (harmlessly here)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def zip_of(path: Path, members: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data.read_bytes() if isinstance(data, Path) else data)
    return path


def store_files(ws) -> list[Path]:
    return sorted(p for p in ws.voices_dir.rglob("*") if p.is_file()) if ws.voices_dir.exists() else []


def test_import_pth_and_index_then_info(workspace, tmp_path):
    pth = write_pth(tmp_path / "Alice Voice.pth")
    index = tmp_path / "added_IVF8_Flat_nprobe_1_Alice_v2.index"
    index.write_bytes(FAISS_HEAD)
    result = import_model(workspace, [pth, index])
    assert result.name == "Alice_Voice" and not result.replaced
    assert result.pth == workspace.voices_dir / "Alice_Voice" / "Alice_Voice.pth"
    assert result.index == workspace.voices_dir / "Alice_Voice" / "Alice_Voice.index"
    info = store.model_info(workspace, "Alice_Voice")
    assert (info["version"], info["sample_rate"], info["f0"], info["epochs"]) == ("v2", 40000, True, 120)
    assert info["encoder"] == "contentvec" and info["speakers"] == 2 and info["content_dim"] == 768
    assert info["index_present"] and len(info["sha256"]) == 64 and info["size_bytes"] == pth.stat().st_size
    assert [m.name for m in store.list_models(workspace)] == ["Alice_Voice"]


def test_applio_metadata_and_v1_nof0(workspace, tmp_path):
    import_model(workspace, write_pth(tmp_path / "a.pth", applio=True), name="applio")
    info = store.model_info(workspace, "applio", with_hash=False)
    assert (info["epochs"], info["step"], info["encoder"], info["author"]) == (150, 3000, "whisper-tiny", "me")
    import_model(workspace, write_pth(tmp_path / "old.pth", version="v1", f0=0, sr=32000))
    info = store.model_info(workspace, "old", with_hash=False)
    assert (info["version"], info["f0"], info["sample_rate"], info["content_dim"]) == ("v1", False, 32000, 256)
    assert not info["index_present"]


def test_info_without_the_network_loader_matches(workspace, tmp_path, monkeypatch):
    import sys

    import_model(workspace, write_pth(tmp_path / "kim.pth", applio=True))
    full = store.model_info(workspace, "kim", with_hash=False)
    monkeypatch.setitem(sys.modules, "voiceapp.voices.rvc", None)  # info never builds or imports the network loader
    own = store.model_info(workspace, "kim", with_hash=False)
    keys = ["version", "sample_rate", "f0", "epochs", "step", "encoder", "content_dim", "speakers", "author"]
    assert [own[k] for k in keys] == [full[k] for k in keys] == ["v2", 40000, True, 150, 3000, "whisper-tiny", 768,
                                                                 2, "me"]


def test_zip_import_matches_index_to_model(workspace, tmp_path):
    pth = write_pth(tmp_path / "src" / "bob.pth")
    archive = zip_of(tmp_path / "bob_rvc.zip", {
        "bob/bob.pth": pth, "bob/G_2333333.pth": torch_bytes(tmp_path, {"model": {}, "iteration": 3}),
        "bob/trained_IVF8_Flat_nprobe_1_bob_v2.index": FAISS_HEAD,
        "bob/added_IVF8_Flat_nprobe_1_bob_v2.index": FAISS_HEAD + b"added",
        "__MACOSX/bob/._bob.pth": b"junk", "bob/readme.txt": b"hi"})
    result = import_model(workspace, archive)
    assert result.name == "bob"
    assert result.index.read_bytes() == FAISS_HEAD + b"added"
    assert any("G_2333333" in n for n in result.notes) and any("readme.txt" in n for n in result.notes)
    assert [p.name for p in store_files(workspace)] == ["bob.index", "bob.pth"]


def torch_bytes(tmp_path: Path, obj) -> bytes:
    path = tmp_path / "obj.pt"
    torch.save(obj, path)
    return path.read_bytes()


def test_existing_model_needs_overwrite(workspace, tmp_path):
    import_model(workspace, write_pth(tmp_path / "carol.pth", seed=1))
    before = (workspace.voices_dir / "carol" / "carol.pth").read_bytes()
    newer = write_pth(tmp_path / "new" / "carol.pth", seed=2)
    with pytest.raises(InputError, match="already exists"):
        import_model(workspace, newer)
    assert (workspace.voices_dir / "carol" / "carol.pth").read_bytes() == before
    result = import_model(workspace, newer, overwrite=True)
    assert result.replaced and result.pth.read_bytes() == newer.read_bytes()
    assert not any(p.name.startswith(".model-") for p in workspace.downloads_dir.iterdir())


@pytest.mark.parametrize("member", ["../evil.pth", "/abs/evil.pth", "ok/../../evil.index", "C:/win/evil.pth"])
def test_unsafe_zip_member_refuses_everything(workspace, tmp_path, member):
    pth = write_pth(tmp_path / "src" / "dave.pth")
    archive = zip_of(tmp_path / "dave.zip", {"dave.pth": pth, member: pth})
    with pytest.raises(InputError, match="refused and nothing was written"):
        import_model(workspace, archive)
    assert store_files(workspace) == []
    assert not (workspace.models_dir / "evil.pth").exists() and not (tmp_path / "evil.pth").exists()


def test_symlink_zip_bomb_and_member_count_refused(workspace, tmp_path):
    pth = write_pth(tmp_path / "src" / "erin.pth")
    link = zipfile.ZipInfo("erin/link.pth")
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        zf.writestr("erin/erin.pth", pth.read_bytes())
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        import_model(workspace, tmp_path / "link.zip")
    bomb = zip_of(tmp_path / "bomb.zip", {"erin.pth": pth, "big.index": bytes(20_000_000)})
    with pytest.raises(InputError, match="zip bomb"):
        import_model(workspace, bomb)
    many = zip_of(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(10)} | {"erin.pth": pth})
    with pytest.raises(InputError, match="members"):
        import_model(workspace, many, limits=StoreLimits(max_zip_members=5))
    with pytest.raises(InputError, match="unpacks to more than"):
        import_model(workspace, many, limits=StoreLimits(max_unpacked_bytes=1000))
    assert store_files(workspace) == []


def test_code_carrying_pickle_is_refused_and_never_run(workspace, tmp_path):
    sentinel = tmp_path / "pwned"
    ckpt = voice_dict()
    ckpt["info"] = Touch(sentinel)
    evil = tmp_path / "evil.pth"
    torch.save(ckpt, evil)
    with pytest.raises(InputError, match="Python code|run code"):
        import_model(workspace, evil)
    archive = zip_of(tmp_path / "evil.zip", {"x/evil.pth": evil, "x/added_1.index": FAISS_HEAD})
    with pytest.raises(InputError, match="Python code|run code"):
        import_model(workspace, archive)
    assert not sentinel.exists()
    assert store_files(workspace) == []


def test_training_checkpoint_and_garbage_refused(workspace, tmp_path):
    g = tmp_path / "G_100.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "iteration": 1}, g)
    with pytest.raises(InputError, match="training checkpoint"):
        import_model(workspace, g)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02not really")
    with pytest.raises(InputError, match="not a readable PyTorch file"):
        import_model(workspace, junk)
    with pytest.raises(InputError, match="not a .pth"):
        import_model(workspace, tmp_path / "notes.txt" if (tmp_path / "notes.txt").write_text("x") else None)
    assert store_files(workspace) == []


def test_index_alone_is_added_to_an_existing_model(workspace, tmp_path):
    import_model(workspace, write_pth(tmp_path / "fay.pth"))
    index = tmp_path / "added_IVF4_Flat_nprobe_1_fay_v2.index"
    index.write_bytes(FAISS_HEAD)
    with pytest.raises(InputError, match="existing model"):
        import_model(workspace, index)
    result = import_model(workspace, index, name="fay")
    assert result.index == workspace.voices_dir / "fay" / "fay.index"
    with pytest.raises(InputError, match="already has an index"):
        import_model(workspace, index, name="fay")


def test_rename_delete_export_roundtrip(workspace, tmp_path):
    import_model(workspace, [write_pth(tmp_path / "gus.pth"), _index(tmp_path)])
    (workspace.voices_dir / "gus" / "gus_e10_s100.pth").write_bytes(b"x")
    store.rename_model(workspace, "gus", "Gus 2")
    assert sorted(p.name for p in (workspace.voices_dir / "Gus_2").iterdir()) == [
        "Gus_2.index", "Gus_2.pth", "Gus_2_e10_s100.pth"]
    out = store.export_model(workspace, "Gus_2", tmp_path / "out" / "gus.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["Gus_2.index", "Gus_2.pth"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    again = import_model(workspace, out, name="copy")
    assert again.pth.read_bytes() == (workspace.voices_dir / "Gus_2" / "Gus_2.pth").read_bytes()
    with pytest.raises(InputError, match="confirm"):
        store.delete_model(workspace, "copy")
    store.delete_model(workspace, "copy", confirm=True)
    assert not (workspace.voices_dir / "copy").exists()
    with pytest.raises(MissingArtifactError):
        store.model_info(workspace, "copy")


def _index(tmp_path: Path) -> Path:
    path = tmp_path / "added_IVF4_Flat_nprobe_1_gus_v2.index"
    path.write_bytes(FAISS_HEAD)
    return path


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_import_from_url_with_progress_and_size_cap(workspace, tmp_path, file_server):
    root, base = file_server
    zip_of(root / "hana.zip", {"hana.pth": write_pth(tmp_path / "hana.pth"), "added_hana.index": FAISS_HEAD})
    seen = []
    result = import_model(workspace, f"{base}/hana.zip", progress=lambda f, m: seen.append((f, m)))
    assert result.name == "hana" and result.index is not None
    assert any("downloading" in m for _, m in seen) and seen[-1][0] == 1.0
    with pytest.raises(InputError, match="limit"):
        import_model(workspace, f"{base}/hana.zip", name="other", limits=StoreLimits(max_download_bytes=100))
    assert [m.name for m in store.list_models(workspace)] == ["hana"]
    with pytest.raises(InputError, match="http"):
        import_model(workspace, "ftp://example.invalid/x.zip")


def test_cli_models_and_assets(workspace, tmp_path, capsys):
    root = ["--root", str(workspace.root)]
    pth = write_pth(tmp_path / "ivy.pth")
    assert cli.main(["models", "import", str(pth), *root]) == 0
    assert cli.main(["models", "import", str(pth), *root]) == 2  # exists, no --overwrite
    assert cli.main(["models", "import", str(pth), "--overwrite", *root]) == 0
    assert cli.main(["models", "list", *root]) == 0
    assert "ivy" in capsys.readouterr().out
    assert cli.main(["models", "info", "ivy", "--json", *root]) == 0
    assert '"sample_rate": 40000' in capsys.readouterr().out
    assert cli.main(["models", "rename", "ivy", "ivo", *root]) == 0
    assert cli.main(["models", "export", "ivo", "--out", str(tmp_path / "ivo.zip"), *root]) == 0
    assert (tmp_path / "ivo.zip").is_file()
    assert cli.main(["models", "delete", "ivo", *root]) == 2
    assert cli.main(["models", "delete", "ivo", "--yes", *root]) == 0
    assert cli.main(["assets", "list", *root]) == 0
    out = capsys.readouterr().out
    assert "rmvpe" in out and "lj1995/VoiceConversionWebUI" in out
    assert cli.main(["assets", "download", "nope", *root]) == 2
    stranger = tmp_path / "x.bin"
    stranger.write_bytes(b"abc")
    assert cli.main(["assets", "import", str(stranger), *root]) == 2
