"""Cost of Voiceapp's UVR pipeline around the network: STFT/iSTFT packing (VR: the band split, each band resampled),
44.1 kHz resampling, chunk context and crossfades, file streaming.

--family mdx (default): the network is a stand-in ONNX graph with Kim Vocal 2's real input size ([batch, 4, 3072,
256], n_fft 7680) that only multiplies by a mask, so the figure is the overhead a real MDX-Net model adds to its
own compute (not downloaded here, offline).
--family vr / demucs: the real networks at their real size with random weights (VR 5.1 CascadedNet nout 48 on
4band_v3 = UVR-De-Echo-Normal; --vr5 for a VR 5.0 HP net on 4band_44100 = 1_HP-UVR; HT-Demucs with htdemucs'
settings, 41.5 M parameters), timed around their forward calls: network time, the rest is pipeline overhead.

    .venv/bin/python bench/uvr_pipeline.py [--family mdx|vr|demucs] [--vr5] [--seconds 60] [--rate 48000]
                                           [--threads 1]
"""

from __future__ import annotations

import argparse
import fractions
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.assets.uvr import UVR_MODELS, DemucsParams, MdxParams, UvrFile, UvrModel, VrParams  # noqa: E402
from voiceapp.separate import SeparateConfig, separate_file  # noqa: E402
from voiceapp.separate.uvr import MdxNet, UvrSeparator  # noqa: E402


