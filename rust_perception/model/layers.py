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
    """Multi-head attention of `dim`-wide queries into `context_dim`-wide keys/values (default
    `dim`), at width `dim` inside: a narrow decoder query pays for its own width, not the tokens'."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-LN transformer block: self-attention (context=None) or cross-attention into a
    `context_dim`-wide context, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, cross: bool = False, context_dim: int | None = None):
        super().__init__()
        self.cross = cross
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim or dim) if cross else None
        self.attn = Attention(dim, heads, context_dim if cross else None)
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
    """Conv blocks (3×3 conv, activation, 3×3 conv, activation; the first log2(patch) of them
    stride 2) and a 1×1 projection → a `dim` token per patch×patch pixels.

    activation="selu": zero-mean activations (self-normalising nets), so the tokens at
    initialisation vary with the image instead of carrying a large image-independent offset as
    ReLU's positive mean does (~90 % vs ~20 % of their variance across scenes; tests/
    test_learning_diagnostics.py)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], dim: int, patch: int = 8, activation: str = "selu"):
        super().__init__()
        strided = int(math.log2(patch))
        act = nn.SELU if activation == "selu" else nn.ReLU
        layers, c = [], in_channels
        for i, out in enumerate(channels):
            stride = 2 if i < strided else 1
            layers += [nn.Conv2d(c, out, 3, padding=1), act(), nn.Conv2d(out, out, 3, stride=stride, padding=1), act()]
            c = out
        layers.append(nn.Conv2d(c, dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, H/patch · W/patch, dim), row-major patches."""
        return self.net(images).flatten(2).transpose(1, 2)


def init_weights(model: nn.Module, linear: str = "scaled") -> None:
    """He-normal convolutions before a ReLU, LeCun-normal before a SELU or nothing; linear layers
    LeCun-normal (`scaled`) or truncated-normal σ 0.02 (`vit`, made for 768-wide tokens: at width
    96 it leaves attention logits near zero, a saddle that learning leaves slowly); every bias
    zero. With torch's defaults the non-zero biases swamp the image: at initialisation < 1 % of
    the SLSR's variance across scenes depended on the input images, so every model started blind
    to them (tests/test_learning_diagnostics.py). Layers whose own init matters (a linear RGB
    output's bias) set it after this runs."""
    modules = list(model.modules())
    for i, module in enumerate(modules):
        if isinstance(module, nn.Conv2d):
            relu_next = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu" if relu_next else "linear")
        elif isinstance(module, nn.Linear):
            if linear == "vit":
                nn.init.trunc_normal_(module.weight, std=0.02)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
        else:
            continue
        if module.bias is not None:
            nn.init.zeros_(module.bias)
