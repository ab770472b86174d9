"""Training and evaluation of read-out heads (EPE, segmentation) on a frozen RUST model.

The base model is loaded from the run's newest checkpoint, put in eval mode with gradients off,
and never written: head weights live apart in RUN/heads/<head>.pt, so a head can be retrained
without touching the model the node serves. Latent poses come from the Pose Estimator fed the
left half of each view (as at evaluation and in the node).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import from_dict
from ..data.store import MultiViewDataset, StepBatchSampler
from ..errors import UserError
from ..io import atomic_write, save_figure, write_json
from ..metrics import confusion_matrix, iou_per_class, mean_iou, r2_score
from ..model.heads import (HeadConfig, build_head, relative_pose, rotation_error_deg, rotation_from_6d,
                           rotation_to_6d)
from ..model.scene_model import SceneModel, pixel_grid
from .steps import gather_pixels, held_out_batches, right_half_pixels, step_generator
from .trainer import load_model

HEADS_DIR = "heads"


def head_file(run: Path, head: str) -> Path:
    return Path(run) / HEADS_DIR / f"{head}.pt"


@torch.no_grad()
def frozen_features(model: SceneModel, images: torch.Tensor, inputs: torch.Tensor, whole_frames: bool = True):
    """SLSR of `inputs` (B, N, 3, H, W) and, for `images` (B, V, 3, H, W), the `view_latents`
    (B, V, 2, D) segmentation queries each pixel with — or, without `whole_frames`, only the left
    halves' latent poses (B, V, D) that EPE reads (no second Pose Estimator call)."""
    slsr = model.encode(inputs)
    if whole_frames:
        return slsr, model.view_latents(slsr, images)
    return slsr, model.estimate_pose(slsr, images, torch.zeros(images.shape[:2], dtype=torch.bool))


