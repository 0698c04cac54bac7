"""The `quick` engine's trainer: a QuickNet learns the target's WORLD frames from its content, on a CPU budget.

Recipe: the target's frames (train/acoustic.py); each frame is matched to its 8 nearest frames from the target's
*other* recordings (prematching), and every step averages a random 4 of them -- content and WORLD frames -- so
the network learns to turn what conversion gives it (matched content and the instant engine's averaged frames)
into the target's own spectral envelope and aperiodicity (L1 on normalised codes, AdamW, dropout, cosine learning
rate over the budget). Half the items instead carry the content of the target's clips resynthesised as other
speakers (formants and pitch moved; train/acoustic.AUGMENTATIONS), blended with their matched content by a random
amount: the network learns to read the words from a stranger's content, which is what `neighbour_blend` below 1
gives it at conversion. The voice file holds the weights with the best validation L1.

Reads logs/<exp>/features/; writes logs/<exp>/Q_<step>.pth (checkpoint: weights, optimizer, step, seconds trained,
random state; loaded with weights_only=True), logs/<exp>/events.jsonl and TensorBoard scalars (loss/train,
validation/l1), and the voice model models/voices/<exp>/<exp>.safetensors at every save.
Training stops after `cfg.minutes` of training time (summed over resumed runs) or at `cfg.max_steps`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voiceapp.errors import Cancelled, InputError
from voiceapp.nets.quicknet import QuickConfig, QuickNet, pitch_features
from voiceapp.progress import NEVER, CancelToken, Progress, no_progress, sub_progress
from voiceapp.train.acoustic import TargetFrames
from voiceapp.train.events import EventLog
from voiceapp.workspace import ExperimentDir, atomic_path

log = logging.getLogger(__name__)

SEGMENT_FRAMES = 100          # content frames per training item (2 s)
CANDIDATES, NEIGHBOURS = 8, 4 # per frame: nearest frames of other recordings, and how many are averaged
BATCH_ITEMS = 16
LEARNING_RATE = 1e-3
MIN_LR_FRACTION = 0.05
SAVE_EVERY_S = 60.0           # checkpoint + voice model at least this often
LOG_EVERY_S = 5.0
AUGMENTED_SHARE = 0.5         # share of items whose content comes from a speaker-augmented copy


@dataclass
class QuickResult:
    experiment: str
    step: int
    trained_s: float
    voice_model: Path | None
    best_l1: float | None
    checkpoint: Path | None


def source_groups(stems: tuple[str, ...]) -> np.ndarray:
    """One group per source recording (clip names are `<sha256 of the source>_<n>`)."""
    keys = [s.rsplit("_", 1)[0] if "_" in s else s for s in stems]
    order = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return np.array([order[k] for k in keys], dtype=np.int64)


def split_validation(target: TargetFrames, wanted: int) -> tuple[np.ndarray, np.ndarray]:
    """(train clip ids, validation clip ids): the last recordings' clips, at least `wanted` clips, never all."""
    groups = source_groups(target.clips)
    clips = np.arange(len(target.clips))
    if wanted <= 0 or len(np.unique(groups)) < 2:
        return clips, clips[:0]
    held: list[int] = []
    for g in sorted(np.unique(groups), reverse=True):
        if len(held) >= wanted:
            break
        held += [int(c) for c in clips[groups == g]]
    if len(held) >= len(clips):
        return clips, clips[:0]
    held_set = set(held)
    return np.array([c for c in clips if c not in held_set]), np.array(sorted(held))


