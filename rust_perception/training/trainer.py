"""The training loop: Adam with warm-up then a constant rate (or cosine decay), bf16 autocast,
random target pixels, tqdm progress, TensorBoard scalars and image grids, periodic held-out evaluation, atomic
checkpoints every K steps and on SIGINT/SIGTERM, and automatic resume from the run directory.

Under torchrun the same loop runs DistributedDataParallel: `batch_size` stays the global batch,
each rank trains on its `rank_rows` of it, and rank 0 alone logs, evaluates and checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import from_dict, to_dict
from ..data.store import MultiViewDataset, StepBatchSampler, rank_rows
from ..errors import UserError
from ..io import atomic_write
from ..model.config import ModelConfig
from ..model.scene_model import SceneModel
from ..precision import use_bf16
from .checkpoint import latest_checkpoint, list_checkpoints, save_checkpoint
from .scoring import evaluate_model
from .config import TrainConfig
from .steps import sample_generators, training_inputs

CONFIG_FILE = "config.yaml"
SCHEDULE = ("lr_schedule", "final_lr_ratio", "decay_start", "decay_steps")  # may change on resume (see TrainConfig)
METRICS_FILE = "metrics.jsonl"
DIST_TIMEOUT_S = 1800  # a collective waiting longer than this for a rank fails (NCCL's default: 10 min)
MAIN_WORK_TIMEOUT_S = 3 * 3600  # how long the other ranks wait for rank 0's evaluation and checkpoint


def lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    start = max(cfg.warmup_steps, cfg.decay_start)
    progress = min(1.0, max(0.0, step - start) / max(1, (cfg.decay_steps or cfg.steps) - start))
    return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and SIGTERM (torchrun sends it to the whole process group)
    to the main process, which checkpoints, stops and shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _timeout(variable: str, default_s: float) -> timedelta:
    return timedelta(seconds=float(os.environ.get(variable, default_s)))


def init_distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) alone; under torchrun (RANK, WORLD_SIZE, MASTER_ADDR, ... set)
    this process joins the group through env:// — NCCL bound to the GPU LOCAL_RANK (`device_id`),
    gloo on CPU — with an explicit collective timeout (RUST_DIST_TIMEOUT_S, default 30 min)."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        timeout = _timeout("RUST_DIST_TIMEOUT_S", DIST_TIMEOUT_S)
        if torch.cuda.is_available():
            local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(local)
            dist.init_process_group("nccl", init_method="env://", timeout=timeout, device_id=local)
        else:
            dist.init_process_group("gloo", init_method="env://", timeout=timeout)
    return dist.get_rank(), dist.get_world_size()


def main_work_group():
    """A gloo group on which the other ranks wait while rank 0 alone evaluates and checkpoints
    (RUST_DIST_MAIN_WORK_TIMEOUT_S, default 3 h): waiting in the next NCCL all-reduce instead
    would trip NCCL's watchdog on a long evaluation or a slow shared-storage write."""
    return dist.new_group(backend="gloo", timeout=_timeout("RUST_DIST_MAIN_WORK_TIMEOUT_S", MAIN_WORK_TIMEOUT_S))


def wait_for_main(group) -> None:
    dist.monitored_barrier(group=group, timeout=_timeout("RUST_DIST_MAIN_WORK_TIMEOUT_S", MAIN_WORK_TIMEOUT_S),
                           wait_all_ranks=True)


def use_deterministic_algorithms() -> None:
    """Deterministic kernels; on CUDA cuBLAS needs a fixed workspace for them (set before its first use)."""
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)


def leave_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


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
        raise UserError(f"{run} has no usable checkpoint yet (train it first: train --config CONFIG --run {run})")
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
    if model.variant != "rust" and not ds.store.has("cam2world"):
        raise UserError(f"dataset {ds.store.root} has no camera poses (a recording), which model.variant="
                        f"{model.variant} needs; train model.variant=rust on it")


