"""The training loop: `train(exp, cfg, progress, cancel)` (RVC's recipe, rvc-facts §4).

Reads   logs/<exp>/features/ (+ the clips they point to), models/base/pretrained_v2/ (optional),
        the latest complete G_/D_ pair in logs/<exp>/ (resume).
Writes  logs/<exp>/G_<step>.pth, D_<step>.pth every `save_every_epochs` and at the end, events.jsonl,
        TensorBoard events; models/voices/<exp>/<exp>.pth (last epoch), <exp>_best.pth (best validation
        epoch), <exp>_e<epoch>_s<step>.pth (each save, optional).

One step: D on (real, generated.detach()) with LSGAN; then G with LSGAN + 2 x feature matching + 45 x mel L1 +
1 x KL. AdamW(1e-4, (0.8, 0.99), 1e-9) for both, ExponentialLR(0.999875) stepped per epoch. On CUDA, autocast
in bf16/fp16 (GradScaler for fp16); mel and losses in fp32.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voiceapp.errors import Cancelled, ConfigError, InputError, MissingArtifactError, VoiceAppError
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress
from voiceapp.train import checkpoints as ckpt
from voiceapp.train.board import Board
from voiceapp.train.config import TrainConfig
from voiceapp.train.data import (BucketBatchSampler, FeatureDataset, bucket_boundaries, choose_validation, collate,
                                 damaged_clips, load_manifest, scan_clips, slice_segments, split_short,
                                 unfinished_features)
from voiceapp.train.distributed import DistInfo, cleanup_distributed, dist_from_env, init_distributed, rank_device
from voiceapp.train.events import EventLog
from voiceapp.train.losses import discriminator_loss, feature_loss, generator_loss, kl_loss
from voiceapp.train.mel import MelConfig, mel_spectrogram, spec_to_mel
from voiceapp.train.pretrained import choose_pretrained
from voiceapp.workspace import ExperimentDir, Workspace

log = logging.getLogger(__name__)

LOG_EVERY_S = 30.0   # a step event at least this often, so slow (CPU) runs still show progress


@dataclass
class TrainResult:
    experiment: str
    epoch: int
    step: int
    voice_models: list[Path] = field(default_factory=list)
    best_epoch: int | None = None
    best_mel_l1: float | None = None
    checkpoint: Path | None = None


def resolve_precision(precision: str, device: str) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is needed). Autocast only on CUDA."""
    if not device.startswith("cuda") or precision == "fp32":
        return None, False
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return (torch.bfloat16, False) if precision == "bf16" else (torch.float16, True)


