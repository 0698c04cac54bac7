"""Cost of Voiceapp's UVR pipeline around the network: STFT/iSTFT packing, 44.1 kHz resampling, chunk context and
crossfades, file streaming. The network is a stand-in ONNX graph with Kim Vocal 2's real input size
([batch, 4, 3072, 256], n_fft 7680) that only multiplies by a mask, so the figure is the overhead a real MDX-Net
model adds to its own compute (not downloaded here, offline).

    .venv/bin/python bench/uvr_pipeline.py [--seconds 60] [--rate 48000] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.assets.uvr import MdxParams, UvrFile, UvrModel  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=48000, help="input rate (44100: no resampling)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import soundfile as sf
    import torch

    torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    raise SystemExit(main())
