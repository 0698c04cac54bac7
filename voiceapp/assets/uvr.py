"""The UVR model catalogue: Ultimate Vocal Remover / audio-separator models that the Separate tab can use by name.

Each entry names its files (the published file names; they land in `models/uvr/`), where they come from, their
size and checksums when they are on record, the licence, what the model is for (`PURPOSES`) and the facts the
engine needs (for MDX-Net ONNX files the model data UVR keeps per file: n_fft, dim_f, dim_t, compensate, primary
stem; for VR-arch `.pth` files UVR's model data: band-split parameter set, primary stem, network width, also
looked up by UVR hash in `VR_MODEL_DATA`; MDX23C / RoFormer checkpoints carry theirs in the yaml config that comes
with them; Demucs `.th` files carry theirs inside, the catalogue adds a bag's weights).

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
DEMUCS_RELEASE = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer"
UVR_HASH_TAIL_BYTES = 10_000 * 1024

Purpose = Literal["vocals", "karaoke", "dereverb"]
PURPOSES: dict[str, str] = {
    "vocals": "Vocals / instrumental",
    "karaoke": "Karaoke: lead vocals vs backing (and music)",
    "dereverb": "De-reverb / de-echo / de-noise",
}
Family = Literal["mdx", "mdxc", "vr", "demucs"]
FAMILY_TITLES = {"mdx": "MDX-Net (ONNX)", "mdxc": "MDX23C / RoFormer (checkpoint + yaml)",
                 "vr": "VR arch (.pth)", "demucs": "Demucs (.th)"}

_UVR_LICENCE = ("UVR public model release (Ultimate Vocal Remover, MIT); no separate licence file comes with "
                "the weights")
_DEMUCS_LICENCE = "MIT (Meta Platforms, Demucs); weights published by Meta with the code"
_COMMUNITY = "community model shared for UVR / audio-separator; the authors state no licence: personal use"


@dataclass(frozen=True)
class UvrFile:
    name: str                   # the published file name (also its name in models/uvr/)
    url: str                    # where it is published
    size: int | None = None     # bytes, when on record
    sha256: str | None = None   # when on record
    uvr_hash: str | None = None  # md5 of the last 10,000 KiB (UVR's model-data key), when on record
    sha256_prefix: str | None = None  # Demucs names its files <sig>-<first 8 hex of the sha256>.th

    @property
    def kind(self) -> str:
        return {".onnx": "onnx", ".ckpt": "checkpoint", ".pth": "checkpoint", ".th": "demucs", ".yaml": "yaml",
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
class VrParams:
    """UVR's model data for one VR-arch `.pth` file."""

    band_params: str            # the band-split parameter set (audio-separator's vr_network/modelparams/<name>.json)
    primary_stem: str           # what the mask keeps: "Instrumental", "No Reverb", "Noise", ...
    secondary_stem: str         # what (1 - mask) keeps
    nout: int | None = None     # VR 5.1 (CascadedNet, with an LSTM) width; None: a VR 5.0 net (CascadedASPPNet)
    nout_lstm: int = 128
    arch_size: int | None = None  # VR 5.0 capacity class (UVR's "nn arch size"); None: from the file's size


@dataclass(frozen=True)
class DemucsParams:
    """A Demucs model: one `.th` or a bag of them (the files), with the bag's per-source weights."""

    weights: tuple[tuple[float, ...], ...] | None = None  # (models, sources); None: every model counts fully


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
    vr: VrParams | None = None
    demucs: DemucsParams | None = None
    voice_stems: tuple[str, ...] = ("vocals",)  # the stem(s) written as the first output ("vocals")
    stem_names: tuple[str, str] = ("vocals", "instrumental")  # output file names: voice stem, the rest
    approx_mb: float | None = None  # shown when the exact size is not on record

    @property
    def model_file(self) -> UvrFile:
        return self.files[0]

    @property
    def config_file(self) -> UvrFile | None:
        return self.files[1] if self.family == "mdxc" and len(self.files) > 1 else None

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


def _vr(name: str, title: str, purpose: Purpose, file: UvrFile, params: VrParams, about: str, **kw: Any) -> UvrModel:
    return UvrModel(name, title, purpose, "vr", (file,), kw.pop("licence", _UVR_LICENCE), about, vr=params, **kw)