class Trainer:
    def __init__(self, cfg: TrainConfig, run: str | Path, progress: bool = True):
        self.cfg, self.run, self.progress = cfg, Path(run), progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            use_deterministic_algorithms()
        torch.manual_seed(cfg.seed)
        self.rank, self.world_size = init_distributed()
        self.main_work = main_work_group() if self.world_size > 1 else None
        self.is_main = self.rank == 0
        if cfg.batch_size % self.world_size:
            raise UserError(f"batch_size={cfg.batch_size} is the global batch and must be divisible by the "
                            f"{self.world_size} processes")
        self.rows = rank_rows(cfg.batch_size, self.rank, self.world_size)
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
        steps = self._gather(self.step)[:, 0]
        if (steps != self.step).any():
            raise UserError(f"the processes resume {self.run} from different steps {steps.long().tolist()}; "
                            "every node must see the same run directory (shared storage)")
        if self.is_main:
            self._forget_lost_steps()
        self.forward = DistributedDataParallel(self.model) if self.world_size > 1 else self.model

    # ------------------------------------------------------------------ run directory
    def _claim_run_dir(self) -> None:
        """A new run writes its config; an existing run must have been started with the same
        settings (`steps` may grow, threads and workers change, and the LR schedule change where
        it leaves the steps taken unchanged) and is resumed. Every rank checks; rank 0 writes."""
        path = self.run / CONFIG_FILE
        mine = to_dict(self.cfg)
        if path.is_file():
            theirs = yaml.safe_load(path.read_text()) or {}
            try:  # settings added since the run started take their defaults, which the run had
                theirs = to_dict(from_dict(TrainConfig, theirs))
            except UserError:
                pass  # not a valid config any more: the comparison names what differs
            free = dict.fromkeys(("steps", "threads", "workers", *SCHEDULE), None)  # no effect on what is learned
            diff = _first_difference({**mine, **free}, {**theirs, **free})
            if diff:
                key, old, new = diff
                raise UserError(f"run {self.run} was started with {key}={old!r}, not {new!r}; "
                                "use the same config to resume it, or another --run")
            self._check_schedule_change(theirs)
        if self.is_main:
            self.run.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "w") as handle:
                yaml.safe_dump(mine, handle, sort_keys=False)

    def _check_schedule_change(self, theirs: dict) -> None:
        """A new LR schedule may only change the rates of steps not taken yet (up to the newest
        checkpoint's step, by its name: a corrupt newest one only makes this stricter)."""
        known = {k: theirs[k] for k in SCHEDULE if k in theirs}
        old = dataclasses.replace(self.cfg, **known, steps=theirs.get("steps", self.cfg.steps))
        done = max((int(p.stem.split("_")[1]) for p in list_checkpoints(self.run / "checkpoints")), default=0)
        changed = next((s for s in range(done) if not math.isclose(lr_factor(s, old), lr_factor(s, self.cfg))), None)
        if changed is not None:
            raise UserError(f"run {self.run} has taken {done} steps with another learning-rate schedule (the rate "
                            f"of step {changed} would change); a new schedule may only change steps not taken yet")

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
        if self.is_main:
            print(f"resuming {self.run} from step {self.step}")

    def _forget_lost_steps(self) -> None:
        """Drop metrics logged after the step resumed from (a killed run's steps past its last
        checkpoint): they are trained again, and each step stays logged once."""
        path = self.run / METRICS_FILE
        if path.is_file():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
            with atomic_write(path, "w") as handle:
                handle.writelines(line + "\n" for line in kept)

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
        sampler = StepBatchSampler(len(self.train_set), self.cfg.batch_size, self.cfg.seed, self.step, self.cfg.steps,
                                   self.rank, self.world_size)
        return DataLoader(self.train_set, batch_sampler=sampler, num_workers=self.cfg.workers,
                          worker_init_fn=_ignore_stop_signals, pin_memory=self.device.type == "cuda")

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        cfg = self.cfg
        gens = sample_generators(cfg.seed, self.step, self.rows)
        uv, right, inputs, targets, truth = training_inputs(batch, cfg.model, cfg.rays_per_target,
                                                            cfg.input_pose_noise, cfg.target_pose_noise, gens)
        to = lambda x: None if x is None else x.to(self.device)  # noqa: E731
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if inputs is not None:
            inputs.cam2world, inputs.intrinsics = to(inputs.cam2world), to(inputs.intrinsics)
            targets.cam2world, targets.intrinsics = to(targets.cam2world), to(targets.intrinsics)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            pred = self.forward(batch, to(uv), to(right), inputs, targets)
        loss = torch.nn.functional.mse_loss(pred.float(), to(truth))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def evaluate(self, scenes: int | None = None, swap_poses: bool = False) -> dict[str, Any]:
        """`scoring.evaluate_model` on the first `scenes` (default: eval_scenes) test scenes."""
        if self.eval_set is None:
            return {}
        result, self._eval_images = evaluate_model(self.model, self.eval_set, scenes or self.cfg.eval_scenes,
                                                   self.cfg.batch_size, self.bf16, swap_poses, device=self.device)
        return result

    def _handle_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def _gather(self, *values: float) -> torch.Tensor:
        """(world size, len(values)): every rank's values, on every rank."""
        mine = torch.tensor(values, dtype=torch.float64)
        if self.world_size == 1:
            return mine[None]
        parts = [torch.empty_like(mine, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(parts, mine.to(self.device))
        return torch.stack(parts).cpu()

    def train(self) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        cfg = self.cfg
        writer = SummaryWriter(str(self.run / "tensorboard"), purge_step=self.step or None) if self.is_main else None
        previous = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.model.variant} {'bf16' if self.bf16 else 'fp32'}",
                   unit="step",
                   disable=not (self.progress and self.is_main), dynamic_ncols=True)
        result: dict[str, Any] = {"run": str(self.run)}
        losses, started = [], time.perf_counter()
        try:
            self.model.train()
            for batch in self._loader():
                loss = self.train_step(batch)
                self.step += 1
                # the global batch's loss, and a stop that every rank obeys at the same step
                gathered = self._gather(loss, self._stop_signal or 0)
                losses.append(float(gathered[:, 0].mean()))
                stop = int(gathered[:, 1].max())
                bar.update(1)
                if self.is_main and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                    mean = sum(losses) / len(losses)
                    psnr = -10 * math.log10(max(mean, 1e-10))
                    rate = len(losses) / (time.perf_counter() - started)
                    bar.set_postfix(loss=f"{mean:.4f}", psnr=f"{psnr:.2f}", it_s=f"{rate:.2f}")
                    writer.add_scalar("train/loss", mean, self.step)
                    writer.add_scalar("train/psnr", psnr, self.step)
                    writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                    self._log({"step": self.step, "loss": mean, "psnr": psnr, "steps_per_s": rate})
                    losses, started = [], time.perf_counter()
                if self.is_main and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    metrics = self.evaluate(swap_poses=cfg.eval_swap_poses)
                    if metrics:
                        for key in ("psnr", "pooled_psnr", "ssim", "object_psnr", "swapped_pose_pooled_psnr"):
                            if metrics.get(key) is not None:
                                writer.add_scalar(f"eval/{key}", metrics[key], self.step)
                        truth, pred = self._eval_images
                        writer.add_images("eval/target_right_half", truth[..., truth.shape[-1] // 2 :], self.step)
                        writer.add_images("eval/render_right_half", pred, self.step)
                        self._log({"step": self.step, "eval": metrics})
                        bar.write(f"step {self.step}: eval PSNR {metrics['psnr']:.2f} dB (constant colour "
                                  f"{metrics['constant_colour_psnr']:.2f}), SSIM {metrics['ssim']:.3f}")
                        result["eval"] = metrics
                if self.is_main and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or stop):
                    path = self.save()
                if self.main_work is not None and (self.step % cfg.eval_every == 0 or self.step == cfg.steps or stop
                                                   or self.step % cfg.checkpoint_every == 0):
                    wait_for_main(self.main_work)
                if stop:
                    if self.is_main:
                        bar.write(f"stopped by signal {stop} at step {self.step}; saved {path}; "
                                  "rerun the same command to resume")
                    result["interrupted"] = True
                    break
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        result["step"] = self.step
        return result
