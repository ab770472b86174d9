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


def r2_score(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination over all coordinates of (N, C) predictions: 1 − SSE / SST,
    SST about the per-coordinate mean (the paper's R² for relative camera positions)."""
    target = target.double()
    sse = ((pred.double() - target) ** 2).sum()
    sst = ((target - target.mean(dim=0)) ** 2).sum()
    return float(1.0 - sse / sst.clamp(min=1e-12))


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) counts, rows = true class, columns = predicted class."""
    idx = target.flatten().long() * num_classes + pred.flatten().long()
    return torch.bincount(idx, minlength=num_classes**2).view(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU per class from a confusion matrix; NaN for classes absent from both prediction and truth."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: torch.Tensor) -> float:
    return float(iou_per_class(confusion).nanmean())
