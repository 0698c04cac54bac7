"""`TrainConfig`: every training setting with its default, saved as `logs/<exp>/train.json`.

The recipe constants (optimizer, decay, loss weights) are RVC's (reference/rvc-facts.md §4).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from voiceapp.errors import ConfigError
from voiceapp.nets.presets import SAMPLE_RATES, SIZES, VERSIONS
from voiceapp.voices.file import ENGINES
from voiceapp.workspace import sanitize_name

# A training preset is a network size. `light` (a narrower RVC for CPUs) is no longer trained: after 16 CPU minutes
# it made speech less like the target than the input (bench/quality.py), the quick engine does that job, and RVC
# WebUI / Applio cannot load it either. Light files made before still load (nets/presets.SIZES).
PRESETS: tuple[str, ...] = tuple(s for s in SIZES if s != "light")
PRETRAINED_CHOICES: tuple[str, ...] = ("auto", "none")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
CONFIG_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig:
    experiment: str                              # logs/<experiment>/ (features must be there)
    sample_rate: int | None = None               # None: the rate of the feature clips
    version: str | None = None                   # "v1" | "v2"; None: the features' version
    preset: str = "full"                         # full (RVC-compatible) | light (CPU) | tiny (tests)
    use_f0: bool = True                          # pitch-guided model (needed for singing)
    epochs: int = 200
    save_every_epochs: int = 10
    batch_size: int = 4                          # per GPU/process
    save_latest_only: bool = True                # delete older G_/D_ checkpoints after each save
    save_voice_each_save: bool = True            # also write models/voices/<exp>/<exp>_e<epoch>_s<step>.pth
    pretrained: str = "auto"                     # auto: models/base/pretrained_v2/f0G40k.pth... when they fit
    precision: str = "auto"                      # auto: bf16 (or fp16) autocast on CUDA, fp32 on the CPU
    seed: int = 1234
    validation_clips: int = 2                    # clips held out for the validation mel loss (0: none)
    max_frames: int = 900                        # 100 Hz frames per item (9 s), as RVC
    log_every_steps: int = 10                    # events.jsonl + TensorBoard scalars
    num_workers: int = 0                         # DataLoader workers (0: load in the training process)
    speaker_id: int = 0
    gpus: int = 0                                # processes for DDP on CUDA; 0: every visible GPU
    author: str = ""
    engine: str = "rvc"                          # rvc | quick (| instant: no training, see train/instant.py)
    minutes: float = 15.0                        # quick: training time budget (summed over resumed runs)
    max_steps: int | None = None                 # quick: stop at this step instead (tests, benchmarks)
    # RVC's recipe (rvc-facts §4)
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875                   # ExponentialLR gamma, stepped once per epoch
    c_mel: float = 45.0
    c_kl: float = 1.0
    c_fm: float = 2.0
    extra: dict = field(default_factory=dict)    # free-form notes kept in train.json

    def __post_init__(self) -> None:
        object.__setattr__(self, "experiment", sanitize_name(self.experiment, "experiment name"))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.sample_rate is not None and int(self.sample_rate) not in SAMPLE_RATES:
            raise ConfigError(f"Sample rate {self.sample_rate} is not one RVC models use; "
                              f"choose one of {SAMPLE_RATES}.")
        if self.version is not None and self.version not in VERSIONS:
            raise ConfigError(f"Model version {self.version!r} is unknown; choose one of {VERSIONS}.")
        if self.engine not in ENGINES:
            raise ConfigError(f"Engine {self.engine!r} is unknown; choose one of {ENGINES}.")
        if not 0 < float(self.minutes) <= 24 * 60 or (self.max_steps is not None and int(self.max_steps) < 1):
            raise ConfigError(f"minutes must be in (0, 1440] and max_steps >= 1 (got {self.minutes}, "
                              f"{self.max_steps}).")
        if self.preset == "light":
            raise ConfigError("The light RVC preset is gone: on a CPU, train with the quick engine "
                              "(`--engine quick`), which learns a recognisable voice in minutes.")
        if self.preset not in PRESETS:
            raise ConfigError(f"Preset {self.preset!r} is unknown; choose one of {PRESETS}.")
        if self.pretrained not in PRETRAINED_CHOICES:
            raise ConfigError(f"pretrained={self.pretrained!r}; choose one of {PRETRAINED_CHOICES}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r}; choose one of {PRECISIONS}.")
        for name, low in (("epochs", 1), ("save_every_epochs", 1), ("batch_size", 1), ("max_frames", 32),
                          ("log_every_steps", 1)):
            if int(getattr(self, name)) < low:
                raise ConfigError(f"TrainConfig.{name} must be >= {low}, got {getattr(self, name)}.")
        if self.validation_clips < 0 or self.num_workers < 0 or self.gpus < 0:
            raise ConfigError("validation_clips, num_workers and gpus must be >= 0.")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}.")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["betas"] = list(self.betas)
        data["format"] = CONFIG_FORMAT
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise ConfigError(f"Unknown training settings {unknown}; this file may come from a newer Voiceapp.")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: Path | str) -> "TrainConfig":
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"No training config at {path}. Start training from the Train tab or "
                              f"`python -m voiceapp train EXP` first.")
        own = path.name in ("train.json", "train.pending.json")  # the files the Train tab writes in logs/<exp>/
        fix = ("delete it and start training again from the Train tab or `python -m voiceapp train EXP`" if own else
               "give the train.json that the Train tab writes in logs/EXP/, or train by name: "
               "`python -m voiceapp train EXP`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path} is not a Voiceapp training config (not valid JSON: {err}); {fix}.") from err
        except OSError as err:
            raise ConfigError(f"Cannot read the training config {path} ({err.strerror or err}); {fix}.") from err
        if not isinstance(data, dict) or "experiment" not in data:
            raise ConfigError(f"{path} is not a Voiceapp training config (no 'experiment' setting); {fix}.")
        return cls.from_json(data)

    def replace(self, **changes: Any) -> "TrainConfig":
        data = self.to_json()
        data.update(changes)
        return TrainConfig.from_json(data)
