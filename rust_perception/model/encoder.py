"""Input-view encoder: shared CNN per view → a token per patch, + a learned 2D position
embedding shared by all views, + a learned embedding on the first view only, → transformer over
the tokens of all views → the Set-Latent Scene Representation (SLSR).

SRT's input rays (relative to the first input camera) enter either per patch (`ray_code:
patch`: the patch's mean ray, sinusoid-encoded and linearly projected onto its token) or per
pixel (`ray_code: pixel`, the SRT paper: ~100 code channels concatenated to 3 RGB channels,
which swamp the image at initialisation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import Block, PatchCNN, sinusoidal, sinusoidal_dim


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ray_channels = 2 * sinusoidal_dim(3, cfg.ray_octaves) if cfg.posed_inputs else 0
        per_pixel = ray_channels if cfg.ray_code == "pixel" else 0
        self.cnn = PatchCNN(3 + per_pixel, cfg.cnn_channels, cfg.dim, cfg.patch_size, cfg.cnn_activation)
        self.ray_projection = nn.Linear(ray_channels, cfg.dim) if ray_channels and not per_pixel else None
        self.position = nn.Parameter(torch.randn(1, cfg.patches**2, cfg.dim) * 0.02)
        self.first_view = nn.Parameter(torch.randn(1, 1, cfg.dim) * 0.02)
        self.layers = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_dim) for _ in range(cfg.encoder_layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def init_rays(self) -> None:
        """Rays start at half the pixels' scale (LeCun σ / 2): the images move the SLSR more than
        the rays do at initialisation (1.3× the variance on the learning regime's scenes), never
        the ~35× the other way of the paper's per-pixel code."""
        if self.ray_projection is not None:
            nn.init.normal_(self.ray_projection.weight, std=0.5 / self.ray_projection.in_features ** 0.5)

    def forward(self, images: torch.Tensor, rays: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """images (B, N, 3, H, W) in [0, 1]; rays (SRT only): per-pixel origins and directions
        (B, N, H, W, 3) relative to the first input camera. → SLSR (B, N·P, dim), view-major."""
        b, n, _, h, w = images.shape
        x = images.flatten(0, 1) * 2.0 - 1.0
        ray_tokens = 0.0
        if self.cfg.posed_inputs:
            origins, dirs = rays
            if self.ray_projection is not None:  # the mean ray of each patch
                pool = lambda r: F.avg_pool2d(r.flatten(0, 1).permute(0, 3, 1, 2), self.cfg.patch_size)  # noqa: E731
                origins = pool(origins).permute(0, 2, 3, 1)
                dirs = F.normalize(pool(dirs).permute(0, 2, 3, 1), dim=-1)
            code = torch.cat([sinusoidal(origins * self.cfg.position_scale, self.cfg.ray_octaves),
                              sinusoidal(dirs, self.cfg.ray_octaves)], dim=-1)
            if self.ray_projection is not None:
                ray_tokens = self.ray_projection(code.flatten(1, 2)).view(b, n, -1, self.cfg.dim)
            else:
                x = torch.cat([x, code.flatten(0, 1).permute(0, 3, 1, 2).to(x.dtype)], dim=1)
        tokens = self.cnn(x).view(b, n, -1, self.cfg.dim) + self.position + ray_tokens
        first = torch.zeros(1, n, 1, 1, device=images.device, dtype=tokens.dtype)
        first[:, 0] = 1.0
        tokens = (tokens + first * self.first_view).flatten(1, 2)
        for layer in self.layers:
            tokens = layer(tokens)
        return self.norm(tokens)
