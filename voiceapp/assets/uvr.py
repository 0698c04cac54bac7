"""The UVR model catalogue: Ultimate Vocal Remover / audio-separator models that the Separate tab can use by name.

Each entry names its files (the published file names; they land in `models/uvr/`), where they come from, their
size and checksums when they are on record, the licence, what the model is for (`PURPOSES`) and the facts the
engine needs (for MDX-Net ONNX files the model data UVR keeps per file: n_fft, dim_f, dim_t, compensate, primary
stem; MDX23C / RoFormer checkpoints carry theirs in the yaml config that comes with them).

Checks: size, sha256 and UVR's own file hash (md5 of the last 10,000 KiB, the key of UVR's model data) when on
record, and always a structural check (the ONNX graph opens and has the input the model data expects; a checkpoint
loads with `torch.load(weights_only=True)`; a yaml config parses and has `audio`, `model` and `training`).

Downloads go through the one downloader (`assets/download.py`: progress, resume, atomic placement). The mirror
setting ($VOICEAPP_UVR_MIRROR, or `mirror=`) is a base address under which every file is found by its file name
(`<mirror>/<file name>`), e.g. a Hugging Face copy of the UVR release or a folder served on the LAN.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from voiceapp.assets.download import CHUNK, DownloadError, fetch
from voiceapp.errors import InputError, MissingArtifactError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.workspace import Workspace, user_path

log = logging.getLogger(__name__)

MIRROR_ENV = "VOICEAPP_UVR_MIRROR"
UVR_RELEASE = "https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models"
UVR_CONFIGS = "https://raw.githubusercontent.com/TRvlvr/application_data/main/mdx_model_data/mdx_c_configs"
AUDIO_SEPARATOR_RELEASE = "https://github.com/nomadkaraoke/python-audio-separator/releases/download/model-configs"
UVR_HASH_TAIL_BYTES = 10_000 * 1024

Purpose = Literal["vocals", "karaoke", "dereverb"]
PURPOSES: dict[str, str] = {
    "vocals": "Vocals / instrumental",
    "karaoke": "Karaoke: lead vocals vs backing (and music)",
    "dereverb": "De-reverb / de-echo",
}
Family = Literal["mdx", "mdxc"]
FAMILY_TITLES = {"mdx": "MDX-Net (ONNX)", "mdxc": "MDX23C / RoFormer (checkpoint + yaml)"}

_UVR_LICENCE = ("UVR public model release (Ultimate Vocal Remover, MIT); no separate licence file comes with "
                "the weights")
_COMMUNITY = "community model shared for UVR / audio-separator; the authors state no licence: personal use"


@dataclass(frozen=True)
class UvrFile:
    name: str                   # the published file name (also its name in models/uvr/)
    url: str                    # where it is published
    size: int | None = None     # bytes, when on record
    sha256: str | None = None   # when on record
    uvr_hash: str | None = None  # md5 of the last 10,000 KiB (UVR's model-data key), when on record

    @property
    def kind(self) -> str:
        return {".onnx": "onnx", ".ckpt": "checkpoint", ".pth": "checkpoint", ".yaml": "yaml",
                ".yml": "yaml"}.get(Path(self.name).suffix.lower(), "file")


@dataclass(frozen=True)
class MdxParams:
    """UVR's model data for one MDX-Net ONNX file."""

    n_fft: int
    dim_f: int
    dim_t_exp: int              # the network sees 2 ** dim_t_exp STFT frames
    compensate: float           # the other stem = mix - primary * compensate
    primary_stem: str           # what the network outputs: "Vocals", "Instrumental", "Reverb", ...
    hop_length: int = 1024


