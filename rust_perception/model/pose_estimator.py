"""Pose Estimator: half of a target image → CNN tokens → [cross-attention into S̃ (the SLSR
tokens of the first input view), self-attention] × L → mean pool → linear → latent pose p̃."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import Block, PatchCNN, grad_scale


class PoseEstimator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.cnn = PatchCNN(3, cfg.cnn_channels, cfg.dim, cfg.patch_size, cfg.cnn_activation)
        self.position = nn.Parameter(torch.randn(1, cfg.patches * cfg.patches // 2, cfg.dim) * 0.02)
        self.layers = nn.ModuleList()
        for _ in range(cfg.pose_layers):
            if cfg.pose_slsr:
                self.layers.append(Block(cfg.dim, cfg.heads, cfg.mlp_dim, cross=True))
            if cfg.pose_self_attention:
                self.layers.append(Block(cfg.dim, cfg.heads, cfg.mlp_dim))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.latent_dim)

    def forward(self, half_images: torch.Tensor, slsr_first_view: torch.Tensor) -> torch.Tensor:
        """half_images (B, M, 3, H, W/2); slsr_first_view (B, P, dim) → latent poses (B, M, D).

        Gradients reaching p̃ are scaled by `pose_grad_scale` (so are those flowing on into the
        SLSR); `pose_stop_gradient` cuts the path into the SLSR entirely."""
        b, m = half_images.shape[:2]
        context = slsr_first_view.detach() if self.cfg.pose_stop_gradient else slsr_first_view
        context = context.repeat_interleave(m, dim=0)
        x = self.cnn(half_images.flatten(0, 1) * 2.0 - 1.0) + self.position
        for layer in self.layers:
            x = layer(x, context) if layer.cross else layer(x)
        latent = self.head(self.norm(x.mean(dim=1))).view(b, m, -1)
        return grad_scale(latent, self.cfg.pose_grad_scale)
