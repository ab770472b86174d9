"""What one training or evaluation step feeds the model: target pixels, the half seen by the
Pose Estimator, camera poses (noisy in training when configured). All randomness of sample i of
step s's global batch comes from `sample_generators(seed, s, [i])`, so a resumed run repeats an
uninterrupted one exactly and a DDP rank draws for its samples what a single process would."""

from __future__ import annotations

import numpy as np
import torch

from ..geometry import perturb_poses
from ..model.config import ModelConfig
from ..model.scene_model import SceneModel, Views, pixel_grid
from ..metrics import psnr, ssim


def _generator(*key: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


def step_generator(seed: int, step: int) -> torch.Generator:
    return _generator(seed, step, 7)


def sample_generators(seed: int, step: int, rows) -> list[torch.Generator]:
    """One generator per sample, keyed by its row in the step's global batch (not by the rank
    that trains it)."""
    return [_generator(seed, step, 7, row) for row in rows]


def gather_pixels(images: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Values (B, M, R, C) of images (B, M, C, H, W) at integer pixel coordinates uv (B, M, R, 2)."""
    w = images.shape[-1]
    flat = images.flatten(-2)  # (B, M, 3, H·W)
    idx = (uv[..., 1] * w + uv[..., 0]).long()
    return torch.gather(flat, 3, idx[:, :, None].expand(-1, -1, images.shape[2], -1)).transpose(2, 3)


def poses(batch, noise_inputs: float = 0.0, noise_targets: float = 0.0, generators=None):
    """True poses, or with noise when given one generator per sample."""
    def perturb(cam2world, sigma):
        if generators is None:
            return cam2world
        return torch.stack([perturb_poses(c, sigma, g) for c, g in zip(cam2world, generators)])

    inputs = Views(perturb(batch["input_cam2world"], noise_inputs), batch["input_intrinsics"])
    targets = Views(perturb(batch["target_cam2world"], noise_targets), batch["target_intrinsics"])
    return inputs, targets


def training_inputs(batch, cfg: ModelConfig, rays: int, noise_inputs: float, noise_targets: float,
                    generators: list[torch.Generator]):
    """(uv, right, input poses, target poses, target colours) for one training step; sample i
    draws from generators[i]."""
    _, m, _, h, w = batch["target_images"].shape
    unseen = cfg.variant == "rust" and cfg.pose_supervision == "unseen"
    span = w // 2 if unseen else w  # columns the loss draws from (unseen: the half the Pose Estimator does not see)
    flat = torch.stack([torch.randint(0, h * span, (m, rays), generator=g) for g in generators])
    if cfg.pose_half == "random":  # drawn after the pixels: runs from before `pose_supervision` replay exactly
        right = torch.stack([torch.rand(m, generator=g) for g in generators]) < 0.5
    else:
        right = torch.full((len(generators), m), cfg.pose_half == "right")
    column = flat % span + (span * (~right)[..., None] if unseen else 0)
    uv = torch.stack([column, flat // span], -1).float()
    inputs, targets = poses(batch, noise_inputs, noise_targets, generators) if cfg.posed_targets else (None, None)
    return uv, right, inputs, targets, gather_pixels(batch["target_images"], uv)


def held_out_batches(dataset, scenes: int, batch_size: int = 16):
    """The evaluation set: batches of the first `scenes` scenes of `dataset`, each with its
    fixed (draw 0) choice of views, so every model and every run sees the same targets."""
    n = min(scenes, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[(i, 0)] for i in range(start, min(n, start + batch_size))]
        yield {k: torch.stack([it[k] for it in items]) for k in items[0]}


def right_half_pixels(b: int, m: int, size: int) -> torch.Tensor:
    uv = pixel_grid(size, size)
    return uv[uv[:, 0] >= size // 2].expand(b, m, -1, -1)


@torch.no_grad()
def render_targets(model: SceneModel, batch, uv: torch.Tensor, bf16: bool = False, pose_half: str = "left",
                   chunk: int = 4096, swap_poses: bool = False) -> torch.Tensor:
    """RGB (B, M, R, 3) at target pixels uv, with the Pose Estimator fed `pose_half` of each
    target — "left", "right" or "both" (`view_latents`: whole frames as the model renders them)
    — (RUST) or the true target poses (posed variants). `swap_poses` renders each target at the
    next target's pose (latent or true): how much a model's renders depend on the pose."""
    images = batch["target_images"]
    b, m = images.shape[:2]
    with torch.autocast("cuda" if images.is_cuda else "cpu", dtype=torch.bfloat16, enabled=bf16):
        inputs, targets = poses(batch) if model.cfg.posed_targets else (None, None)
        if swap_poses and targets is not None:
            targets = Views(targets.cam2world.roll(1, dims=1), targets.intrinsics.roll(1, dims=1))
        slsr = model.encode(batch["input_images"], inputs)
        latent = None
        if model.cfg.variant == "rust":
            latent = (model.view_latents(slsr, images) if pose_half == "both"
                      else model.estimate_pose(slsr, images, torch.full((b, m), pose_half == "right")))
            latent = latent.roll(1, dims=1) if swap_poses else latent
        reference = inputs.cam2world[:, 0] if inputs is not None else None
        rgb = model.render(slsr, model.query_input(uv, latent, targets, reference), chunk=chunk)
    return rgb.float().clamp(0, 1)


def evaluate_batch(model: SceneModel, batch, bf16: bool = False, pose_half: str = "left", swap_poses: bool = False):
    """The paper's protocol: PSNR and SSIM (B, M) on the right halves of the targets, with the
    Pose Estimator fed the left halves; also the rendered right halves (B, M, 3, H, W/2)."""
    images = batch["target_images"]
    b, m, _, h, w = images.shape
    rgb = render_targets(model, batch, right_half_pixels(b, m, h), bf16, pose_half, swap_poses=swap_poses)
    pred = rgb.view(b, m, h, w // 2, 3).permute(0, 1, 4, 2, 3)
    truth = images[..., w // 2 :]
    return psnr(pred, truth), ssim(pred.flatten(0, 1), truth.flatten(0, 1)).view(b, m), pred