def mask_onnx(path: Path, p: MdxParams) -> None:
    import torch

    class Mask(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mask", torch.linspace(0, 1, p.dim_f).reshape(1, 1, -1, 1))

        def forward(self, x):
            return x * self.mask

    torch.onnx.export(Mask(), torch.zeros(1, 4, p.dim_f, 2 ** p.dim_t_exp), str(path), input_names=["input"],
                      output_names=["output"], dynamo=False, dynamic_axes={"input": {0: "b"}, "output": {0: "b"}})


def vr_separator(tmp: Path, vr5: bool) -> tuple[UvrSeparator, list]:
    """A real-size VR net with random weights, saved and loaded as a published `.pth`; its forward calls timed."""
    import torch

    from voiceapp.separate.uvr_vr import VrNet, build_vr_network, load_band_params

    base = UVR_MODELS["vr-1-hp" if vr5 else "vr-de-echo-normal"]
    params = VrParams("4band_44100", "Instrumental", "Vocals", arch_size=123821) if vr5 else base.vr
    net = build_vr_network(params, load_band_params(params.band_params)["bins"], params.arch_size or 0)
    torch.save(net.state_dict(), tmp / base.model_file.name)
    size_mb = (tmp / base.model_file.name).stat().st_size / 1e6
    print(f"{base.title}: {'VR 5.0 arch 123821' if vr5 else f'VR 5.1 nout {params.nout}'} on {params.band_params}, "
          f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters, {size_mb:.1f} MB file")
    model = UvrModel("bench", base.title, base.purpose, "vr", base.files, "", "", vr=params,
                     voice_stems=base.voice_stems, stem_names=base.stem_names)
    vr = VrNet(tmp / base.model_file.name, model, params)
    return UvrSeparator(model, vr, context_s=2.0), [vr.net]


def demucs_separator(tmp: Path) -> tuple[UvrSeparator, list]:
    """An HT-Demucs with htdemucs' settings and random weights, saved as Demucs saves its `.th`."""
    import types

    import torch

    from voiceapp.separate.uvr_demucs import DemucsNet, _demucs_classes

    kwargs = dict(sources=["drums", "bass", "other", "vocals"], audio_channels=2, samplerate=44100,
                  segment=fractions.Fraction(39, 5), bottom_channels=512)
    net = _demucs_classes()["HTDemucs"](**kwargs)
    module = types.ModuleType("demucs.htdemucs")
    klass = type("HTDemucs", (), {"__module__": "demucs.htdemucs"})
    module.HTDemucs = klass
    sys.modules.setdefault("demucs", types.ModuleType("demucs"))
    sys.modules["demucs.htdemucs"] = module
    path = tmp / "bench-00000000.th"
    torch.save({"klass": klass, "args": [], "kwargs": kwargs, "state": {k: v.half() for k, v in
                                                                        net.state_dict().items()}}, path)
    print(f"htdemucs-sized HT-Demucs: {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters, "
          f"{path.stat().st_size / 1e6:.1f} MB file (float16, as published)")
    model = UvrModel("bench", "HT-Demucs", "vocals", "demucs", (UvrFile(path.name, ""),), "", "",
                     demucs=DemucsParams())
    demucs = DemucsNet([path], model, DemucsParams())
    return UvrSeparator(model, demucs, context_s=3.0), demucs.nets


def time_torch(nets: list, network: list) -> None:
    for net in nets:
        run = net.predict_mask if hasattr(net, "predict_mask") else net.forward

        def timed(*a, _run=run, **k):
            t = time.perf_counter()
            out = _run(*a, **k)
            network[0] += time.perf_counter() - t
            return out

        if hasattr(net, "predict_mask"):
            net.predict_mask = timed
        else:
            net.forward = timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=["mdx", "vr", "demucs"], default="mdx")
    parser.add_argument("--vr5", action="store_true", help="VR: a VR 5.0 HP net (1_HP-UVR) instead of VR 5.1")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=48000, help="input rate (44100: no resampling)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.family != "mdx":
        return bench_torch(args)
    import soundfile as sf

    params = MdxParams(7680, 3072, 8, 1.009, "Vocals")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mask_onnx(tmp / "mask.onnx", params)
        model = UvrModel("bench", "stand-in", "vocals", "mdx", (UvrFile("mask.onnx", ""),), "", "", params)
        separator = UvrSeparator(model, MdxNet(tmp / "mask.onnx", model), context_s=1.0)
        rng = np.random.default_rng(0)
        song = tmp / "song.wav"
        sf.write(song, (0.1 * rng.standard_normal((int(args.seconds * args.rate), 2))).astype(np.float32), args.rate)
        start = time.perf_counter()
        network = [0.0]
        run = separator.net.session.run

        def timed(*a, **k):
            t = time.perf_counter()
            out = run(*a, **k)
            network[0] += time.perf_counter() - t
            return out

        separator.net.session.run = timed
        result = separate_file(song, tmp / "out", separator, SeparateConfig())
        total = time.perf_counter() - start
    minutes = result.duration_s / 60
    print(f"{args.seconds:.0f} s stereo at {args.rate} Hz, {args.threads} thread(s): {total / minutes:.1f} s per minute "
          f"of audio in all, of which the stand-in network {network[0] / minutes:.1f} s; pipeline overhead "
          f"{(total - network[0]) / minutes:.1f} s per minute")
    return 0


def bench_torch(args: argparse.Namespace) -> int:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        separator, nets = vr_separator(tmp, args.vr5) if args.family == "vr" else demucs_separator(tmp)
        network = [0.0]
        time_torch(nets, network)
        song = tmp / "song.wav"
        rng = np.random.default_rng(0)
        sf.write(song, (0.1 * rng.standard_normal((int(args.seconds * args.rate), 2))).astype(np.float32), args.rate)
        start, cpu = time.perf_counter(), time.process_time()
        result = separate_file(song, tmp / "out", separator, SeparateConfig())
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    minutes = result.duration_s / 60
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.family}: {args.seconds:.0f} s stereo at {args.rate} Hz, {args.threads} thread(s), load average "
          f"{load}: {total / minutes:.1f} s wall ({cpu / minutes:.1f} s CPU) per minute of audio in all, of which "
          f"the network {network[0] / minutes:.1f} s; pipeline overhead {(total - network[0]) / minutes:.1f} s per "
          f"minute ({(total - network[0]) / total:.0%} of the run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