@dataclass(frozen=True)
class UvrModel:
    name: str                   # our name: the CLI's --model and the picker's value
    title: str
    purpose: Purpose
    family: Family
    files: tuple[UvrFile, ...]  # the model file first, then its yaml config (mdxc)
    licence: str
    about: str
    mdx: MdxParams | None = None
    voice_stems: tuple[str, ...] = ("vocals",)  # the stem(s) written as the first output ("vocals")
    stem_names: tuple[str, str] = ("vocals", "instrumental")  # output file names: voice stem, the rest
    approx_mb: float | None = None  # shown when the exact size is not on record

    @property
    def model_file(self) -> UvrFile:
        return self.files[0]

    @property
    def config_file(self) -> UvrFile | None:
        return self.files[1] if len(self.files) > 1 else None

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files if f.kind != "yaml"]
        return sum(sizes) if all(s is not None for s in sizes) else None

    def size_text(self, ws: Workspace | None = None) -> str:
        """The size on record; else, when the files are on disk, their size there; else an estimate or "?"."""
        if self.size is not None:
            return f"{self.size / 1e6:,.1f} MB"
        if ws is not None and all(p.is_file() for p in self.paths(ws)):
            return f"{sum(p.stat().st_size for p in self.paths(ws)) / 1e6:,.1f} MB"
        return f"about {self.approx_mb:,.0f} MB" if self.approx_mb else "size not on record"

    def paths(self, ws: Workspace) -> list[Path]:
        return [ws.uvr_models_dir / f.name for f in self.files]


def _mdx(name: str, title: str, purpose: Purpose, file: UvrFile, params: MdxParams, about: str,
         **kw: Any) -> UvrModel:
    return UvrModel(name, title, purpose, "mdx", (file,), kw.pop("licence", _UVR_LICENCE), about, params, **kw)


