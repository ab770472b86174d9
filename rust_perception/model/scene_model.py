"""SceneModel: the one model implementation used by training, evaluation, export and the node.

`variant` switches between RUST (no poses anywhere), SRT (posed input and target cameras) and
UpSRT (unposed inputs, posed targets). Camera poses given to the posed variants are relative to
the first input camera, so no world frame is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import geometry
from ..geometry import rays_from_pixels, relative_poses
from .config import ModelConfig
from .decoder import Decoder
from .encoder import Encoder
from .layers import init_weights
from .pose_estimator import PoseEstimator


@dataclass
class Views:
    """Camera data for the posed variants: cam2world (B, V, 4, 4), intrinsics (B, V, 3, 3)."""

    cam2world: torch.Tensor
    intrinsics: torch.Tensor


def pixel_grid(height: int, width: int, device=None) -> torch.Tensor:
    """(H·W, 2) pixel-centre coordinates (u, v), row-major: `geometry.pixel_grid` as a tensor."""
    return torch.from_numpy(geometry.pixel_grid(height, width)).float().to(device)


def image_half(images: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(B, M, 3, H, W) → the left or right half (B, M, 3, H, W/2); `right` is a (B, M) bool."""
    w = images.shape[-1] // 2
    return torch.where(right.to(images.device)[..., None, None, None], images[..., w:], images[..., :w])


class SceneModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.pose_estimator = PoseEstimator(cfg) if cfg.variant == "rust" else None
        self.decoder = Decoder(cfg)
        if cfg.init != "torch":
            init_weights(self, cfg.init)
            self.encoder.init_rays()
            self.decoder.init_output()

    # ------------------------------------------------------------------ stages
    def encode(self, images: torch.Tensor, inputs: Views | None = None) -> torch.Tensor:
        """Input views (B, N, 3, H, W) → SLSR (B, N·P, dim)."""
        if not self.cfg.posed_inputs:
            return self.encoder(images)
        if inputs is None:
            raise ValueError("the srt variant needs input camera poses")
        b, n, _, h, w = images.shape
        rel = relative_poses(inputs.cam2world, inputs.cam2world[:, 0])
        uv = pixel_grid(h, w, images.device).expand(b, n, -1, -1)
        origins, dirs = rays_from_pixels(rel, inputs.intrinsics, uv)
        return self.encoder(images, (origins.reshape(b, n, h, w, 3), dirs.reshape(b, n, h, w, 3)))

    def first_view_tokens(self, slsr: torch.Tensor) -> torch.Tensor:
        return slsr[:, : self.cfg.patches**2]

    def estimate_pose(self, slsr: torch.Tensor, target_images: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Latent poses (B, M, D) from one half of each target image (B, M, 3, H, W)."""
        return self.pose_estimator(image_half(target_images, right), self.first_view_tokens(slsr))

    def view_latents(self, slsr: torch.Tensor, target_images: torch.Tensor) -> torch.Tensor:
        """Latent poses (B, M, 2, D) of each target's left and right halves: what a whole frame
        renders from (`pixel_latents`). Models without `crossed_halves` render every pixel from
        the left half's latent (the paper), so the right row repeats it, without a second call."""
        b, m = target_images.shape[:2]
        if not self.cfg.crossed_halves:
            return self.estimate_pose(slsr, target_images, torch.zeros(b, m, dtype=torch.bool))[:, :, None].expand(
                -1, -1, 2, -1)
        both = torch.cat([target_images, target_images], dim=1)
        right = torch.arange(2 * m, device=target_images.device).expand(b, -1) >= m
        return self.estimate_pose(slsr, both, right).view(b, 2, m, -1).transpose(1, 2)

    def pixel_latents(self, latents: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """The latent (B, M, R, D) each pixel uv (B, M, R, 2) renders from, given a view's
        `view_latents` (B, M, 2, D): with `crossed_halves` each half takes the other half's latent,
        else every pixel the left half's. A pixel is in the right half from u ≥ W/2 − ½ (pixel
        centres: the columns of `right_half_pixels`; continuous u for other render sizes)."""
        if not self.cfg.crossed_halves:
            return latents[:, :, None, 0].expand(-1, -1, uv.shape[2], -1)
        right = uv[..., :1] >= self.cfg.image_size / 2 - 0.5
        return torch.where(right, latents[:, :, None, 0], latents[:, :, None, 1])

    def query_input(self, uv: torch.Tensor, latent: torch.Tensor | None = None, targets: Views | None = None,
                    reference: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder query input for pixels uv (B, M, R, 2): from latent poses (RUST) — one per
        target (B, M, D), or both halves' (B, M, 2, D) from `view_latents` (a 4-D latent is always
        that; per-pixel latents go to `decoder.latent_query` directly) — or from target cameras
        relative to `reference`, the first input camera's cam2world (B, 4, 4)."""
        if not self.cfg.posed_targets:
            if latent.dim() == 4:
                latent = self.pixel_latents(latent, uv)
            return self.decoder.latent_query(latent, uv)
        rel = relative_poses(targets.cam2world, reference)
        origins, dirs = rays_from_pixels(rel, targets.intrinsics, uv)
        return self.decoder.ray_query(origins, dirs)

    def render(self, slsr: torch.Tensor, query_input: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """RGB (B, M, R, 3) of the queried pixels; `chunk` bounds pixels per decoder pass."""
        r = query_input.shape[2]
        if chunk is None or chunk >= r:
            return self.decoder(query_input, slsr)
        return torch.cat([self.decoder(query_input[:, :, s : s + chunk], slsr) for s in range(0, r, chunk)], dim=2)

    # ------------------------------------------------------------------ training objective
    def forward(self, batch: dict[str, torch.Tensor], uv: torch.Tensor, right: torch.Tensor,
                input_poses: Views | None = None, target_poses: Views | None = None) -> torch.Tensor:
        """Predicted RGB (B, M, R, 3) at target pixels uv (B, M, R, 2).

        RUST estimates each target's latent pose from the half of it chosen by `right` (B, M);
        the posed variants use `input_poses` / `target_poses` (possibly noisy in training)."""
        slsr = self.encode(batch["input_images"], input_poses)
        latent = self.estimate_pose(slsr, batch["target_images"], right) if self.cfg.variant == "rust" else None
        reference = input_poses.cam2world[:, 0] if input_poses is not None else None
        return self.render(slsr, self.query_input(uv, latent, target_poses, reference))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
