"""Image-quality metrics (PSNR, SSIM via torchmetrics), on images in [0, 1]."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def psnr(pred: torch.Tensor, target: torch.Tensor, dims=(-3, -2, -1)) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (mean squared error over `dims`)."""
    mse = ((pred.float().clamp(0, 1) - target.float()) ** 2).mean(dim=dims)
    return -10.0 * torch.log10(mse.clamp(min=1e-10))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM per image of (N, 3, H, W) batches (Gaussian window 11, σ 1.5)."""
    return structural_similarity_index_measure(pred.float().clamp(0, 1), target.float(), data_range=1.0,
                                               reduction="none")