def view_pairs(m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i ≠ j, of m target views."""
    i, j = zip(*[(a, b) for a in range(m) for b in range(m) if a != b])
    return torch.tensor(i), torch.tensor(j)


def epe_targets(cam2world: torch.Tensor, rotation: bool) -> torch.Tensor:
    """(B, K, 3 [+ 6]) pose of view j in view i's optical frame for every pair of (B, M, 4, 4)."""
    i, j = view_pairs(cam2world.shape[1])
    rel = relative_pose(cam2world[:, i].double(), cam2world[:, j].double()).float()
    out = rel[..., :3, 3]
    return torch.cat([out, rotation_to_6d(rel[..., :3, :3])], -1) if rotation else out


def epe_predict(head, slsr, latents, position_std: float) -> torch.Tensor:
    """(B, K, 3 [+ 6]) in metres (position) and 6-D rotation."""
    i, j = view_pairs(latents.shape[1])
    out = head(slsr, latents[:, i], latents[:, j])
    return torch.cat([out[..., :3] * position_std, out[..., 3:]], -1)


def class_weights(train_set: MultiViewDataset, cfg: HeadConfig, scenes: int = 256) -> torch.Tensor | None:
    """Cross-entropy weights ∝ (class frequency in training targets)^-balance, mean 1 over the
    classes seen; rare object classes otherwise lose every uncertain pixel to ground or sky."""
    if cfg.head != "segmentation" or not cfg.balance:
        return None
    labels = torch.cat([train_set[(i, 0)]["target_labels"].flatten() for i in range(min(scenes, len(train_set)))])
    counts = torch.bincount(labels, minlength=cfg.num_classes).float()
    weights = torch.where(counts > 0, counts.clamp(min=1) ** -cfg.balance, torch.zeros(()))
    return weights / weights[counts > 0].mean()


def head_loss(head, cfg: HeadConfig, model: SceneModel, batch, position_std: float, rays: int, gen,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    slsr, latents = frozen_features(model, batch["target_images"], batch["input_images"], cfg.head != "epe")
    if cfg.head == "epe":
        truth = epe_targets(batch["target_cam2world"], cfg.rotation)
        pred = epe_predict(head, slsr, latents, position_std)
        loss = F.mse_loss(pred[..., :3] / position_std, truth[..., :3] / position_std)
        return loss + (F.mse_loss(pred[..., 3:], truth[..., 3:]) if cfg.rotation else 0.0)
    b, m, _, h, w = batch["target_images"].shape
    flat = torch.randint(0, h * w, (b, m, rays), generator=gen)
    uv = torch.stack([flat % w, flat // w], -1).float()
    labels = gather_pixels(batch["target_labels"][:, :, None].float(), uv)[..., 0].long()
    logits = head(head.latent_query(model.pixel_latents(latents, uv), uv), slsr)
    return F.cross_entropy(logits.flatten(0, 2), labels.flatten(), weight=weights)


def train_head(run: Path, head_name: str, steps: int = 1000, batch_size: int = 16, lr: float = 5e-4,
               rays: int = 512, layers: int | None = None, progress: bool = True,
               from_decoder: bool = HeadConfig.from_decoder, balance: float = HeadConfig.balance) -> dict[str, Any]:
    """Train `head_name` on the frozen model of `run`; writes RUN/heads/<head>.pt and returns
    its evaluation (also written to RUN/heads/<head>.json). `from_decoder` and `balance`:
    HeadConfig's segmentation options."""
    train_cfg, model, base_step = load_model(run)
    model.requires_grad_(False)
    train_set = MultiViewDataset(train_cfg.dataset, "train", train_cfg.model.num_inputs, train_cfg.num_targets,
                                 seed=train_cfg.seed)
    manifest = train_set.store.manifest
    truth = "labels" if head_name == "segmentation" else "cam2world"
    if not train_set.store.has(truth):
        raise UserError(f"dataset {train_set.store.root} has no {truth} (a recording); the {head_name} head "
                        "learns from them")
    from_decoder = from_decoder and head_name == "segmentation"  # decides the block count below
    if layers is None:  # a head started from the decoder has its blocks; others HeadConfig's default
        layers = train_cfg.model.decoder_layers if from_decoder else HeadConfig.layers
    if from_decoder and layers != train_cfg.model.decoder_layers:
        raise UserError(f"a segmentation head started from the RGB decoder has its {train_cfg.model.decoder_layers} "
                        f"blocks, not {layers}: leave --layers out, or start --from-scratch")
    cfg = HeadConfig(head=head_name, layers=layers, rotation=manifest["kind"] == "street",
                     num_classes=len(manifest["classes"]) if head_name == "segmentation" else 0,
                     from_decoder=from_decoder, balance=balance)
    try:
        head = build_head(train_cfg.model, cfg)
    except ValueError as exc:
        raise UserError(f"{run}: {exc}") from None
    if cfg.from_decoder:
        head.start_from(model.decoder)
    weights = class_weights(train_set, cfg)
    position_std = 1.0
    if cfg.head == "epe":  # predict positions in units of their spread, so the loss is well scaled
        sample = torch.stack([train_set[(i, 0)]["target_cam2world"] for i in range(min(256, len(train_set)))])
        position_std = float(epe_targets(sample, False).std())
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    loader = DataLoader(train_set, batch_sampler=StepBatchSampler(len(train_set), batch_size, train_cfg.seed + 17, 0, steps))
    bar = tqdm(loader, total=steps, desc=f"train {head_name} head", unit="step", disable=not progress, dynamic_ncols=True)
    head.train()
    for step, batch in enumerate(bar):
        loss = head_loss(head, cfg, model, batch, position_std, rays, step_generator(train_cfg.seed + 17, step), weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    head.eval()
    path = head_file(run, head_name)
    with atomic_write(path) as handle:
        torch.save({"format": 1, "config": asdict(cfg), "head": head.state_dict(), "position_std": position_std,
                    "base_step": base_step, "steps": steps,
                    "class_weights": None if weights is None else weights.tolist()}, handle)
    return evaluate_head(run, head_name)


def load_head(run: Path, head_name: str, model_cfg) -> tuple[HeadConfig, torch.nn.Module, dict]:
    path = head_file(run, head_name)
    if not path.is_file():
        raise UserError(f"{run} has no {head_name} head yet (train it: train_heads --run {run} --head {head_name})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        # heads saved before these settings existed started from random weights, unweighted
        cfg = from_dict(HeadConfig, {"from_decoder": False, "balance": 0.0, **state["config"]})
        head = build_head(model_cfg, cfg)
        head.load_state_dict(state["head"])
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"head file {path} is corrupt or does not fit the model ({exc.__class__.__name__})") from None
    return cfg, head.eval(), state


@torch.no_grad()
def measure_head(model: SceneModel, cfg: HeadConfig, head, state: dict, dataset: MultiViewDataset,
                 scenes: int) -> tuple[dict[str, Any], dict | None]:
    """EPE: MSE / R² of relative positions (+ rotation error) over all ordered target pairs;
    segmentation: mIoU and per-class IoU on the right halves of targets — each beside its trivial
    baseline — on the first `scenes` scenes of `dataset`; and the first batch (for a figure)."""
    classes = dataset.store.manifest["classes"]
    out: dict[str, Any] = {"scenes": min(scenes, len(dataset))}
    preds, truths, confusion = [], [], torch.zeros(len(classes), len(classes), dtype=torch.long)
    first = None
    for batch in held_out_batches(dataset, scenes):
        slsr, latents = frozen_features(model, batch["target_images"], batch["input_images"], cfg.head != "epe")
        first = batch if first is None else first
        if cfg.head == "epe":
            preds.append(epe_predict(head, slsr, latents, state["position_std"]).flatten(0, 1))
            truths.append(epe_targets(batch["target_cam2world"], cfg.rotation).flatten(0, 1))
            continue
        b, m, _, h, w = batch["target_images"].shape
        uv = right_half_pixels(b, m, h)
        pred = head(head.latent_query(model.pixel_latents(latents, uv), uv), slsr).argmax(-1)
        truth = gather_pixels(batch["target_labels"][:, :, None].float(), uv)[..., 0].long()
        confusion += confusion_matrix(pred, truth, len(classes))
    if cfg.head == "epe":
        pred, truth = torch.cat(preds), torch.cat(truths)
        out.update(pairs=len(pred), position_mse=round(float(((pred[:, :3] - truth[:, :3]) ** 2).mean()), 5),
                   position_r2=round(r2_score(pred[:, :3], truth[:, :3]), 4),
                   position_error_m=round(float((pred[:, :3] - truth[:, :3]).norm(dim=-1).median()), 4),
                   # the best constant guess (the held-out mean position): R² 0 by definition
                   mean_position_error_m=round(float((truth[:, :3] - truth[:, :3].mean(0)).norm(dim=-1).median()), 4))
        if cfg.rotation:
            err = rotation_error_deg(rotation_from_6d(pred[:, 3:]), rotation_from_6d(truth[:, 3:]))
            # the trivial baseline: no relative rotation (the identity) as a constant guess
            still = rotation_error_deg(torch.eye(3).expand(len(truth), 3, 3), rotation_from_6d(truth[:, 3:]))
            out.update(rotation_error_deg_mean=round(float(err.mean()), 3),
                       rotation_error_deg_median=round(float(err.median()), 3),
                       identity_rotation_error_deg_median=round(float(still.median()), 3))
        return out, first
    ious = iou_per_class(confusion)
    # the trivial baseline on the same pixels: every pixel the most frequent true class
    majority = torch.zeros_like(confusion)
    majority[:, int(confusion.sum(1).argmax())] = confusion.sum(1)
    out.update(miou=round(mean_iou(confusion), 4), pixel_accuracy=round(float(confusion.diagonal().sum() / confusion.sum()), 4),
               majority_class_miou=round(mean_iou(majority), 4),
               majority_class_pixel_accuracy=round(float(majority.diagonal().sum() / majority.sum()), 4),
               iou={c["name"]: (None if math.isnan(v) else round(v, 4)) for c, v in zip(classes, ious.tolist())},
               protocol="right halves of held-out targets; latent pose from the left halves")
    return out, first


@torch.no_grad()
def evaluate_head(run: Path, head_name: str, scenes: int = 100) -> dict[str, Any]:
    """`measure_head` on held-out scenes, and on as many training scenes (`train_fit`, fresh view
    draws: a test figure far under it says the head or the base model memorises, one near it that
    the head lacks signal, steps or capacity); segmentation also draws a figure."""
    train_cfg, model, _ = load_model(run)
    cfg, head, state = load_head(run, head_name, train_cfg.model)
    split = {name: MultiViewDataset(train_cfg.dataset, name, train_cfg.model.num_inputs, train_cfg.num_targets,
                                    seed=train_cfg.seed + 1) for name in ("test", "train")}
    test, first = measure_head(model, cfg, head, state, split["test"], scenes)
    fit, _ = measure_head(model, cfg, head, state, split["train"], scenes)
    headline = ("position_r2", "position_error_m") if cfg.head == "epe" else ("miou", "iou")
    out: dict[str, Any] = {"run": str(run), "head": head_name, "base_step": state["base_step"],
                           "steps": state["steps"], "config": asdict(cfg),
                           # the cross-entropy weights it was trained with (None: unweighted, or an older head)
                           **({"class_weights": state.get("class_weights")} if cfg.head == "segmentation" else {}),
                           **test, "train_fit": {k: fit[k] for k in ("scenes", *headline)}}
    if cfg.head == "segmentation":
        classes = split["test"].store.manifest["classes"]
        out["figure"] = str(segmentation_figure(model, head, first, classes, Path(run) / HEADS_DIR / "segmentation.png"))
    write_json(Path(run) / HEADS_DIR / f"{head_name}.json", out)
    return out


@torch.no_grad()
def segment_views(model: SceneModel, head, slsr: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Class maps (B, V, H, W) of whole views, each pixel queried with the latent pose the model
    renders it from (`view_latents`, `pixel_latents`)."""
    b, v, _, h, w = images.shape
    uv = pixel_grid(h, w).expand(b, v, -1, -1)
    latents = model.pixel_latents(model.view_latents(slsr, images), uv)
    return head(head.latent_query(latents, uv), slsr).argmax(-1).view(b, v, h, w)


def segmentation_figure(model, head, batch, classes, path: Path, rows: int = 4) -> Path:
    """Per scene: a held-out target | its labels | predicted | overlay, then the first input view
    segmented by querying its own latent pose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = {k: v[:rows] for k, v in batch.items()}
    palette = np.array([c["color"] for c in classes], np.uint8)
    slsr = model.encode(batch["input_images"])
    target_pred = segment_views(model, head, slsr, batch["target_images"][:, :1])[:, 0].numpy()
    input_pred = segment_views(model, head, slsr, batch["input_images"][:, :1])[:, 0].numpy()
    to_img = lambda t: np.clip(t.permute(1, 2, 0).numpy(), 0, 1)  # noqa: E731
    n = len(target_pred)
    fig, axes = plt.subplots(n, 6, figsize=(9.6, 1.7 * n), squeeze=False)
    for r in range(n):
        target = to_img(batch["target_images"][r, 0])
        panels = [("target", target), ("labels", palette[batch["target_labels"][r, 0].numpy()]),
                  ("predicted", palette[target_pred[r]]), ("overlay", 0.5 * target + 0.5 * palette[target_pred[r]] / 255),
                  ("input 1", to_img(batch["input_images"][r, 0])), ("input 1 predicted", palette[input_pred[r]])]
        for c, (title, img) in enumerate(panels):
            axes[r, c].imshow(img, interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(title, fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[i] / 255) for i in range(len(classes))]
    fig.legend(handles, [c["name"] for c in classes], loc="lower center", ncol=min(len(classes), 9), fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, path)
