"""TrainConfig: what `train` (trainer/train.py) runs. `model:` is a mapping or the path of a model YAML
(relative to the training YAML), so model sizes live in one file each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import apply_overrides, from_dict, read_yaml, require
from ..errors import ConfigError
from ..model.config import ModelConfig
from ..precision import PRECISIONS


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "runs/demo/data_dome"  # a dataset directory (from make_dataset)
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 2000
    batch_size: int = 16
    num_targets: int = 3
    rays_per_target: int = 1024  # random target pixels rendered per target view and step
    lr: float = 2e-4
    warmup_steps: int = 200
    # after warm-up: constant, or constant until `decay_start` (0: the end of warm-up) and then a
    # cosine decay to lr · final_lr_ratio at step `decay_steps` (0: the run's `steps`). A decay over
    # the run itself cut the rate just as learning started. A run may be resumed with another
    # schedule as long as the steps it has taken keep their rates (e.g. a decay added later).
    lr_schedule: Literal["constant", "cosine"] = "constant"
    final_lr_ratio: float = 0.1
    decay_start: int = 0
    decay_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    precision: str = "auto"  # auto: bf16 autocast where it is fast (AMX CPUs, GPUs), else fp32
    input_pose_noise: float = 0.0  # σ of training-time pose noise (paper: 0.1) for posed variants
    target_pose_noise: float = 0.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 250
    eval_scenes: int = 32
    eval_swap_poses: bool = False  # also render every target at another target's pose (geometry check)
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    workers: int = 1  # DataLoader worker processes
    threads: int = 0  # torch CPU threads (0: torch's default)
    deterministic: bool = False  # torch.use_deterministic_algorithms, for bit-exact resume checks

    def __post_init__(self):
        for name in ("steps", "batch_size", "num_targets", "rays_per_target", "log_every", "eval_every",
                     "checkpoint_every", "keep_checkpoints"):
            require(getattr(self, name) >= 1, f"{name}={getattr(self, name)} is not allowed (must be >= 1)")
        require(self.precision in PRECISIONS,
                f"precision={self.precision!r} is not allowed (choose from {', '.join(PRECISIONS)})")
        require(self.lr > 0, f"lr={self.lr} is not allowed (must be > 0)")
        require(0 <= self.warmup_steps, f"warmup_steps={self.warmup_steps} is not allowed (must be >= 0)")
        require(self.decay_steps >= 0, f"decay_steps={self.decay_steps} is not allowed (must be >= 0)")
        require(0 <= self.decay_start < (self.decay_steps or self.steps) or self.lr_schedule == "constant",
                f"decay_start={self.decay_start} is not allowed (must be >= 0 and before the decay ends at step "
                f"{self.decay_steps or self.steps})")
        require(0 < self.final_lr_ratio <= 1, f"final_lr_ratio={self.final_lr_ratio} is not allowed (must be in (0, 1])")
        require(self.eval_scenes >= 0, f"eval_scenes={self.eval_scenes} is not allowed (must be >= 0)")
        require(self.workers >= 0 and self.threads >= 0, "workers and threads must be >= 0")
        for name in ("input_pose_noise", "target_pose_noise"):
            require(getattr(self, name) >= 0, f"{name}={getattr(self, name)} is not allowed (must be >= 0)")


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Training YAML (optional) + `key=value` overrides (`model.dim=64` reaches into the model)."""
    data = read_yaml(path) if path is not None else {}
    overrides = overrides or []
    whole_model = [o for o in overrides if o.split("=", 1)[0].strip() == "model"]
    data = apply_overrides(data, whole_model)  # `model=PATH` replaces the YAML's model before `model.x=` edits
    model = data.get("model", {})
    if isinstance(model, str):
        model_path = (Path(path).parent / model) if path is not None else Path(model)
        if not model_path.is_file():
            raise ConfigError(f"model config {model_path} (named by {path or 'an override'}) does not exist")
        data = {**data, "model": read_yaml(model_path)}
    return from_dict(TrainConfig, apply_overrides(data, [o for o in overrides if o not in whole_model]))
