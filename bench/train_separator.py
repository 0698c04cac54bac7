"""The shipped separator's recipe: build the training material from freely licensed audio, then train the U-Net.

    .venv/bin/python bench/train_separator.py build [--cache /work/cache/sep]          # material, once (~15 min CPU)
    .venv/bin/python bench/train_separator.py train [--cache ...] [--minutes 80]        # resumes; checkpoints each epoch
    .venv/bin/python bench/train_separator.py ship  [--cache ...]                       # best weights (float16) into
                                        # voiceapp/separate/weights/ with --dsp-mix 0.5 --mask-power 0.3 (shipped)
    .venv/bin/python bench/train_separator.py speed                                     # training steps per second

Sources (all licences allow redistribution of a model trained on them; none is used for evaluation):
vocals from speech — LJ Speech (public domain), VCTK p227/p228 and LibriSpeech (CC BY 4.0), CMU ARCTIC
(BSD-style), Asterisk prompts Allison en_US (/usr/share/asterisk/sounds/en_US_f_Allison, Debian
asterisk-core-sounds-en-g722, CC BY-SA 3.0), June fr_CA (CC BY-SA 3.0), IvrvoiceRU (CC BY 3.0);
accompaniment from the five Debian asterisk-moh-opsound-wav tracks (CC BY-SA 3.0) plus generated drums and synth
notes. The songs in shared/data/music (CC BY-NC-SA / research-only) are the held-out evaluation set:
`.venv/bin/python bench/separate.py --models dsp,unet-speech` (never trained or validated on).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceapp.separate.recipe import RecipeConfig, build_training_set  # noqa: E402

NAME = "unet-speech"
DATA = ROOT.parent / "shared" / "data" / "speech"
ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
MOH = Path("/usr/share/asterisk/moh")
SOURCES = {
    "ljspeech": "Public domain (LJ Speech 1.1)",
    "vctk": "CC BY 4.0 (CSTR VCTK Corpus)",
    "librispeech": "CC BY 4.0 (LibriSpeech SLR12)",
    "cmu_arctic": "CMU ARCTIC licence (BSD-style, attribution)",
    "asterisk_fr_CA_f_June": "CC BY-SA 3.0 (Asterisk core sounds fr, June Wallack)",
    "asterisk_ru_RU_f_IvrvoiceRU": "CC BY 3.0 (Asterisk core sounds ru, ivrvoice.ru)",
    "en_US_f_Allison": "CC BY-SA 3.0 (Asterisk core sounds en, Allison Smith; Debian asterisk-core-sounds-en-g722)",
    "moh": "CC BY-SA 3.0 (Debian asterisk-moh-opsound-wav: Macroform, Manolo Camp, Reno Project)",
}
# validation takes (model selection only; never trained on): fixed names, so a resumed run keeps the same set
VAL_SONGS = (*(f"vocals_{i:03d}" for i in range(4)), *(f"accomp_{i:03d}" for i in range(5)))
ALLISON_MIN_BYTES = 16_000   # G.722 is 8000 bytes/s: prompts of 2 s or more (sentences, not single words)
ALLISON_MAX_FILES = 160


def speech_files() -> list[Path]:
    files = []
    for name in SOURCES:
        folder = DATA / name
        if folder.is_dir():
            files += sorted(folder.rglob("*.flac"))
    if ALLISON.is_dir():
        prompts = sorted(p for p in ALLISON.glob("*.g722") if p.stat().st_size >= ALLISON_MIN_BYTES)
        files += prompts[:ALLISON_MAX_FILES]
    return files


def model_config():
    from voiceapp.nets.unet import UNetConfig
    from voiceapp.separate.model import MaskModelConfig

    # bins 0..383 of the 21.5 Hz grid (0-8.3 kHz, where the speech and music material has energy); above,
    # the DSP separator's mask (see MaskModelConfig.high_band)
    return MaskModelConfig(unet=UNetConfig(base_channels=8, max_channels=128, depth=6), n_bins=384,
                           patch_frames=128, high_band="dsp")


def train_config(epochs: int, steps: int, batch: int):
    from voiceapp.separate.train import SeparatorTrainConfig

    return SeparatorTrainConfig(size="custom", epochs=epochs, steps_per_epoch=steps, batch_size=batch,
                                learning_rate=1e-3, val_songs=VAL_SONGS, val_items=48, same_song_prob=0.0,
                                sample_rate=22050, model=model_config())


def build(args: argparse.Namespace) -> None:
    from voiceapp.progress import TqdmProgress

    files, music = speech_files(), sorted(MOH.glob("*.wav"))
    print(f"{len(files)} speech files, {len(music)} music files -> {args.cache}")
    with TqdmProgress("build") as bar:
        built = build_training_set(files, music, args.cache / "stems", RecipeConfig(), SOURCES, bar)
    print(f"vocals {built.vocals_takes} takes ({built.vocals_minutes} min), accompaniment {built.accomp_takes} "
          f"takes ({built.accomp_minutes} min), {len(built.skipped)} files skipped")


def train(args: argparse.Namespace) -> None:
    import torch

    from voiceapp.separate.train import train_separator
    from voiceapp.workspace import Workspace

    torch.set_num_threads(args.threads)
    ws = Workspace(args.cache / "workspace")
    cfg = train_config(args.epochs, args.steps_per_epoch, args.batch_size)
    deadline = time.time() + args.minutes * 60

    class Deadline:
        def raise_if_set(self) -> None:
            if time.time() > deadline:
                from voiceapp.errors import Cancelled

                raise Cancelled("time budget reached")

    def progress(fraction: float, message: str) -> None:
        if "step" in message and message.split("step ")[1].split(":")[0].endswith("00"):
            print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    from voiceapp.errors import Cancelled

    try:
        result = train_separator(NAME, args.cache / "stems", ws, cfg, "cpu", progress, Deadline())
        print(f"done: {result.epochs_done} epochs, best val {result.best_val_loss:.4e}")
    except Cancelled:
        print("stopped at the time budget; the best epoch so far is saved")


def ship(args: argparse.Namespace) -> None:
    """Best-validation weights as float16 safetensors + the sidecar with the chosen inference options."""
    from safetensors.torch import load_file

    from voiceapp.separate.model import MaskModelConfig, read_sidecar, save_separator

    src = args.cache / "workspace" / "models" / "separators" / NAME
    dst = ROOT / "voiceapp" / "separate" / "weights" / NAME
    sidecar = read_sidecar(src)
    config = {**sidecar["config"], "high_band": args.high_band, "centre_power": args.centre_power,
              "dsp_mix": args.dsp_mix, "mask_power": args.mask_power}
    weights = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(src / "model.safetensors")).items()}
    info = {k: v for k, v in sidecar["info"].items() if k not in ("stems",)}
    info["licence"] = "CC BY-SA 3.0 (share-alike: trained on CC BY-SA music-on-hold and Asterisk prompts)"
    info["model_card"] = "MODEL_CARD.md"
    save_separator(dst, weights, MaskModelConfig.from_dict(config), info)
    print(f"shipped epoch {info['epoch']} (step {info['step']}, val loss {info['val_loss']:.4e}) to {dst}")


def speed(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from voiceapp.nets.unet import UNet
    from voiceapp.separate.train import _Spectra

    torch.set_num_threads(args.threads)
    mcfg = model_config()
    net = UNet(mcfg.unet)
    spectra = _Spectra(mcfg, 22050, "cpu")
    opt = torch.optim.Adam(net.parameters())
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((args.batch_size, spectra.segment)).astype(np.float32) * 0.1
    times = []
    for _ in range(4):
        start = time.perf_counter()
        net_in, x, y = spectra.inputs(mix, mix * 0.5)
        loss = torch.mean(torch.abs(net(net_in) * x - y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in net.parameters())
    print(f"{params / 1e6:.2f} M params, batch {args.batch_size}: {np.median(times[1:]):.3f} s/step "
          f"({1 / np.median(times[1:]):.2f} steps/s, {args.threads} thread)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("build", "train", "ship", "speed"))
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/sep"))
    parser.add_argument("--minutes", type=float, default=80.0, help="train: stop after this wall time")
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--high-band", default="dsp", help="ship: MaskModelConfig.high_band")
    parser.add_argument("--centre-power", type=float, default=0.0, help="ship: MaskModelConfig.centre_power")
    parser.add_argument("--dsp-mix", type=float, default=0.5, help="ship: MaskModelConfig.dsp_mix")
    parser.add_argument("--mask-power", type=float, default=0.3, help="ship: MaskModelConfig.mask_power")
    args = parser.parse_args()
    {"build": build, "train": train, "ship": ship, "speed": speed}[args.stage](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
