"""The training loop: Adam with warm-up + cosine decay, bf16 autocast, random target pixels,
tqdm progress, TensorBoard scalars and image grids, periodic held-out evaluation, atomic
checkpoints every K steps and on SIGINT/SIGTERM, and automatic resume from the run directory."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import from_dict, to_dict
from ..data.store import MultiViewDataset, StepBatchSampler
from ..errors import UserError
from ..io import atomic_write
from ..model.config import ModelConfig
from ..model.scene_model import SceneModel
from ..precision import use_bf16
from .checkpoint import latest_checkpoint, save_checkpoint
from .config import TrainConfig
from .steps import evaluate_batch, held_out_batches, step_generator, training_inputs

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"


def lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _ignore_sigint(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which checkpoints and stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def read_run_config(run: Path) -> TrainConfig:
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run} is not a training run: {CONFIG_FILE} is missing")
    return from_dict(TrainConfig, yaml.safe_load(path.read_text()))


def load_model(run: Path) -> tuple[TrainConfig, SceneModel, int]:
    """The run's config and its model with the newest loadable checkpoint's weights."""
    cfg = read_run_config(run)
    state = latest_checkpoint(Path(run) / "checkpoints")
    if state is None:
        raise UserError(f"{run} has no usable checkpoint yet (train it first: trainer/train.py --run {run})")
    model = SceneModel(cfg.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"checkpoint in {run} does not fit its config.yaml: {str(exc).splitlines()[0]}") from None
    return cfg, model.eval(), int(state["step"])


def _first_difference(mine: dict, theirs: dict, prefix: str = ""):
    """(dotted key, their value, my value) of the first setting that differs, or None."""
    for key, value in mine.items():
        other = theirs.get(key) if isinstance(theirs, dict) else None
        if isinstance(value, dict) and isinstance(other, dict):
            found = _first_difference(value, other, f"{prefix}{key}.")
            if found:
                return found
        elif value != other:
            return f"{prefix}{key}", other, value
    return None


def _check_dataset(ds: MultiViewDataset, model: ModelConfig) -> None:
    size = (ds.store.height, ds.store.width)
    if size != (model.image_size, model.image_size):
        raise UserError(f"dataset {ds.store.root} has {size[0]}×{size[1]} images but the model expects "
                        f"image_size={model.image_size}; set model.image_size or use a matching dataset")


class Trainer:
    def __init__(self, cfg: TrainConfig, run: str | Path, progress: bool = True):
        self.cfg, self.run, self.progress = cfg, Path(run), progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)
        self.device = device()
        self.bf16 = use_bf16(cfg.precision, self.device.type)
        m = cfg.model
        self.train_set = MultiViewDataset(cfg.dataset, "train", m.num_inputs, cfg.num_targets, seed=cfg.seed)
        _check_dataset(self.train_set, m)
        self.eval_set = None
        if cfg.eval_scenes and "test" in self.train_set.store.splits:
            self.eval_set = MultiViewDataset(cfg.dataset, "test", m.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
        self._claim_run_dir()  # only once the dataset and model settings proved usable
        self.model = SceneModel(m).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg))
        self.step = 0
        self._stop_signal: int | None = None
        self._resume()

    # ------------------------------------------------------------------ run directory
    def _claim_run_dir(self) -> None:
        """A new run writes its config; an existing run must have been started with the same
        settings (only `steps` may grow) and is resumed."""
        path = self.run / CONFIG_FILE
        mine = to_dict(self.cfg)
        if path.is_file():
            theirs = yaml.safe_load(path.read_text()) or {}
            diff = _first_difference({**mine, "steps": None}, {**theirs, "steps": None})
            if diff:
                key, old, new = diff
                raise UserError(f"run {self.run} was started with {key}={old!r}, not {new!r}; "
                                "use the same config to resume it, or another --run")
        self.run.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w") as handle:
            yaml.safe_dump(mine, handle, sort_keys=False)

    def _resume(self) -> None:
        state = latest_checkpoint(self.run / "checkpoints")
        if state is None:
            return
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UserError(f"checkpoint in {self.run} does not fit this model: {str(exc).splitlines()[0]}") from None
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step = int(state["step"])
        print(f"resuming {self.run} from step {self.step}")

    def save(self) -> Path:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "config": to_dict(self.cfg),
                 "rng": {"torch": torch.get_rng_state()}}
        return save_checkpoint(self.run / "checkpoints", self.step, state, self.cfg.keep_checkpoints)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run / METRICS_FILE, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ loop
    def _loader(self) -> DataLoader:
        sampler = StepBatchSampler(len(self.train_set), self.cfg.batch_size, self.cfg.seed, self.step, self.cfg.steps)
        return DataLoader(self.train_set, batch_sampler=sampler, num_workers=self.cfg.workers,
                          worker_init_fn=_ignore_sigint, pin_memory=self.device.type == "cuda")

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        cfg = self.cfg
        gen = step_generator(cfg.seed, self.step)
        uv, right, inputs, targets, truth = training_inputs(batch, cfg.model, cfg.rays_per_target,
                                                            cfg.input_pose_noise, cfg.target_pose_noise, gen)
        to = lambda x: None if x is None else x.to(self.device)  # noqa: E731
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if inputs is not None:
            inputs.cam2world, inputs.intrinsics = to(inputs.cam2world), to(inputs.intrinsics)
            targets.cam2world, targets.intrinsics = to(targets.cam2world), to(targets.intrinsics)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            pred = self.model(batch, to(uv), to(right), inputs, targets)
        loss = torch.nn.functional.mse_loss(pred.float(), to(truth))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def evaluate(self, scenes: int | None = None) -> dict[str, float]:
        """Mean PSNR / SSIM on the right halves of held-out targets (first `scenes` test scenes)."""
        if self.eval_set is None:
            return {}
        self.model.eval()
        n = min(scenes or self.cfg.eval_scenes, len(self.eval_set))
        psnrs, ssims, first = [], [], None
        for batch in held_out_batches(self.eval_set, n, self.cfg.batch_size):
            batch = {k: v.to(self.device) for k, v in batch.items()}
            p, s, pred = evaluate_batch(self.model, batch, self.bf16)
            psnrs.append(p.cpu())
            ssims.append(s.cpu())
            if first is None:
                first = (batch["target_images"][:2, 0].cpu(), pred[:2, 0].cpu())
        self.model.train()
        self._eval_images = first
        return {"psnr": float(torch.cat(psnrs).mean()), "ssim": float(torch.cat(ssims).mean()), "scenes": n}

    def _handle_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def train(self) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        cfg = self.cfg
        writer = SummaryWriter(str(self.run / "tensorboard"), purge_step=self.step or None)
        previous = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.model.variant} {'bf16' if self.bf16 else 'fp32'}",
                   unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        result: dict[str, Any] = {"run": str(self.run)}
        losses, started = [], time.perf_counter()
        try:
            self.model.train()
            for batch in self._loader():
                loss = self.train_step(batch)
                self.step += 1
                losses.append(loss)
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    mean = sum(losses) / len(losses)
                    psnr = -10 * math.log10(max(mean, 1e-10))
                    rate = len(losses) / (time.perf_counter() - started)
                    bar.set_postfix(loss=f"{mean:.4f}", psnr=f"{psnr:.2f}", it_s=f"{rate:.2f}")
                    writer.add_scalar("train/loss", mean, self.step)
                    writer.add_scalar("train/psnr", psnr, self.step)
                    writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                    self._log({"step": self.step, "loss": mean, "psnr": psnr, "steps_per_s": rate})
                    losses, started = [], time.perf_counter()
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    metrics = self.evaluate()
                    if metrics:
                        writer.add_scalar("eval/psnr", metrics["psnr"], self.step)
                        writer.add_scalar("eval/ssim", metrics["ssim"], self.step)
                        truth, pred = self._eval_images
                        writer.add_images("eval/target_right_half", truth[..., truth.shape[-1] // 2 :], self.step)
                        writer.add_images("eval/render_right_half", pred, self.step)
                        self._log({"step": self.step, "eval": metrics})
                        bar.write(f"step {self.step}: eval PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}")
                        result["eval"] = metrics
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save()
                if self._stop_signal is not None:
                    path = self.save()
                    bar.write(f"stopped by signal {self._stop_signal} at step {self.step}; saved {path}; "
                              "rerun the same command to resume")
                    result["interrupted"] = True
                    break
        finally:
            bar.close()
            writer.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        result["step"] = self.step
        return result
