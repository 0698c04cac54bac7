"""Training-step cost of the synthesizer + discriminator presets on CPU (or a GPU).

    .venv/bin/python bench/nets.py [--threads 2] [--sizes full light] [--steps 3] [--frames 370] [--batch 4]
    .venv/bin/python bench/nets.py --flops        # count FLOPs of one step on the meta device (no compute)

One step = what RVC's loop does per batch: G forward (posterior, flow, prior, decoder on a random segment),
D forward on (real, fake.detach()) + backward + AdamW step, then D forward on (real, fake) + G losses
(LSGAN, feature matching x2, mel L1 x45, KL) + backward + AdamW step. Random inputs shaped like RVC v2 40k
training (frames = 3.7 s clips at 100 frames/s). Each size runs 2 warm-up steps, then --steps timed ones. Wall
time and process CPU time are printed; on a busy shared machine CPU time is the steadier measure (run with
OMP_WAIT_POLICY=PASSIVE so that OpenMP threads waiting for a descheduled peer do not spin and count as work).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def _mel_l1(y: torch.Tensor, y_hat: torch.Tensor, n_fft: int = 2048, hop: int = 400) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=y.device)

    def spec(w: torch.Tensor) -> torch.Tensor:
        s = torch.stft(w.squeeze(1), n_fft, hop, window=window, return_complex=True)
        return torch.log(torch.clamp(s.abs(), min=1e-5))

    return F.l1_loss(spec(y), spec(y_hat))


def _kl(z_p, logs_q, m_p, logs_p, mask):
    kl = logs_p - logs_q - 0.5 + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)


class Step:
    def __init__(self, size: str, version: str, sample_rate: int, batch: int, frames: int, device: str,
                 **overrides) -> None:
        """`overrides`: SynthConfig fields to change from the preset (to try other widths)."""
        from dataclasses import replace

        from voiceapp.nets.discriminator import MultiPeriodDiscriminator
        from voiceapp.nets.synthesizer import SynthConfig, Synthesizer

        torch.manual_seed(0)
        self.cfg = cfg = replace(SynthConfig.preset(version, sample_rate, True, size), **overrides)
        self.net_g = Synthesizer(cfg).to(device).train()
        self.net_d = MultiPeriodDiscriminator(version, width=cfg.discriminator_width).to(device).train()
        self.opt_g = torch.optim.AdamW(self.net_g.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
        self.opt_d = torch.optim.AdamW(self.net_d.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
        self.params_g = sum(p.numel() for p in self.net_g.parameters())
        self.params_d = sum(p.numel() for p in self.net_d.parameters())
        self.inputs = dict(
            phone=torch.randn(batch, frames, cfg.content_dim, device=device),
            phone_lengths=torch.full((batch,), frames, device=device),
            pitch=torch.randint(1, 256, (batch, frames), device=device),
            pitchf=torch.rand(batch, frames, device=device) * 300 + 80,
            y=torch.rand(batch, cfg.spec_channels, frames, device=device),
            y_lengths=torch.full((batch,), frames, device=device),
            sid=torch.zeros(batch, dtype=torch.long, device=device))
        self.wave = torch.randn(batch, 1, frames * cfg.hop_length, device=device) * 0.1

    def __call__(self) -> None:
        from voiceapp.nets.commons import slice_segments

        hop = self.cfg.hop_length
        o, ids, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q) = self.net_g(**self.inputs)
        real = slice_segments(self.wave, ids * hop, self.cfg.segment_samples)
        y_d_rs, y_d_gs, _, _ = self.net_d(real, o.detach())
        loss_d = sum(torch.mean((1 - r) ** 2) + torch.mean(g ** 2) for r, g in zip(y_d_rs, y_d_gs))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        _, y_d_gs, fmap_rs, fmap_gs = self.net_d(real, o)
        loss_gen = sum(torch.mean((1 - g) ** 2) for g in y_d_gs)
        loss_fm = 2 * sum(torch.mean(torch.abs(r.detach() - g)) for fr, fg in zip(fmap_rs, fmap_gs)
                          for r, g in zip(fr, fg))
        loss = loss_gen + loss_fm + 45 * _mel_l1(real, o) + _kl(z_p, logs_q, m_p, logs_p, y_mask)
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()


def count_flops(sizes: list[str], version: str, sample_rate: int, batch: int, frames: int) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    totals = {}
    for size in sizes:
        with torch.device("meta"):
            step = Step(size, version, sample_rate, batch, frames, "meta")
        step.opt_g.step = step.opt_d.step = lambda: None  # optimizer updates are not FLOP-counted
        with FlopCounterMode(display=False) as counter:
            step()
        totals[size] = counter.get_total_flops()
        print(f"{size:>6}: {totals[size] / 1e9:8.1f} GFLOP per step (forward + backward), "
              f"{totals[sizes[0]] / totals[size]:5.1f}x fewer than {sizes[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", nargs="+", default=["full", "light"])
    parser.add_argument("--steps", type=int, default=3, help="measured steps per size (after one warm-up)")
    parser.add_argument("--frames", type=int, default=370, help="frames per example (3.7 s clips)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--version", default="v2")
    parser.add_argument("--sample-rate", type=int, default=40000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flops", action="store_true", help="count FLOPs instead of timing")
    args = parser.parse_args()
    if args.flops:
        count_flops(args.sizes, args.version, args.sample_rate, args.batch, args.frames)
        return
    torch.set_num_threads(args.threads)
    steps = {s: Step(s, args.version, args.sample_rate, args.batch, args.frames, args.device) for s in args.sizes}
    times: dict[str, list[float]] = {s: [] for s in args.sizes}
    cpu: dict[str, list[float]] = {s: [] for s in args.sizes}
    for size, step in steps.items():  # one size at a time, as a training run would (no cache/allocator churn)
        for _ in range(2):
            step()  # warm-up (oneDNN primitive creation, allocator)
        for _ in range(args.steps):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[size].append(time.perf_counter() - start)
            cpu[size].append(time.process_time() - start_cpu)
            print(f"  {size}: {times[size][-1]:.2f} s wall, {cpu[size][-1]:.2f} s CPU", flush=True)
    base = statistics.median(times[args.sizes[0]])
    base_cpu = statistics.median(cpu[args.sizes[0]])
    print(f"{args.version} {args.sample_rate} Hz, batch {args.batch} x {args.frames} frames, "
          f"{args.threads} threads, device {args.device}")
    for size in args.sizes:
        med, med_cpu = statistics.median(times[size]), statistics.median(cpu[size])
        s = steps[size]
        print(f"{size:>6}: {med:7.2f} s/step wall (median of {len(times[size])}), {med_cpu:7.2f} s CPU; "
              f"G {s.params_g / 1e6:.1f} M, D {s.params_d / 1e6:.1f} M params; {base / med:5.1f}x (wall), "
              f"{base_cpu / med_cpu:5.1f}x (CPU) cheaper than {args.sizes[0]}")


if __name__ == "__main__":
    main()
