"""Comparison figures: input views | target | each model's render of the target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.scene_model import SceneModel, pixel_grid
from .steps import render_targets


@torch.no_grad()
def render_full_targets(model: SceneModel, batch, bf16: bool = False) -> torch.Tensor:
    """Whole target views (B, M, 3, H, W), as the model renders a whole frame: RUST from its
    `view_latents` (crossed halves where trained so), the posed variants from the true poses."""
    b, m, _, h, w = batch["target_images"].shape
    uv = pixel_grid(h, w).expand(b, m, -1, -1)
    return render_targets(model, batch, uv, bf16, pose_half="both").view(b, m, h, w, 3).permute(0, 1, 4, 2, 3)


def comparison_figure(batch, renders: dict[str, torch.Tensor], path: str | Path, scores=None) -> Path:
    """Rows: scenes (first target each). Columns: inputs, target, then one per model, with the
    right half (where metrics are computed) marked. `scores[name][row]` adds PSNR captions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import save_figure

    inputs, targets = batch["input_images"], batch["target_images"]
    rows, n_in = inputs.shape[0], inputs.shape[1]
    cols = n_in + 1 + len(renders)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows), squeeze=False)
    to_img = lambda t: np.clip(t.permute(1, 2, 0).float().numpy(), 0, 1)  # noqa: E731
    for r in range(rows):
        panels = [(f"input {i + 1}", inputs[r, i]) for i in range(n_in)] + [("target", targets[r, 0])]
        panels += [(name, img[r, 0]) for name, img in renders.items()]
        for c, (title, img) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(to_img(img), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c > n_in:
                ax.axvline(img.shape[-1] / 2 - 0.5, color="white", lw=0.6, ls="--")
            caption = title
            if scores and title in scores:
                caption += f"\n{scores[title][r]:.2f} dB"
            if r == 0 or (scores and title in scores):
                ax.set_title(caption, fontsize=7)
    fig.tight_layout()
    path = Path(path)
    return save_figure(fig, path)