UVR_MODELS: dict[str, UvrModel] = {m.name: m for m in (
    _mdx("kim-vocal-2", "Kim Vocal 2", "vocals",
         UvrFile("Kim_Vocal_2.onnx", f"{UVR_RELEASE}/Kim_Vocal_2.onnx", 66_759_214,
                 "ce74ef3b6a6024ce44211a07be9cf8bc6d87728cc852a68ab34eb8e58cde9c8b",
                 "970b3f9492014d18fefeedfe4773cb42"),
         MdxParams(7680, 3072, 8, 1.009, "Vocals"),
         "MDX-Net vocal model by Kimberley Jensen: clean lead vocals; the usual first pick for training sets."),
    _mdx("uvr-mdx-net-voc-ft", "UVR-MDX-NET Voc FT", "vocals",
         UvrFile("UVR-MDX-NET-Voc_FT.onnx", f"{UVR_RELEASE}/UVR-MDX-NET-Voc_FT.onnx", 66_762_490, None,
                 "77d07b2667ddf05b9e3175941b4454a0"),
         MdxParams(7680, 3072, 8, 1.021, "Vocals"),
         "MDX-Net vocal model fine-tuned by UVR; keeps more breath and reverb tails than Kim Vocal 2."),
    _mdx("uvr-mdx-net-inst-hq-3", "UVR-MDX-NET Inst HQ 3", "vocals",
         UvrFile("UVR-MDX-NET-Inst_HQ_3.onnx", f"{UVR_RELEASE}/UVR-MDX-NET-Inst_HQ_3.onnx", 66_759_214,
                 "317554b07fe1ea5279a77f2b1520a41ea4b93432560c4ffd08792c30fddf9adc",
                 "55657dd70583b0fedfba5f67df11d711"),
         MdxParams(6144, 3072, 8, 1.022, "Instrumental"),
         "MDX-Net instrumental model: the cleanest backing track for covers; vocals are the mix minus it."),
    _mdx("uvr-mdxnet-kara-2", "UVR-MDX-NET Karaoke 2", "karaoke",
         UvrFile("UVR_MDXNET_KARA_2.onnx", f"{UVR_RELEASE}/UVR_MDXNET_KARA_2.onnx", 52_786_726,
                 "bf32e15105a09c0f7dddd2b67346146334d6f3ecb399ed7638eba2ab07cbf5f4",
                 "1d64a6d2c30f709b8c9b4ce1366d96ee"),
         MdxParams(5120, 2048, 8, 1.065, "Instrumental"),
         "Splits the lead voice from backing vocals (and music): run it on a song or on separated vocals.",
         stem_names=("lead_vocals", "backing")),
    _mdx("reverb-hq", "Reverb HQ (FoxJoy)", "dereverb",
         UvrFile("Reverb_HQ_By_FoxJoy.onnx", f"{UVR_RELEASE}/Reverb_HQ_By_FoxJoy.onnx", None, None,
                 "cd5b2989ad863f116c855db1dfe24e39"),
         MdxParams(6144, 3072, 9, 1.035, "Reverb"),
         "MDX-Net de-reverb model: run it on separated vocals; writes the dry voice and the reverb.",
         voice_stems=("no reverb", "dry"), stem_names=("dry", "reverb"),
         approx_mb=67),   # not on record; an MDX-Net of the 3072-bin size (Kim Vocal 2, Inst HQ 3: 66.8 MB)
    UvrModel("bs-roformer-1297", "BS-RoFormer (viperx, SDR 12.97)", "vocals", "mdxc",
             (UvrFile("model_bs_roformer_ep_317_sdr_12.9755.ckpt",
                      f"{UVR_RELEASE}/model_bs_roformer_ep_317_sdr_12.9755.ckpt"),
              UvrFile("model_bs_roformer_ep_317_sdr_12.9755.yaml",
                      f"{UVR_CONFIGS}/model_bs_roformer_ep_317_sdr_12.9755.yaml")),
             _COMMUNITY, "Band-split RoFormer: the best vocals of this list (MUSDB18 vocals SDR ~11); slow on a "
                         "CPU, meant for a GPU."),
    UvrModel("mel-roformer-kim", "Mel-band RoFormer vocals (Kimberley Jensen)", "vocals", "mdxc",
             (UvrFile("MelBandRoformer.ckpt",
                      "https://huggingface.co/KimberleyJSN/melbandroformer/resolve/main/MelBandRoformer.ckpt"),
              UvrFile("config_vocals_mel_band_roformer_kim.yaml",
                      f"{UVR_CONFIGS}/config_vocals_mel_band_roformer_kim.yaml")),
             _COMMUNITY, "Mel-band RoFormer vocal model, the community's usual vocals pick with BS-RoFormer; "
                         "meant for a GPU."),
    UvrModel("mdx23c-instvoc-hq", "MDX23C InstVoc HQ", "vocals", "mdxc",
             (UvrFile("MDX23C-8KFFT-InstVoc_HQ.ckpt", f"{UVR_RELEASE}/MDX23C-8KFFT-InstVoc_HQ.ckpt"),
              UvrFile("model_2_stem_full_band_8k.yaml", f"{AUDIO_SEPARATOR_RELEASE}/model_2_stem_full_band_8k.yaml")),
             _UVR_LICENCE, "MDX23C (TFC-TDF v3) full-band vocals + instrumental; between MDX-Net and RoFormer in "
                           "quality and speed."),
    UvrModel("mel-roformer-karaoke", "Mel-band RoFormer Karaoke (aufr33 & viperx)", "karaoke", "mdxc",
             (UvrFile("mel_band_roformer_karaoke_aufr33_viperx_sdr_10.1956.ckpt",
                      f"{UVR_RELEASE}/mel_band_roformer_karaoke_aufr33_viperx_sdr_10.1956.ckpt"),
              UvrFile("config_mel_band_roformer_karaoke.yaml", f"{UVR_CONFIGS}/config_mel_band_roformer_karaoke.yaml")),
             _COMMUNITY, "Lead vocals vs everything else (backing vocals and music), RoFormer quality.",
             stem_names=("lead_vocals", "backing")),
    UvrModel("mdx23c-dereverb", "MDX23C De-Reverb (aufr33 & jarredou)", "dereverb", "mdxc",
             (UvrFile("MDX23C-De-Reverb-aufr33-jarredou.ckpt",
                      f"{AUDIO_SEPARATOR_RELEASE}/MDX23C-De-Reverb-aufr33-jarredou.ckpt"),
              UvrFile("config_dereverb_mdx23c.yaml", f"{UVR_CONFIGS}/config_dereverb_mdx23c.yaml")),
             _COMMUNITY, "Removes room reverb from vocals; writes the dry voice and the reverb.",
             voice_stems=("no reverb", "dry"), stem_names=("dry", "reverb")),
    UvrModel("bs-roformer-dereverb", "BS-RoFormer De-Reverb (anvuew)", "dereverb", "mdxc",
             (UvrFile("deverb_bs_roformer_8_256dim_8depth.ckpt",
                      "https://huggingface.co/anvuew/deverb_bs_roformer/resolve/main/"
                      "deverb_bs_roformer_8_256dim_8depth.ckpt"),
              UvrFile("deverb_bs_roformer_8_256dim_8depth.yaml",
                      f"{UVR_CONFIGS}/deverb_bs_roformer_8_256dim_8depth.yaml")),
             _COMMUNITY, "RoFormer de-reverb for vocals (mono or stereo reverb).",
             voice_stems=("no reverb", "dry"), stem_names=("dry", "reverb")),
)}

