"""Decoder: a query per pixel → cross-attention into the SLSR → RGB. Pixels are independent,
so any subset renders (random pixels in training, chunks at inference).

The query is MLP(p̃ ⊕ encoded 2D pixel position) for RUST, MLP(encoded ray origin ⊕ direction
relative to the first input camera) for the posed baselines. Queries are `decoder_dim` wide
(the SRT paper: 180-d ray codes attending into 768-d tokens), so the per-pixel cost does not grow
with the token width. RGB leaves through a sigmoid (or a linear layer whose bias starts at
mid-grey); `out_channels` makes the same decoder a segmentation head (raw class logits)."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import Block, sinusoidal, sinusoidal_dim


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig, out_channels: int = 3, rgb: bool = True):
        super().__init__()
        self.cfg = cfg
        self.rgb_output = rgb
        self.sigmoid = rgb and cfg.output_activation == "sigmoid"
        d = cfg.query_dim
        if cfg.posed_targets:
            query_in = 2 * sinusoidal_dim(3, cfg.ray_octaves)
        else:
            query_in = cfg.latent_dim + sinusoidal_dim(2, cfg.pixel_octaves)
        self.query = nn.Sequential(nn.Linear(query_in, d), nn.GELU(), nn.Linear(d, d))
        self.layers = nn.ModuleList(Block(d, cfg.heads, cfg.query_mlp_dim, cross=True, context_dim=cfg.dim)
                                    for _ in range(cfg.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.rgb = nn.Linear(d, out_channels)

    def init_output(self) -> None:
        """Every pixel starts near mid-grey (small weights; bias 0.5 for a linear output, 0
        before a sigmoid), so the first steps learn colours instead of undoing random ones."""
        if self.rgb_output:
            nn.init.normal_(self.rgb.weight, std=0.01)
            nn.init.constant_(self.rgb.bias, 0.0 if self.sigmoid else 0.5)

    def latent_query(self, latent: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """latent (B, M, D) per view or (B, M, R, D) per pixel, uv (B, M, R, 2) pixel coordinates
        → query input (B, M, R, ·)."""
        size = self.cfg.image_size
        xy = (uv + 0.5) / size * 2.0 - 1.0  # pixel centres → [-1, 1]
        code = sinusoidal(xy, self.cfg.pixel_octaves)
        if latent.dim() == 3:
            latent = latent[:, :, None].expand(-1, -1, uv.shape[2], -1)
        return torch.cat([latent.to(code.dtype), code], dim=-1)

    def ray_query(self, origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        return torch.cat([sinusoidal(origins * self.cfg.position_scale, self.cfg.ray_octaves),
                          sinusoidal(dirs, self.cfg.ray_octaves)], dim=-1)

    def features(self, query_input: torch.Tensor, slsr: torch.Tensor) -> torch.Tensor:
        """Per-pixel features (B, M, R, dim) — shared with the segmentation head."""
        b, m, r, _ = query_input.shape
        x = self.query(query_input).view(b, m * r, -1)
        for layer in self.layers:
            x = layer(x, slsr)
        return self.norm(x).view(b, m, r, -1)

    def forward(self, query_input: torch.Tensor, slsr: torch.Tensor) -> torch.Tensor:
        out = self.rgb(self.features(query_input, slsr))
        return torch.sigmoid(out) if self.sigmoid else out