def classify_error(err: BaseException, batch_size: int) -> tuple[str, str]:
    """(kind, advice) for an exception that ended a run: "oom", "user" or "crash"."""
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        smaller = max(1, batch_size // 2)
        return "oom", (f"The GPU ran out of memory at batch size {batch_size}. Resume with batch size {smaller} "
                       f"(training continues from the last save), close other programs using the GPU, or choose "
                       f"the light preset.")
    if isinstance(err, VoiceAppError):
        return "user", ""
    return "crash", "Details are in logs/voiceapp.log and logs/<exp>/train.log. Resume continues from the last save."


class Trainer:
    """One training run (one process; a DDP group runs one Trainer per process)."""

    def __init__(self, exp: ExperimentDir, cfg: TrainConfig, *, workspace: Workspace, device: str = "cpu",
                 dist_info: DistInfo | None = None, progress: Progress = no_progress,
                 cancel: CancelToken = NEVER) -> None:
        self.exp, self.cfg, self.workspace, self.device = exp, cfg, workspace, device
        self.dist = dist_info or DistInfo()
        self.progress, self.cancel = progress, cancel
        self.events = EventLog(exp.events_path, enabled=self.dist.is_main)
        self.board: Board | None = None
        self.epoch, self.step = 0, 0
        self.best_epoch: int | None = None
        self.best_mel_l1: float | None = None
        self.voice_models: list[Path] = []
        self.last_pair: ckpt.CheckpointPair | None = None
        self._last_slice: tuple[np.ndarray, np.ndarray] | None = None

    # ---------------------------------------------------------------- setup
    def prepare(self) -> None:
        """Read the features, build data, models and optimizers, then resume or load pretrained weights."""
        from voiceapp.nets.synthesizer import SynthConfig, Synthesizer

        try:
            from voiceapp.nets.synthesizer import MultiPeriodDiscriminator
        except ImportError:
            from voiceapp.nets.discriminator import MultiPeriodDiscriminator
        cfg = self.cfg
        self.manifest = manifest = load_manifest(self.exp)
        unfinished_features(self.exp.name, manifest)
        self.sample_rate = int(cfg.sample_rate or manifest.sample_rate)
        if int(manifest.sample_rate) != self.sample_rate:
            raise ConfigError(f"The features of {self.exp.name} come from {manifest.sample_rate} Hz clips, but "
                              f"training was asked at {self.sample_rate} Hz. Choose {manifest.sample_rate}, or "
                              f"prepare the dataset at {self.sample_rate} Hz and extract features again.")
        self.version = cfg.version or manifest.version or "v2"
        if manifest.version and manifest.version != self.version:
            raise ConfigError(f"The features of {self.exp.name} were extracted for a {manifest.version} model, "
                              f"not {self.version}. Train a {manifest.version} model or extract features again "
                              f"with version {self.version}.")
        self.content_dim, self.encoder = int(manifest.dim), str(manifest.encoder or "unknown")
        self.synth_cfg = SynthConfig.preset(version=self.version, sample_rate=self.sample_rate, use_f0=cfg.use_f0,
                                            size=cfg.preset, content_dim=self.content_dim)
        self.mel_cfg = MelConfig.for_synth(self.synth_cfg)
        self.segment_frames = int(self.synth_cfg.segment_frames)
        self.hop = self.mel_cfg.hop_length
        self._prepare_data()
        if self.device.startswith("cuda"):
            torch.backends.cudnn.benchmark = True     # bucketed lengths repeat, so tuned kernels are reused
        self._build_models(Synthesizer, MultiPeriodDiscriminator)
        self.pretrained_message = self._resume_or_pretrained()
        self._wrap_ddp()
        self.board = Board(self.exp.tensorboard_dir, enabled=self.dist.is_main)

    def _prepare_data(self) -> None:
        cfg = self.cfg
        records, missing = scan_clips(self.exp, self.manifest, self.hop, self.sample_rate, cfg.max_frames, cfg.use_f0)
        usable, short = split_short(records, self.segment_frames)
        self.short_clips, self.missing_clips = [r.stem for r in short], missing
        damaged = damaged_clips(missing)
        if damaged and self.dist.is_main:
            log.warning("%d clip(s) skipped: %s", len(damaged), "; ".join(damaged[:3]) + (" ..." if len(damaged) > 3
                                                                                           else ""))
        if not usable:
            raise InputError(f"No clip in {self.exp.features_dir} is long enough to train on (each needs at least "
                             f"{self.segment_frames * self.hop / self.sample_rate:.2f} s; {len(short)} too short, "
                             f"{len(missing)} incomplete). Add longer recordings in the Dataset tab.")
        if self.dist.is_main:
            ckpt.remove_temporaries(self.exp.checkpoints_dir)
        self._resume_pair = ckpt.latest_checkpoint(self.exp.checkpoints_dir)
        self._resume_g = ckpt.load_checkpoint(self._resume_pair.generator) if self._resume_pair else None
        stems = self._resume_g.get("voiceapp", {}).get("validation_stems") if self._resume_g else None
        names = {r.stem for r in usable}
        if stems is None or not set(stems) <= names:
            stems = choose_validation(usable, cfg.validation_clips, cfg.seed)
        self.validation_stems = list(stems)
        train_records = [r for r in usable if r.stem not in set(stems)]
        self.train_set = FeatureDataset(train_records, self.mel_cfg, cfg.use_f0)
        self.val_set = FeatureDataset([r for r in usable if r.stem in set(stems)], self.mel_cfg, cfg.use_f0)
        self.sampler = BucketBatchSampler(self.train_set.lengths, cfg.batch_size,
                                          bucket_boundaries(self.segment_frames, cfg.max_frames),
                                          num_replicas=self.dist.world_size, rank=self.dist.rank, seed=cfg.seed)
        loader_kwargs: dict[str, Any] = {}
        if cfg.num_workers:
            loader_kwargs = {"num_workers": cfg.num_workers, "persistent_workers": True, "prefetch_factor": 4}
        self.loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=self.sampler, pin_memory=self.device.startswith("cuda"),
            collate_fn=lambda items: collate(items, cfg.speaker_id), **loader_kwargs)

    def _build_models(self, synthesizer_cls: Any, discriminator_cls: Any) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.net_g = synthesizer_cls(self.synth_cfg).to(self.device)
        self.net_d = discriminator_cls(version=self.version, size=cfg.preset,
                                       width=getattr(self.synth_cfg, "discriminator_width", None)).to(self.device)
        opt = {"lr": cfg.learning_rate, "betas": cfg.betas, "eps": cfg.eps}
        self.optim_g = torch.optim.AdamW(self.net_g.parameters(), **opt)
        self.optim_d = torch.optim.AdamW(self.net_d.parameters(), **opt)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, gamma=cfg.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, gamma=cfg.lr_decay)
        self.autocast_dtype, use_scaler = resolve_precision(cfg.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda" if self.device.startswith("cuda") else "cpu", enabled=use_scaler)

    def _resume_or_pretrained(self) -> str:
        if self._resume_pair is not None:
            return self._resume(self._resume_pair, self._resume_g)
        cfg = self.cfg
        choice = choose_pretrained(self.workspace, cfg.pretrained, cfg.preset, self.version, self.sample_rate,
                                   cfg.use_f0, self.content_dim, self.encoder)
        if not choice.used:
            return choice.message
        from voiceapp.train.pretrained import load_pretrained

        try:
            load_pretrained(self.net_g, choice.generator)
            load_pretrained(self.net_d, choice.discriminator)
        except VoiceAppError as err:
            torch.manual_seed(cfg.seed)
            self._build_models(type(ckpt.unwrap(self.net_g)), type(ckpt.unwrap(self.net_d)))
            return f"Training from scratch: {err}"
        return choice.message

    def _resume(self, pair: ckpt.CheckpointPair, g_state: dict[str, Any]) -> str:
        d_state = ckpt.load_checkpoint(pair.discriminator)
        ckpt.load_model_state(self.net_d, d_state["model"], pair.discriminator.name)
        ckpt.load_model_state(self.net_g, g_state["model"], pair.generator.name)
        self.optim_d.load_state_dict(d_state["optimizer"])
        self.optim_g.load_state_dict(g_state["optimizer"])
        self.epoch = int(g_state["iteration"])
        self.step = int(g_state.get("step", pair.step))
        if g_state.get("scheduler"):
            self.sched_g.load_state_dict(g_state["scheduler"])
            self.sched_d.load_state_dict(d_state["scheduler"])
        else:  # an RVC/Applio checkpoint: rebuild the decayed rate from the epoch
            for sched in (self.sched_g, self.sched_d):
                sched.last_epoch = self.epoch
                for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                    group["lr"] = base * self.cfg.lr_decay ** self.epoch
        if g_state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(g_state["scaler"])
        extra = g_state.get("voiceapp", {})
        self.best_epoch, self.best_mel_l1 = extra.get("best_epoch"), extra.get("best_mel_l1")
        self._resume_rng = g_state.get("rng")
        self._resume_g = None
        self.last_pair = pair
        self.events.write("resume", step=self.step, epoch=self.epoch, files=[pair.generator.name,
                                                                             pair.discriminator.name])
        return f"Resuming from {pair.generator.name} (epoch {self.epoch}, step {self.step})."

    def _wrap_ddp(self) -> None:
        if not self.dist.enabled:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.dist.local_rank] if self.device.startswith("cuda") else None
        self.net_g = DDP(self.net_g, device_ids=ids)
        self.net_d = DDP(self.net_d, device_ids=ids)

    # ---------------------------------------------------------------- one step
    def _autocast(self):
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype) if self.autocast_dtype else \
            torch.autocast(device_type=torch.device(self.device).type, enabled=False)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One D step and one G step on `batch` (see `collate`); returns the losses and gradient norms."""
        cfg, dev = self.cfg, self.device
        b = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        pitch, pitchf = (b["pitch"], b["pitchf"]) if cfg.use_f0 else (None, None)
        with self._autocast():
            y_hat, ids_slice, _x_mask, z_mask, (_z, z_p, m_p, logs_p, _m_q, logs_q) = self.net_g(
                b["phone"], b["phone_lengths"], pitch, pitchf, b["spec"], b["spec_lengths"], b["sid"])
        mel = spec_to_mel(b["spec"], self.mel_cfg)
        y_mel = slice_segments(mel, ids_slice, self.segment_frames)
        y_hat_mel = mel_spectrogram(y_hat.float().squeeze(1), self.mel_cfg)
        wave = slice_segments(b["wave"], ids_slice * self.hop, self.segment_frames * self.hop)
        frames = min(y_mel.shape[-1], y_hat_mel.shape[-1])
        y_mel, y_hat_mel = y_mel[..., :frames], y_hat_mel[..., :frames]

        with self._autocast():
            d_real, d_fake, _, _ = self.net_d(wave, y_hat.detach())
        loss_d, _, _ = discriminator_loss(d_real, d_fake)
        self.optim_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.unscale_(self.optim_d)
        grad_norm_d = _grad_norm(self.net_d.parameters())
        self.scaler.step(self.optim_d)

        with self._autocast():
            _, d_fake, fmap_real, fmap_fake = self.net_d(wave, y_hat)
        loss_mel = torch.nn.functional.l1_loss(y_mel, y_hat_mel) * cfg.c_mel
        loss_kl = kl_loss(z_p, logs_q, m_p, logs_p, z_mask) * cfg.c_kl
        loss_fm = feature_loss(fmap_real, fmap_fake) * cfg.c_fm
        loss_gen, _ = generator_loss(d_fake)
        loss_g = loss_gen + loss_fm + loss_mel + loss_kl
        self.optim_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.unscale_(self.optim_g)
        grad_norm_g = _grad_norm(self.net_g.parameters())
        self.scaler.step(self.optim_g)
        self.scaler.update()
        self._last_slice = (y_mel[0].detach().cpu().numpy(), y_hat_mel[0].detach().float().cpu().numpy())
        values = {"d": loss_d, "g": loss_g, "gen": loss_gen, "fm": loss_fm, "mel": loss_mel, "kl": loss_kl}
        return {**{k: float(v.detach()) for k, v in values.items()}, "grad_norm_g": grad_norm_g,
                "grad_norm_d": grad_norm_d}

    # ---------------------------------------------------------------- the run
    def fit(self) -> TrainResult:
        cfg = self.cfg
        steps_per_epoch = len(self.sampler)
        self.events.write(
            "start", experiment=self.exp.name, config=cfg.to_json(), device=self.device,
            world_size=self.dist.world_size, precision=str(self.autocast_dtype or "fp32"),
            pretrained=self.pretrained_message, sample_rate=self.sample_rate, version=self.version,
            encoder=self.encoder, content_dim=self.content_dim, rvc_compatible=cfg.preset == "full",
            clips=len(self.train_set), validation=self.validation_stems, too_short=self.short_clips[:50],
            too_short_count=len(self.short_clips), incomplete_count=len(self.missing_clips),
            steps_per_epoch=steps_per_epoch, start_epoch=self.epoch + 1, start_step=self.step, epochs=cfg.epochs)
        log.info("%s", self.pretrained_message)
        if self.short_clips:
            log.warning("%d clip(s) shorter than one training segment are skipped", len(self.short_clips))
        if getattr(self, "_resume_rng", None):
            ckpt.restore_rng_state(self._resume_rng)
        total_steps = max(1, (cfg.epochs - self.epoch) * steps_per_epoch)
        run_start, run_steps = time.perf_counter(), 0
        last_log = run_start
        while self.epoch < cfg.epochs:
            epoch = self.epoch + 1
            self.sampler.set_epoch(epoch)
            epoch_start = time.perf_counter()
            for batch in self.loader:
                self.cancel.raise_if_set()
                losses = self.train_step(batch)
                self.step += 1
                run_steps += 1
                rate = run_steps / max(time.perf_counter() - run_start, 1e-9)
                if run_steps == 1 or self.step % cfg.log_every_steps == 0 or \
                        time.perf_counter() - last_log >= LOG_EVERY_S:
                    self._log_step(epoch, losses, rate, total_steps - run_steps)
                    last_log = time.perf_counter()
                self.progress(run_steps / total_steps, f"epoch {epoch}/{cfg.epochs} step {self.step} "
                                                       f"mel {losses['mel']:.2f}")
            self.sched_g.step()
            self.sched_d.step()
            self.epoch = epoch
            self.events.write("epoch", epoch=epoch, step=self.step, seconds=round(time.perf_counter() - epoch_start, 3),
                              lr=self.optim_g.param_groups[0]["lr"])
            if epoch % cfg.save_every_epochs == 0 or epoch == cfg.epochs:
                self.save()
        if self.dist.is_main:
            self.export_final()
        self.events.write("done", epoch=self.epoch, step=self.step, best_epoch=self.best_epoch,
                          best_mel_l1=self.best_mel_l1, voice_models=[str(p) for p in self.voice_models])
        return TrainResult(self.exp.name, self.epoch, self.step, list(self.voice_models), self.best_epoch,
                           self.best_mel_l1, self.last_pair.generator if self.last_pair else None)

    def _log_step(self, epoch: int, losses: dict[str, float], rate: float, steps_left: int) -> None:
        lr = self.optim_g.param_groups[0]["lr"]
        loss_fields = {k: round(v, 5) for k, v in losses.items() if not k.startswith("grad")}
        self.events.write("step", step=self.step, epoch=epoch, losses=loss_fields, lr=lr,
                          grad_norm_g=round(losses["grad_norm_g"], 4), grad_norm_d=round(losses["grad_norm_d"], 4),
                          steps_per_s=round(rate, 4), eta_s=round(steps_left / max(rate, 1e-9), 1))
        if self.board is not None:
            self.board.scalars({"loss/g/total": losses["g"], "loss/d/total": losses["d"], "loss/g/fm": losses["fm"],
                                "loss/g/mel": losses["mel"], "loss/g/kl": losses["kl"], "loss/g/gen": losses["gen"],
                                "learning_rate": lr, "grad_norm_g": losses["grad_norm_g"],
                                "grad_norm_d": losses["grad_norm_d"]}, self.step)

    # ---------------------------------------------------------------- validation and saving
    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean L1 between the log-mels of held-out clips and the model's conversion of their features."""
        if not len(self.val_set):
            return None
        net = ckpt.unwrap(self.net_g)
        net.eval()
        errors = []
        try:
            for i in range(len(self.val_set)):
                item = collate([self.val_set[i]], self.cfg.speaker_id)
                b = {k: v.to(self.device) for k, v in item.items()}
                generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed + i)
                pitch, pitchf = (b["pitch"], b["pitchf"]) if self.cfg.use_f0 else (None, None)
                audio = net.infer(b["phone"], b["phone_lengths"], pitch, pitchf, b["sid"], generator=generator)
                audio = audio[0] if isinstance(audio, (tuple, list)) else audio
                gen_mel = mel_spectrogram(audio.float().reshape(1, -1), self.mel_cfg)[0]
                real_mel = spec_to_mel(b["spec"], self.mel_cfg)[0]
                frames = min(gen_mel.shape[-1], real_mel.shape[-1])
                errors.append(float(torch.mean(torch.abs(gen_mel[:, :frames] - real_mel[:, :frames]))))
                if self.board is not None and i < 2:
                    self.board.mel(f"validation/mel_gen_{i}", gen_mel.cpu().numpy(), self.step)
                    self.board.audio(f"validation/audio_gen_{i}", audio.cpu().numpy(), self.sample_rate, self.step)
                    if self.step == 0 or not getattr(self, "_real_logged", False):
                        self.board.mel(f"validation/mel_org_{i}", real_mel.cpu().numpy(), self.step)
                        self.board.audio(f"validation/audio_org_{i}", b["wave"][0].cpu().numpy(), self.sample_rate,
                                         self.step)
            self._real_logged = True
        finally:
            net.train()
        return float(np.mean(errors))

    def _generator_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in ckpt.unwrap(self.net_g).state_dict().items()}

    def _export(self, suffix: str) -> Path:
        from voiceapp.voices.rvc import export_voice_model

        path = self.workspace.voice_model_path(self.exp.name, suffix)
        info = f"{self.epoch}epoch"
        export_voice_model(self._generator_state(), self.synth_cfg, path, epoch=self.epoch, step=self.step,
                           embedder=self.encoder, name=self.exp.name, author=self.cfg.author, info=info)
        return path

    def save(self) -> None:
        """Validation, then G_/D_ checkpoints, optional per-save voice model, pruning; rank 0 only."""
        if not self.dist.is_main:
            self._barrier()
            return
        mel_l1 = self.validate()
        best_path = None
        if mel_l1 is not None:
            if self.best_mel_l1 is None or mel_l1 < self.best_mel_l1:
                self.best_mel_l1, self.best_epoch = mel_l1, self.epoch
                best_path = self._export("_best")
            self.events.write("validation", epoch=self.epoch, step=self.step, mel_l1=round(mel_l1, 5),
                              best_epoch=self.best_epoch, best_mel_l1=round(self.best_mel_l1, 5))
            if self.board is not None:
                self.board.scalars({"validation/mel_l1": mel_l1}, self.step)
        if self.board is not None and self._last_slice is not None:
            self.board.mel("slice/mel_org", self._last_slice[0], self.step)
            self.board.mel("slice/mel_gen", self._last_slice[1], self.step)
            self.board.flush()
        pair = ckpt.checkpoint_pair(self.exp.checkpoints_dir, self.step)
        extra = {"config": self.cfg.to_json(), "validation_stems": list(self.validation_stems),
                 "best_epoch": self.best_epoch, "best_mel_l1": self.best_mel_l1,
                 "synth_config": [_plain(v) for v in self.synth_cfg.to_rvc_list()], "version": self.version,
                 "synth": self.synth_cfg.to_dict(),
                 "embedder": self.encoder, "preset": self.cfg.preset}
        common = {"epoch": self.epoch, "step": self.step, "learning_rate": self.cfg.learning_rate, "extra": extra}
        ckpt.save_checkpoint(pair.discriminator, self.net_d, self.optim_d, scheduler=self.sched_d,
                             scaler=self.scaler, **common)
        ckpt.save_checkpoint(pair.generator, self.net_g, self.optim_g, scheduler=self.sched_g, scaler=self.scaler,
                             **common)
        self.last_pair = pair
        voice = self._export(f"_e{self.epoch}_s{self.step}") if self.cfg.save_voice_each_save else None
        if voice is not None:
            self.voice_models.append(voice)
        if best_path is not None and best_path not in self.voice_models:
            self.voice_models.append(best_path)
        removed = ckpt.prune_checkpoints(self.exp.checkpoints_dir, self.step) if self.cfg.save_latest_only else []
        self.events.write("save", epoch=self.epoch, step=self.step, files=[pair.generator.name,
                                                                           pair.discriminator.name],
                          voice=str(voice) if voice else None, removed=[p.name for p in removed])
        self._barrier()

    def _barrier(self) -> None:
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()

    def export_final(self) -> list[Path]:
        """models/voices/<exp>/<exp>.pth from the last epoch (the best one was written when it happened)."""
        final = self._export("")
        best = self.workspace.voice_model_path(self.exp.name, "_best")
        paths = [final] + ([best] if best.exists() else [])
        for path in paths:
            if path not in self.voice_models:
                self.voice_models.append(path)
        self.events.write("export", paths=[str(p) for p in paths], epoch=self.epoch, step=self.step,
                          best_epoch=self.best_epoch)
        return paths

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _grad_norm(parameters: Any) -> float:
    norms = [p.grad.detach().float().norm(2) for p in parameters if p.grad is not None]
    if not norms:
        return 0.0
    value = float(torch.linalg.vector_norm(torch.stack(norms), 2))
    return value if math.isfinite(value) else float("nan")


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def export_checkpoint(workspace: Workspace, exp: ExperimentDir, step: int | None = None) -> Path:
    """Write the voice model of a saved checkpoint (`G_<step>.pth`, default the latest) to
    models/voices/<exp>/<exp>_e<epoch>_s<step>.pth, e.g. to pick an earlier epoch than the last."""
    from voiceapp.nets.synthesizer import SynthConfig
    from voiceapp.voices.rvc import export_voice_model

    pairs = {p.step: p for p in ckpt.list_checkpoints(exp.checkpoints_dir)}
    if not pairs:
        raise MissingArtifactError(f"No checkpoints in {exp.root}; train {exp.name} first.")
    if step is None:
        step = max(pairs)
    if step not in pairs:
        raise InputError(f"No G_{step}.pth in {exp.root}; saved steps: {sorted(pairs)}.")
    state = ckpt.load_checkpoint(pairs[step].generator)
    extra = state.get("voiceapp", {})
    if "synth" not in extra:
        raise InputError(f"{pairs[step].generator.name} was not written by Voiceapp (no model settings inside); "
                         f"use RVC's ckpt tab to extract it.")
    epoch = int(state["iteration"])
    cfg = SynthConfig(**extra["synth"])
    path = workspace.voice_model_path(exp.name, f"_e{epoch}_s{step}")
    author = extra.get("config", {}).get("author", "")
    return export_voice_model(state["model"], cfg, path, epoch=epoch, step=step,
                              embedder=extra.get("embedder", "unknown"), name=exp.name, author=author,
                              info=f"{epoch}epoch")