UvrState = Literal["present", "missing", "partial", "bad-size"]


@dataclass(frozen=True)
class UvrStatus:
    model: UvrModel
    state: UvrState
    detail: str

    @property
    def usable(self) -> bool:
        return self.state == "present"


def get_uvr_model(name: str) -> UvrModel:
    try:
        return UVR_MODELS[name]
    except KeyError:
        raise InputError(f"Unknown UVR model {name!r}; choose one of {sorted(UVR_MODELS)}.") from None


def uvr_status(ws: Workspace, name: str) -> UvrStatus:
    """Whether the model's files are in models/uvr/ with the sizes on record (checksums: `check_uvr_file`)."""
    model = get_uvr_model(name)
    problems = {}
    for f, path in zip(model.files, model.paths(ws)):
        if not path.is_file():
            problems[f.name] = "missing"
        elif f.size is not None and path.stat().st_size != f.size:
            problems[f.name] = f"size {path.stat().st_size:,} bytes, expected {f.size:,}"
    if not problems:
        return UvrStatus(model, "present", f"on disk in {ws.uvr_models_dir}")
    bad = {k: v for k, v in problems.items() if v != "missing"}
    if bad:
        name_, problem = next(iter(bad.items()))
        return UvrStatus(model, "bad-size", f"{name_}: {problem}; download it again")
    if len(problems) == len(model.files):
        return UvrStatus(model, "missing", f"not downloaded ({model.size_text()})")
    return UvrStatus(model, "partial", f"missing {', '.join(sorted(problems))}")


def uvr_hash(path: Path) -> str:
    """UVR's file hash: md5 of the last 10,000 KiB (the whole file when smaller)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(max(0, size - UVR_HASH_TAIL_BYTES))
        return hashlib.md5(fh.read(), usedforsecurity=False).hexdigest()


class _ConfigLoader:
    """yaml.SafeLoader that also reads `!!python/tuple` (as a list): the UVR configs use it; nothing executes."""

    _cls: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._cls is None:
            import yaml

            class Loader(yaml.SafeLoader):
                pass

            Loader.add_constructor("tag:yaml.org,2002:python/tuple",
                                   lambda loader, node: loader.construct_sequence(node))
            cls._cls = Loader
        return cls._cls


def read_uvr_config(path: Path) -> dict:
    """The model config of an MDX23C / RoFormer checkpoint (yaml, read safely); InputError when unusable."""
    import yaml

    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_ConfigLoader.get())  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: not a readable model config ({type(err).__name__}: {str(err)[:200]}). "
                         f"Delete it and download or import it again.") from err
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("audio", "model", "training")):
        raise InputError(f"{path}: not an MDX23C / RoFormer config (it needs audio, model and training sections). "
                         f"Delete it and download or import the config that belongs to the checkpoint.")
    return data


def structural_problem(path: Path, f: UvrFile, model: UvrModel | None = None) -> str | None:
    """What is wrong with the file's content for its kind (None: it opens as it should). Loads the file."""
    try:
        if f.kind == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            shape = session.get_inputs()[0].shape
            if model is not None and model.mdx is not None and len(shape) == 4:
                want = [4, model.mdx.dim_f, 2 ** model.mdx.dim_t_exp]
                got = [d if isinstance(d, int) else None for d in shape[1:]]
                if any(g is not None and g != w for g, w in zip(got, want)):
                    return f"the ONNX input is {shape}, but {model.title} needs [batch, {want[0]}, {want[1]}, {want[2]}]"
        elif f.kind == "checkpoint":
            import torch

            torch.load(str(path), map_location="cpu", weights_only=True)
        elif f.kind == "yaml":
            read_uvr_config(path)
    except InputError as err:
        return str(err)
    except Exception as err:  # onnxruntime, torch and pickle raise many types for a bad file
        return f"it does not open as {'an ONNX model' if f.kind == 'onnx' else 'a ' + f.kind} " \
               f"({type(err).__name__}: {str(err)[:160]})"
    return None


