"""Building blocks shared by every model part: attention through SDPA, pre-LN transformer
blocks, sinusoidal encodings, the CNN patch embedder and the gradient-scale op."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _GradScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by `scale` backward (as in spatial transformers)."""
    return x if scale == 1.0 else _GradScale.apply(x, scale)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LN transformer block: self-attention (context=None) or cross-attention, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, cross: bool = False):
        super().__init__()
        self.cross = cross
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim) if cross else None
        self.attn = Attention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.attn(h, self.norm_context(context) if self.cross else h)
        return x + self.mlp(self.norm_mlp(x))


def sinusoidal(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """[x, sin(2^k π x), cos(2^k π x)] for k < octaves, over the last axis."""
    freqs = (2.0 ** torch.arange(octaves, device=x.device, dtype=x.dtype)) * math.pi
    angles = x[..., None] * freqs  # (..., C, O)
    return torch.cat([x, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)


def sinusoidal_dim(channels: int, octaves: int) -> int:
    return channels * (1 + 2 * octaves)


class PatchCNN(nn.Module):
    """3 downsampling blocks (conv 3×3 + conv 3×3 stride 2, ReLU) → a `dim` token per 8×8 patch."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int], dim: int):
        super().__init__()
        layers, c = [], in_channels
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.Conv2d(out, out, 3, stride=2, padding=1), nn.ReLU()]
            c = out
        layers.append(nn.Conv2d(c, dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, H/8 · W/8, dim), row-major patches."""
        return self.net(images).flatten(2).transpose(1, 2)