def train(exp: ExperimentDir, cfg: TrainConfig, progress: Progress = no_progress, cancel: CancelToken = NEVER, *,
          workspace: Workspace | None = None, device: str = "cpu", dist_info: DistInfo | None = None,
          on_ready: Callable[[], Any] | None = None) -> TrainResult:
    """Train (or resume) the voice model of `exp` with `cfg`; see the module docstring for what is read and written.
    `on_ready` is called once the models are built and the checkpoints or pretrained weights loaded (the CLI then
    saves the settings as train.json).

    Raises `Cancelled` when `cancel` is set (after an event `stopped`); other failures are reported as an `error`
    event (kind oom/user/crash with advice) and re-raised.
    """
    workspace = workspace or Workspace(exp.root.parent.parent)
    dist_info = dist_info or dist_from_env()
    device = rank_device(device, dist_info)
    init_distributed(dist_info, device)
    trainer = Trainer(exp, cfg, workspace=workspace, device=device, dist_info=dist_info, progress=progress,
                      cancel=cancel)
    try:
        trainer.prepare()
        if on_ready is not None:
            on_ready()
        return trainer.fit()
    except Cancelled:
        trainer.events.write("stopped", epoch=trainer.epoch, step=trainer.step,
                             message="Stopped. Resume continues from the last save.")
        raise
    except BaseException as err:
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            trainer.events.write("stopped", epoch=trainer.epoch, step=trainer.step, message="Interrupted.")
            raise
        kind, advice = classify_error(err, cfg.batch_size)
        message = str(err) if kind == "user" else f"{type(err).__name__}: {err}"
        trainer.events.write("error", kind=kind, message=message, advice=advice, epoch=trainer.epoch,
                             step=trainer.step)
        raise
    finally:
        trainer.close()
        cleanup_distributed()