def check_uvr_file(path: Path, f: UvrFile, model: UvrModel | None = None, sha256: str | None = None) -> str | None:
    """None when `path` is a good copy of `f`: size, sha256 and UVR hash (when on record), then its content."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if f.size is not None and size != f.size:
        return f"size {size:,} bytes, expected {f.size:,}"
    if f.sha256 is not None:
        digest = sha256 or _sha256(path)
        if digest != f.sha256:
            return f"sha256 {digest[:12]}… does not match the published file"
    if f.uvr_hash is not None and uvr_hash(path) != f.uvr_hash:
        return "its UVR hash does not match the published file (a different or damaged file)"
    return structural_problem(path, f, model)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_mirror(mirror: str | None = None) -> str | None:
    """The mirror base address: the argument, else $VOICEAPP_UVR_MIRROR, else None (the published addresses)."""
    value = (mirror or os.environ.get(MIRROR_ENV) or "").strip()
    return value.rstrip("/") or None


def file_url(f: UvrFile, mirror: str | None = None) -> str:
    base = resolve_mirror(mirror)
    return f"{base}/{f.name}" if base else f.url


def download_uvr_model(ws: Workspace, name: str, mirror: str | None = None, progress: Progress = no_progress,
                       cancel: CancelToken = NEVER, timeout_s: float = 30.0) -> list[Path]:
    """Download the model's missing or bad files into models/uvr/ (checked, then renamed into place).

    Writes `models/.downloads/uvr-<name>/` while downloading (removed afterwards). Files already present and good
    are kept. Raises VoiceAppError naming the file, the address and what to do when a file cannot be had.
    """
    model = get_uvr_model(name)
    staging = ws.downloads_dir / f"uvr-{model.name}"
    weights = [max(f.size or int((model.approx_mb or 1) * 1e6), 1) if f.kind != "yaml" else 1 for f in model.files]
    total, done, placed = sum(weights), 0, []
    try:
        for f, path, weight in zip(model.files, model.paths(ws), weights):
            step = sub_progress(progress, done / total, (done + weight) / total)
            placed.append(_download_file(model, f, path, mirror, staging, timeout_s, step, cancel))
            done += weight
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(1.0, f"{model.title}: ready")
    return placed


def _download_file(model: UvrModel, f: UvrFile, dest: Path, mirror: str | None, staging: Path, timeout_s: float,
                   progress: Progress, cancel: CancelToken) -> Path:
    if dest.is_file() and check_uvr_file(dest, f, model) is None:
        progress(1.0, f"{f.name}: already present")
        return dest
    url = file_url(f, mirror)
    try:
        fetch(url, dest, size=f.size, check=lambda path, sha256: check_uvr_file(path, f, model, sha256), attempts=2,
              part=staging / f"{f.name}.part", timeout_s=timeout_s, label=f.name, progress=progress, cancel=cancel)
    except DownloadError as err:
        raise VoiceAppError(
            f"Could not download {f.name} of {model.title} from {url} ({err.reason}). Check the connection (or set "
            f"{MIRROR_ENV} to a mirror that has the file) and try again, or download it by hand and import it "
            f"(Separate tab > UVR models > Import, or `python -m voiceapp assets import FILE`).") from err
    return dest


def identify_uvr_file(path: Path) -> tuple[UvrModel, UvrFile] | None:
    """The catalogue file `path` is, by sha256, then UVR hash, then file name; None when it is none of them."""
    files = [(m, f) for m in UVR_MODELS.values() for f in m.files]
    size = path.stat().st_size
    candidates = [(m, f) for m, f in files if f.size in (None, size)]
    if any(f.sha256 for _, f in candidates):
        digest = _sha256(path)
        for m, f in candidates:
            if f.sha256 == digest:
                return m, f
    if any(f.uvr_hash for _, f in candidates):
        tail = uvr_hash(path)
        for m, f in candidates:
            if f.uvr_hash == tail:
                return m, f
    named = [(m, f) for m, f in files if f.name.lower() == path.name.lower()]
    return named[0] if named else None


def import_uvr_files(ws: Workspace, paths: list[Path | str], progress: Progress = no_progress,
                     cancel: CancelToken = NEVER) -> list[tuple[UvrModel, Path]]:
    """Place model files the user already has (a UVR .onnx, a .ckpt and its .yaml) into models/uvr/.

    Each file is recognised (sha256, UVR hash or its published name), copied next to its destination, checked
    like a download, and renamed into place; the user's file is left as it is. Raises InputError naming the
    file and what to do for a file that is not in the catalogue or fails its check; files before it stay placed.
    """
    files = [user_path(p) for p in paths]
    if not files:
        raise InputError("No files given. Pick the model files (.onnx, or .ckpt with its .yaml) to import.")
    placed = []
    for i, src in enumerate(files):
        cancel.raise_if_set()
        if not src.is_file():
            raise InputError(f"{src} is not a file; give the path of a downloaded UVR model file.")
        found = identify_uvr_file(src)
        if found is None:
            known = ", ".join(sorted(f.name for m in UVR_MODELS.values() for f in m.files))
            raise InputError(f"{src.name} is not a model file Voiceapp knows (compared by sha256, UVR hash and "
                             f"name). Known files: {known}.")
        model, f = found
        dest = ws.uvr_models_dir / f.name
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.import")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy(src, tmp, sub_progress(progress, i / len(files), (i + 1) / len(files)), cancel)
            problem = check_uvr_file(tmp, f, model)
            if problem:
                raise InputError(f"{src.name} does not match {model.title}'s {f.name}: {problem}. Download it again "
                                 f"(it may be truncated, damaged or another version).")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("imported %s as %s", src, dest)
        placed.append((model, dest))
    progress(1.0, f"imported {len(placed)} file(s)")
    return placed


def _copy(src: Path, dst: Path, progress: Progress, cancel: CancelToken) -> None:
    total = max(src.stat().st_size, 1)
    done = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            cancel.raise_if_set()
            fout.write(chunk)
            done += len(chunk)
            progress(done / total, f"copying {src.name}")
        fout.flush()
        os.fsync(fout.fileno())


def require_uvr_model(ws: Workspace, name: str) -> UvrModel:
    """The model when its files are on disk; else MissingArtifactError saying how to get them."""
    status = uvr_status(ws, name)
    if not status.usable:
        model = status.model
        raise MissingArtifactError(
            f"{model.title} is not installed ({status.detail}). Download it in Separate > UVR models, or run "
            f"`python -m voiceapp assets download {model.name}`; offline, fetch {model.model_file.url} elsewhere "
            f"and import it (`python -m voiceapp assets import FILE`).")
    return status.model


def catalogue_rows(ws: Workspace) -> list[dict]:
    """One row per model, grouped by purpose (in PURPOSES order), for the CLI and the picker."""
    rows = []
    for purpose in PURPOSES:
        for model in (m for m in UVR_MODELS.values() if m.purpose == purpose):
            st = uvr_status(ws, model.name)
            pinned = all(f.sha256 or f.uvr_hash for f in model.files if f.kind != "yaml")
            rows.append({"name": model.name, "title": model.title, "purpose": purpose,
                         "purpose_title": PURPOSES[purpose], "family": FAMILY_TITLES[model.family],
                         "size": model.size_text(ws), "licence": model.licence, "state": st.state,
                         "on_disk": st.usable, "detail": st.detail, "about": model.about,
                         "checksum": "sha256/UVR hash on record" if pinned else "no checksum on record (checked by "
                                                                                 "loading)"})
    return rows