def _demucs(name: str, title: str, files: tuple[UvrFile, ...], about: str, **kw: Any) -> UvrModel:
    return UvrModel(name, title, "vocals", "demucs", files, _DEMUCS_LICENCE, about,
                    demucs=kw.pop("demucs", DemucsParams()), **kw)


def _uvr_pth(name: str, uvr_hash: str | None = None, base: str = UVR_RELEASE) -> UvrFile:
    return UvrFile(name, f"{base}/{name}", uvr_hash=uvr_hash)


def _th(name: str, sha256: str | None = None) -> UvrFile:
    return UvrFile(name, f"{DEMUCS_RELEASE}/{name}", sha256=sha256, sha256_prefix=name.rsplit("-", 1)[-1][:8])


# Sizes (estimates, shown as "about"): UVR tells VR 5.0 capacity classes apart by file size in KiB (123,821 /
# 123,812 for the HP nets); a VR 5.1 file of nout 64 is 218,409 KiB, and a float32 state dict of the nout 48 net on
# 4band_v3 is 127.1 MB (bench/uvr_pipeline.py builds it). The HT-Demucs members weigh about 80.5 MB each.
_HP_MB, _V51_48_MB, _V51_64_MB, _HTDEMUCS_MB = 126.8, 127.1, 223.7, 80.5
_DEREVERB = {"voice_stems": ("no reverb", "dry"), "stem_names": ("dry", "reverb")}
_DEECHO = {"voice_stems": ("no echo",), "stem_names": ("dry", "echo"), "approx_mb": _V51_48_MB}
_KARAOKE = {"stem_names": ("lead_vocals", "backing"), "approx_mb": _HP_MB}


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
    _vr("vr-1-hp", "VR 1_HP-UVR", "vocals", _uvr_pth("1_HP-UVR.pth"),
        VrParams("4band_44100", "Instrumental", "Vocals"),
        "UVR's VR-arch vocal remover (4 bands, 44.1 kHz): keeps vocals' natural tone; more bleed than MDX-Net.",
        approx_mb=_HP_MB),
    _vr("vr-2-hp", "VR 2_HP-UVR", "vocals", _uvr_pth("2_HP-UVR.pth"),
        VrParams("4band_v2", "Instrumental", "Vocals"),
        "UVR's second VR-arch vocal remover (4-band v2 parameters); a little more aggressive than 1_HP.",
        approx_mb=_HP_MB),
    _vr("vr-5-hp-karaoke", "VR 5_HP-Karaoke-UVR", "karaoke", _uvr_pth("5_HP-Karaoke-UVR.pth",
                                                                     "f6ea8473ff86017b5ebd586ccacf156b"),
        VrParams("4band_v2_sn", "Instrumental", "Vocals", arch_size=123812),
        "Lead vocals vs backing vocals and music (VR arch); run it on a song or on separated vocals.", **_KARAOKE),
    _vr("vr-6-hp-karaoke", "VR 6_HP-Karaoke-UVR", "karaoke", _uvr_pth("6_HP-Karaoke-UVR.pth",
                                                                     "6b5916069a49be3fe29d4397ecfd73fa"),
        VrParams("3band_44100_msb2", "Instrumental", "Vocals", arch_size=123812),
        "Karaoke VR model on 3 mid/side bands: keeps a little more of the backing vocals out of the lead.",
        **_KARAOKE),
    _vr("vr-deecho-dereverb", "VR UVR-DeEcho-DeReverb (FoxJoy)", "dereverb",
        _uvr_pth("UVR-DeEcho-DeReverb.pth", "0fb9249ffe4ffc38d7b16243f394c0ff"),
        VrParams("4band_v3", "No Reverb", "Reverb", nout=64),
        "Removes both reverb and echo from separated vocals; writes the dry voice and what it took away.",
        approx_mb=_V51_64_MB, **_DEREVERB),
    _vr("vr-de-echo-normal", "VR UVR-De-Echo-Normal (FoxJoy)", "dereverb",
        _uvr_pth("UVR-De-Echo-Normal.pth", "f200a145434efc7dcf0cd093f517ed52"),
        VrParams("4band_v3", "No Echo", "Echo", nout=48),
        "Removes delay / echo repeats from vocals (mild).", **_DEECHO),
    _vr("vr-de-echo-aggressive", "VR UVR-De-Echo-Aggressive (FoxJoy)", "dereverb",
        _uvr_pth("UVR-De-Echo-Aggressive.pth", "6857b2972e1754913aad0c9a1678c753"),
        VrParams("4band_v3", "No Echo", "Echo", nout=48),
        "Removes delay / echo repeats from vocals (strong; may thin the voice).", **_DEECHO),
    _vr("vr-denoise", "VR UVR-DeNoise (FoxJoy)", "dereverb",
        _uvr_pth("UVR-DeNoise.pth", "44c55d8b5d2e3edea98c2b2bf93071c7"),
        VrParams("4band_v3", "Noise", "No Noise", nout=48),
        "Removes hiss and background noise from vocals; writes the clean voice and the noise.",
        voice_stems=("no noise",), stem_names=("clean", "noise"), approx_mb=_V51_48_MB),
    _vr("vr-dereverb-aufr33", "VR De-Reverb (aufr33 & jarredou)", "dereverb",
        _uvr_pth("UVR-De-Reverb-aufr33-jarredou.pth", "97dc361a7a88b2c4542f68364b32c7f6", AUDIO_SEPARATOR_RELEASE),
        VrParams("4band_v4_ms_fullband", "Dry", "Reverb", nout=32),
        "Full-band VR de-reverb for vocals (mid/side bands).", licence=_COMMUNITY, voice_stems=("dry",),
        stem_names=("dry", "reverb")),
    _demucs("htdemucs", "Demucs v4 htdemucs", (_th("955717e8-8726e21a.th"),),
            "Meta's Hybrid Transformer Demucs (4 sources); vocals are its vocals source, the rest is the "
            "instrumental. Slower than MDX-Net on a CPU.", approx_mb=_HTDEMUCS_MB),
    _demucs("htdemucs-ft-vocals", "Demucs v4 htdemucs_ft (vocals model)",
            (_th("04573f0d-f3cf25b2.th", "f3cf25b222c4eed7cd49dd8b2c9597d50c18bd154090f7b919cfa5f93cf22c49"),),
            "The vocals member of the fine-tuned htdemucs_ft bag (its weight matrix gives vocals to this model "
            "only; the other three members serve drums, bass and other, which a vocal split does not use).",
            approx_mb=_HTDEMUCS_MB),
    _demucs("htdemucs-6s", "Demucs v4 htdemucs_6s", (_th("5c90dfd2-34c22ccb.th"),),
            "Six-source HT-Demucs (adds guitar and piano); vocals are its vocals source."),
    _demucs("hdemucs-mmi", "Demucs hdemucs_mmi (Hybrid Demucs v3)", (_th("75fc33f5-1941ce65.th"),),
            "Hybrid Demucs v3 retrained on MUSDB + 800 songs (4 sources); vocals are its vocals source."),
)}

# UVR's VR model data, keyed as UVR keys it (md5 of a file's last 10,000 KiB): the parameters a VR `.pth` needs.
VR_MODEL_DATA: dict[str, VrParams] = {m.model_file.uvr_hash: m.vr for m in UVR_MODELS.values()
                                      if m.vr is not None and m.model_file.uvr_hash}

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
            weights = [f for f in model.files if f.kind != "yaml"]
            if all(f.sha256 or f.uvr_hash for f in weights):
                checksum = "sha256/UVR hash on record"
            elif all(f.sha256 or f.uvr_hash or f.sha256_prefix for f in weights):
                checksum = "sha256 prefix on record (in the published file name)"
            else:
                checksum = "no checksum on record (checked by loading)"
            rows.append({"name": model.name, "title": model.title, "purpose": purpose,
                         "purpose_title": PURPOSES[purpose], "family": FAMILY_TITLES[model.family],
                         "size": model.size_text(ws), "licence": model.licence, "state": st.state,
                         "on_disk": st.usable, "detail": st.detail, "about": model.about, "checksum": checksum})
    return rows
