"""The UVR model catalogue: Ultimate Vocal Remover / audio-separator models that the Separate tab can use by name.

Each entry names its files (the published file names; they land in `models/uvr/`), where they come from, their
size and checksums when they are on record, the licence, what the model is for (`PURPOSES`) and the facts the
engine needs (for MDX-Net ONNX files the model data UVR keeps per file: n_fft, dim_f, dim_t, compensate, primary
stem; MDX23C / RoFormer checkpoints carry theirs in the yaml config that comes with them).

Checking, downloading (mirror setting: $VOICEAPP_UVR_MIRROR) and importing these files: `assets/uvr_files.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from voiceapp.errors import InputError, MissingArtifactError
from voiceapp.workspace import Workspace

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