class QuickTrainer:
    def __init__(self, exp: ExperimentDir, cfg: Any, workspace: Any, progress: Progress = no_progress,
                 cancel: CancelToken = NEVER) -> None:
        self.exp, self.cfg, self.workspace = exp, cfg, workspace
        self.progress, self.cancel = progress, cancel
        self.events = EventLog(exp.events_path)
        self.budget_s = float(cfg.minutes) * 60.0
        self.step, self.trained_s, self.best_l1 = 0, 0.0, None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0
        self.generator = torch.Generator().manual_seed(int(cfg.seed))
        self.voice_path: Path | None = None
        self.checkpoint: Path | None = None

    # ------------------------------------------------------------------ data
    def prepare(self) -> None:
        from voiceapp.index.neighbours import neighbours_elsewhere
        from voiceapp.train.acoustic import analyze_target, augmented_content, load_target

        paths, encoder = analyze_target(self.exp, self.workspace, sub_progress(self.progress, 0, 0.03), self.cancel)
        self.target = t = load_target(paths, encoder, self.exp.name)
        groups = source_groups(t.clips)[t.clip_ids]
        self.augmented = augmented_content(self.exp, self.workspace, t, sub_progress(self.progress, 0.03, 0.06),
                                           self.cancel)                              # (variants, n, dim)
        # candidates[0]: prematching of the target's own content; [1 + v]: of augmentation v's content
        self.candidates = np.stack([neighbours_elsewhere(t.content, groups, k=CANDIDATES)] +
                                   [neighbours_elsewhere(t.content, groups, k=CANDIDATES, queries=a)
                                    for a in self.augmented])
        self.codes = np.concatenate([t.sp, t.ap], axis=-1)                      # (n, 2, out_dims)
        train_clips, val_clips = split_validation(t, int(self.cfg.validation_clips))
        self.train_rows = self._clip_rows(train_clips)
        self.val_rows = self._clip_rows(val_clips)
        if not self.train_rows:
            raise InputError(f"{self.exp.name}: no clip is long enough to train on; add recordings.")
        self.segment = min(SEGMENT_FRAMES, min(b - a for a, b in self.train_rows))
        weights = np.array([b - a - self.segment + 1 for a, b in self.train_rows], dtype=np.float64)
        self.clip_weights = torch.from_numpy(weights / weights.sum())
        preset = getattr(self.cfg, "preset", "full")
        make = QuickConfig.tiny if preset == "tiny" else QuickConfig
        net_cfg = make(content_dim=t.content.shape[1], sp_dims=t.sp.shape[-1], ap_dims=t.ap.shape[-1])
        outputs = np.concatenate([t.sp, t.ap], axis=-1).reshape(-1, net_cfg.out_dims)
        torch.manual_seed(int(self.cfg.seed))
        self.net = QuickNet(net_cfg)
        self.net.set_statistics(torch.from_numpy(t.content), torch.from_numpy(outputs))
        self.optim = torch.optim.AdamW(self.net.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
        self._resume()

    def _clip_rows(self, clip_ids: np.ndarray) -> list[tuple[int, int]]:
        ids = self.target.clip_ids
        rows = []
        for c in clip_ids:
            where = np.flatnonzero(ids == c)
            if len(where) >= 8:
                rows.append((int(where[0]), int(where[-1]) + 1))
        return rows

    def _item(self, a: int, b: int, start: int | None, mix: float, pick: np.ndarray | None,
              variant: int = 0) -> tuple[np.ndarray, ...]:
        """(content, f0, matched frames, true frames) of rows [a + start, a + start + segment) (the whole clip
        when `start` is None). variant 0: the target's own content, prematched; 1 + v: augmentation v, its content
        blended by `mix` with its matched content. `pick` chooses which candidates are averaged (None: nearest)."""
        t = self.target
        s = slice(a, b) if start is None else slice(a + start, a + start + self.segment)
        idx = self.candidates[variant, s]
        idx = idx[:, :NEIGHBOURS] if pick is None else np.take_along_axis(idx, pick[: len(idx)], axis=1)
        matched = t.content[idx].mean(axis=1)
        content = matched if variant == 0 else mix * matched + (1 - mix) * self.augmented[variant - 1, s]
        return content, t.f0[s], self.codes[idx].mean(axis=1), self.codes[s]

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        picks = torch.multinomial(self.clip_weights, BATCH_ITEMS, replacement=True, generator=self.generator)
        starts = torch.rand(BATCH_ITEMS, generator=self.generator)
        mixes = torch.rand(BATCH_ITEMS, generator=self.generator)
        variants = torch.randint(0, len(self.candidates), (BATCH_ITEMS,), generator=self.generator)
        own = torch.rand(BATCH_ITEMS, generator=self.generator) >= AUGMENTED_SHARE
        subsets = torch.rand(BATCH_ITEMS, self.segment, CANDIDATES, generator=self.generator).argsort(-1)
        items = []
        for i, (p, u, m) in enumerate(zip(picks.tolist(), starts.tolist(), mixes.tolist())):
            a, b = self.train_rows[p]
            start = int(u * (b - a - self.segment + 1))
            variant = 0 if bool(own[i]) else max(1, int(variants[i]))
            items.append(self._item(a, b, start, m, subsets[i, :, :NEIGHBOURS].numpy(), variant))
        content, f0, matched, target = (torch.from_numpy(np.stack(v)).float() for v in zip(*items))
        return content, pitch_features(f0, self.target.median_f0_hz), matched, target

    # ------------------------------------------------------------------ training
    def _lr(self) -> float:
        max_steps = getattr(self.cfg, "max_steps", None)
        done = self.step / max_steps if max_steps else self.trained_s / max(self.budget_s, 1e-9)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
        return LEARNING_RATE * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * cosine)

    def train_step(self) -> float:
        content, pitch, matched, target = self.batch()
        for group in self.optim.param_groups:
            group["lr"] = self._lr()
        loss = (self.net.forward_normalized(content, pitch, matched) - self.net.normalize(target)).abs().mean()
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
        self.optim.step()
        return float(loss.detach())

    def finished(self) -> bool:
        max_steps = getattr(self.cfg, "max_steps", None)
        if max_steps:
            return self.step >= max_steps
        return self.trained_s >= self.budget_s

    @torch.no_grad()
    def validate(self) -> float | None:
        if not self.val_rows:
            return None
        self.net.eval()
        losses = []
        for a, b in self.val_rows:
            for variant, mix in ((0, 1.0), (1, 0.0)):   # matched content; a stranger's own content
                content, f0, matched, target = (torch.from_numpy(v[None]).float()
                                                for v in self._item(a, b, None, mix, None, variant))
                predicted = self.net.forward_normalized(content, pitch_features(f0, self.target.median_f0_hz), matched)
                losses.append(float((predicted - self.net.normalize(target)).abs().mean()))
        self.net.train()
        return float(np.mean(losses))

    def fit(self, board: Any) -> QuickResult:
        self.events.write("start", experiment=self.exp.name, engine="quick", config=self.cfg.to_json(),
                          device="cpu", clips=len(self.train_rows), validation=len(self.val_rows),
                          minutes_of_data=round(self.target.minutes, 2), budget_minutes=self.cfg.minutes,
                          start_step=self.step, epochs=self._epochs(), sample_rate=self.target.sample_rate,
                          encoder="whisper-mid", rvc_compatible=False,
                          pretrained="The quick engine needs no pretrained model.")
        last_log = last_save = time.perf_counter()
        run_start, run_steps, tick = time.perf_counter(), 0, time.perf_counter()
        while not self.finished():
            self.cancel.raise_if_set()
            loss = self.train_step()
            now = time.perf_counter()
            self.trained_s += now - tick
            tick = now
            self.step += 1
            run_steps += 1
            if run_steps == 1 or now - last_log >= LOG_EVERY_S:
                self._log(loss, run_steps / max(now - run_start, 1e-9), board)
                last_log = now
            self.progress(self._fraction(), f"quick: step {self.step}, {self.trained_s / 60:.1f} of "
                                            f"{self.cfg.minutes:g} min, loss {loss:.3f}")
            if now - last_save >= SAVE_EVERY_S:
                self.save(board)
                last_save = tick = time.perf_counter()
        self.save(board)
        self.events.write("done", epoch=self._epoch(), step=self.step, best_epoch=None, best_mel_l1=self.best_l1,
                          voice_models=[str(self.voice_path)])
        return QuickResult(self.exp.name, self.step, self.trained_s, self.voice_path, self.best_l1, self.checkpoint)

    def _fraction(self) -> float:
        max_steps = getattr(self.cfg, "max_steps", None)
        return min(1.0, self.step / max_steps if max_steps else self.trained_s / max(self.budget_s, 1e-9))

    def _epochs(self) -> int:
        return max(1, math.ceil(float(self.cfg.minutes)))

    def _epoch(self) -> int:
        """Quick training counts whole minutes trained where RVC counts epochs."""
        return int(self.trained_s // 60)

    def _log(self, loss: float, rate: float, board: Any) -> None:
        max_steps = getattr(self.cfg, "max_steps", None)
        eta = (max_steps - self.step) / max(rate, 1e-9) if max_steps else max(0.0, self.budget_s - self.trained_s)
        lr = self.optim.param_groups[0]["lr"]
        self.events.write("step", step=self.step, epoch=self._epoch(), losses={"l1": round(loss, 5)}, lr=lr,
                          steps_per_s=round(rate, 4), eta_s=round(eta, 1), trained_s=round(self.trained_s, 1))
        board.scalars({"loss/train": loss, "learning_rate": lr}, self.step)

    # ------------------------------------------------------------------ checkpoints
    def save(self, board: Any) -> None:
        from voiceapp.train.instant import engine_model_path
        from voiceapp.voices.world import save_world_voice

        val = self.validate()
        improved = val is None or self.best_l1 is None or val <= self.best_l1
        if improved or self.best_state is None:
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.best_step = self.step
        if val is not None:
            self.best_l1 = val if self.best_l1 is None else min(self.best_l1, val)
            self.events.write("validation", epoch=self._epoch(), step=self.step, mel_l1=round(val, 5),
                              best_epoch=None, best_mel_l1=round(self.best_l1, 5))
            board.scalars({"validation/l1": val}, self.step)
        path = self.exp.checkpoints_dir / f"Q_{self.step}.pth"
        state = {"model": self.net.state_dict(), "optimizer": self.optim.state_dict(), "step": self.step,
                 "trained_s": self.trained_s, "best_l1": self.best_l1 if self.best_l1 is not None else -1.0,
                 "rng": self.generator.get_state(), "torch_rng": torch.get_rng_state(),   # dropout's
                 "frames": len(self.target.content),
                 "config": str(self.net.cfg.to_json()), "best_model": self.best_state, "best_step": self.best_step}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        for old in self.exp.checkpoints_dir.glob("Q_*.pth"):
            if old != path:
                old.unlink(missing_ok=True)
        self.checkpoint = path
        t, target_path = self.target, engine_model_path(self.workspace, self.exp.name)
        if improved or not target_path.exists():   # the voice keeps the weights that validated best
            best = QuickNet(self.net.cfg)
            best.load_state_dict(self.best_state)
            meta = {"encoder": t.encoder, "steps": self.best_step, "epochs": self._epoch(), "name": self.exp.name, "author": self.cfg.author,
                    "trained_minutes": round(self.trained_s / 60, 2), "validation_l1": self.best_l1,
                    "clips": len(t.clips), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            self.voice_path = save_world_voice(target_path, "quick", t.sample_rate, t.content, t.sp, t.ap, t.f0, meta,
                                               net=best)
        self.voice_path = target_path
        self.events.write("save", epoch=self._epoch(), step=self.step, files=[path.name], voice=str(self.voice_path))
        board.flush()

    def _resume(self) -> None:
        found = sorted(self.exp.checkpoints_dir.glob("Q_*.pth"), key=lambda p: int(p.stem[2:] or 0)
                       if p.stem[2:].isdigit() else -1)
        if not found:
            return
        path = found[-1]
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state["model"])
            self.optim.load_state_dict(state["optimizer"])
        except Exception as err:  # noqa: BLE001 - a damaged or foreign checkpoint: say which and how to go on
            raise InputError(f"{path} cannot be resumed ({type(err).__name__}: {err}). Delete it to start the quick "
                             f"training over.") from err
        if int(state.get("frames", -1)) != len(self.target.content):
            raise InputError(f"{path.name} was trained on other data ({state.get('frames')} frames, now "
                             f"{len(self.target.content)}). Delete logs/{self.exp.name}/Q_*.pth to start over.")
        self.step, self.trained_s = int(state["step"]), float(state["trained_s"])
        self.best_l1 = None if float(state["best_l1"]) < 0 else float(state["best_l1"])
        self.generator.set_state(state["rng"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        self.best_state, self.best_step = state.get("best_model"), int(state.get("best_step", self.step))
        self.checkpoint = path
        self.events.write("resume", step=self.step, epoch=self._epoch(), files=[path.name])


def train_quick(exp: ExperimentDir, cfg: Any, workspace: Any, progress: Progress = no_progress,
                cancel: CancelToken = NEVER, on_ready: Callable[[], Any] | None = None) -> QuickResult:
    """Train (or resume) the quick voice of `exp`; Cancelled after saving when `cancel` is set. `on_ready` is
    called once the network is built and its checkpoint (if any) loaded."""
    from voiceapp.train.board import Board

    trainer = QuickTrainer(exp, cfg, workspace, progress, cancel)
    board = Board(exp.tensorboard_dir)
    try:
        trainer.prepare()
        if on_ready is not None:
            on_ready()
        return trainer.fit(board)
    except Cancelled:
        if getattr(trainer, "net", None) is not None and trainer.step > 0:
            trainer.save(board)
        trainer.events.write("stopped", epoch=trainer._epoch(), step=trainer.step,
                             message="Stopped. Resume continues from the last save.")
        raise
    except BaseException as err:
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            trainer.events.write("stopped", epoch=trainer._epoch(), step=trainer.step, message="Interrupted.")
            raise
        kind = "user" if isinstance(err, InputError) or hasattr(err, "user_message") else "crash"
        trainer.events.write("error", kind=kind, message=str(err), advice="", epoch=trainer._epoch(),
                             step=trainer.step)
        raise
    finally:
        board.close()
