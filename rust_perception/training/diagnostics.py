"""Learning diagnostics: does a model see its inputs at all, and can it learn?

Each returns a number a test or benchmark can hold against a floor (tests/test_learning_
diagnostics.py; benchmarks/learning.py records them at initialisation). They exist because a
model whose encoder output did not depend on its images trained for hours to the level of a
constant colour without anything saying so.
"""

from __future__ import annotations

import torch

from ..model.scene_model import SceneModel, Views


def _same_cameras(views: Views, index: int = 0) -> Views:
    """Every scene of the batch given scene `index`'s cameras."""
    b = views.cam2world.shape[0]
    pick = lambda t: t[index : index + 1].expand(b, *t.shape[1:])  # noqa: E731
    return Views(pick(views.cam2world), pick(views.intrinsics))


def _across_scenes(x: torch.Tensor) -> float:
    """Share of the variance of x (B, ...) that is variance across the batch axis."""
    x = x.float()
    return float(x.var(dim=0, unbiased=False).mean() / x.var(unbiased=False).clamp(min=1e-12))


@torch.no_grad()
def image_dependence(model: SceneModel, images: torch.Tensor, views: Views | None = None) -> float:
    """Share of the SLSR's variance that changes with the input images: B scenes' images, all
    encoded with the same cameras (posed inputs), so only the images differ across the batch."""
    views = _same_cameras(views) if model.cfg.posed_inputs else None
    return _across_scenes(model.encode(images, views))


@torch.no_grad()
def image_to_ray_effect(model: SceneModel, images: torch.Tensor, views: Views) -> float:
    """SRT: variance of the SLSR across scenes when only the images differ, over the same when
    only the cameras (rays) differ. ≥ 1: the pixels move the tokens at least as much as the rays."""
    only_images = model.encode(images, _same_cameras(views)).float()
    only_rays = model.encode(images[:1].expand_as(images), views).float()
    return float(only_images.var(dim=0).mean() / only_rays.var(dim=0).mean().clamp(min=1e-12))


@torch.no_grad()
def input_swap_effect(model: SceneModel, batch: dict[str, torch.Tensor], uv: torch.Tensor) -> float:
    """Mean absolute change of the rendered pixels uv when each scene's input views are replaced
    by the next scene's (same target query), relative to the renders' spread over pixels."""
    from .steps import poses

    inputs, targets = poses(batch) if model.cfg.posed_targets else (None, None)
    b, m = batch["target_images"].shape[:2]
    right = torch.zeros(b, m, dtype=torch.bool)

    def render(input_images):
        slsr = model.encode(input_images, inputs)
        latent = model.estimate_pose(slsr, batch["target_images"], right) if model.cfg.variant == "rust" else None
        reference = inputs.cam2world[:, 0] if inputs is not None else None
        return model.render(slsr, model.query_input(uv, latent, targets, reference)).float()

    own = render(batch["input_images"])
    other = render(batch["input_images"].roll(1, dims=0))
    return float((own - other).abs().mean() / own.std(dim=2).mean().clamp(min=1e-12))


def memorise(model: SceneModel, batch: dict[str, torch.Tensor], steps: int, lr: float = 3e-3, rays: int = 256,
             seed: int = 0) -> tuple[float, float]:
    """Fit the targets of one fixed batch (the same scenes, inputs and targets every step; random
    pixels) → (PSNR of the whole targets after `steps` Adam steps, constant-colour PSNR of the
    same targets). A model that cannot memorise a few scenes will not learn from thousands."""
    from ..metrics import psnr
    from .scoring import scene_median_colour
    from ..model.scene_model import pixel_grid
    from .steps import render_targets, sample_generators, training_inputs

    targets = batch["target_images"]
    b, m, _, h, w = targets.shape
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        uv, right, inputs, target_poses, truth = training_inputs(batch, model.cfg, rays, 0.0, 0.0,
                                                                 sample_generators(seed, step, range(b)))
        loss = torch.nn.functional.mse_loss(model(batch, uv, right, inputs, target_poses), truth)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    uv = pixel_grid(h, w).expand(b, m, -1, -1)
    rendered = render_targets(model, batch, uv).view(b, m, h, w, 3).permute(0, 1, 4, 2, 3)
    constant = scene_median_colour(batch["input_images"])[:, None, :, None, None].expand_as(targets)
    return float(psnr(rendered, targets).mean()), float(psnr(constant, targets).mean())
