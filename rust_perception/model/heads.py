"""Read-out heads trained on a frozen scene model (paper §4.2–4.3).

- `EPEHead` (explicit pose estimation): query = MLP(p̃₁ ⊕ p̃₂) → cross-attention into the SLSR →
  MLP → camera 2's position in camera 1's optical frame, and (beyond the paper, for rigs) its
  rotation in the 6-D representation of Zhou et al. (the first two columns of R₁ᵀR₂), so a full
  relative SE(3) can be published.
- `SegmentationHead`: the RGB decoder's architecture with class logits as output, queried with a
  latent pose and pixel positions like the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import require
from .config import ModelConfig
from .decoder import Decoder
from .layers import Block

HEADS = ("epe", "segmentation")


@dataclass(frozen=True)
class HeadConfig:
    head: str = "epe"
    layers: int = 2  # cross-attention blocks (EPE) / decoder blocks (segmentation)
    rotation: bool = True  # EPE: also predict the relative rotation
    num_classes: int = 0  # segmentation: taken from the dataset manifest
    # segmentation only (docs/results.md: on the dome model each adds ~0.04 mIoU alone, ~0.02 on top of the other):
    from_decoder: bool = True  # start from the RGB decoder's weights (all but its output layer)
    balance: float = 0.5  # class weights ∝ frequency^-balance (0: plain cross-entropy)

    def __post_init__(self):
        require(self.head in HEADS, f"head={self.head!r} is not allowed (choose from {', '.join(HEADS)})")
        require(self.layers >= 1, f"layers={self.layers} is not allowed (must be >= 1)")
        require(self.head != "segmentation" or self.num_classes >= 2,
                f"num_classes={self.num_classes} is not allowed for segmentation (must be >= 2)")
        require(0.0 <= self.balance <= 1.0, f"balance={self.balance} is not allowed (must be in [0, 1])")
        if self.head != "segmentation":  # segmentation's settings mean nothing here: record them as off
            object.__setattr__(self, "from_decoder", False)
            object.__setattr__(self, "balance", 0.0)


class EPEHead(nn.Module):
    def __init__(self, model_cfg: ModelConfig, cfg: HeadConfig):
        super().__init__()
        d = model_cfg.dim
        self.query = nn.Sequential(nn.Linear(2 * model_cfg.latent_dim, d), nn.GELU(), nn.Linear(d, d))
        self.layers = nn.ModuleList(Block(d, model_cfg.heads, model_cfg.mlp_dim, cross=True) for _ in range(cfg.layers))
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 9 if cfg.rotation else 3))

    def forward(self, slsr: torch.Tensor, latent_1: torch.Tensor, latent_2: torch.Tensor) -> torch.Tensor:
        """slsr (B, T, dim), latents (B, K, D) → (B, K, 3) position [+ 6-D rotation → (B, K, 9)]."""
        x = self.query(torch.cat([latent_1, latent_2], dim=-1))
        for layer in self.layers:
            x = layer(x, slsr)
        return self.out(x)


class SegmentationHead(Decoder):
    def __init__(self, model_cfg: ModelConfig, cfg: HeadConfig):
        from dataclasses import replace

        super().__init__(replace(model_cfg, decoder_layers=cfg.layers), out_channels=cfg.num_classes, rgb=False)

    def start_from(self, decoder: Decoder) -> None:
        """Copy the RGB decoder's query MLP, blocks and norm (the head has as many blocks): they
        already know where the scene's surfaces are; only the class layer starts afresh."""
        require(len(self.layers) == len(decoder.layers),
                f"a head started from the RGB decoder needs its {len(decoder.layers)} blocks, not {len(self.layers)}")
        own = self.state_dict()
        own.update({k: v for k, v in decoder.state_dict().items() if k in own and not k.startswith("rgb.")})
        self.load_state_dict(own)


def build_head(model_cfg: ModelConfig, cfg: HeadConfig) -> nn.Module:
    require(model_cfg.variant == "rust", f"heads read latent poses: the run must be a rust model, not {model_cfg.variant}")
    return EPEHead(model_cfg, cfg) if cfg.head == "epe" else SegmentationHead(model_cfg, cfg)


# ------------------------------------------------------------------ relative-pose targets
def relative_pose(cam2world_1: torch.Tensor, cam2world_2: torch.Tensor) -> torch.Tensor:
    """(…, 4, 4) pose of camera 2 in camera 1's optical frame."""
    return torch.linalg.inv(cam2world_1) @ cam2world_2


def rotation_to_6d(rotation: torch.Tensor) -> torch.Tensor:
    """(…, 3, 3) → (…, 6): the first two columns."""
    return torch.cat([rotation[..., :, 0], rotation[..., :, 1]], dim=-1)


def rotation_from_6d(x: torch.Tensor) -> torch.Tensor:
    """(…, 6) → (…, 3, 3) by Gram–Schmidt (a proper rotation for any input)."""
    a = F.normalize(x[..., :3], dim=-1)
    b = F.normalize(x[..., 3:] - (a * x[..., 3:]).sum(-1, keepdim=True) * a, dim=-1)
    return torch.stack([a, b, torch.linalg.cross(a, b)], dim=-1)


def rotation_error_deg(r_pred: torch.Tensor, r_true: torch.Tensor) -> torch.Tensor:
    """Geodesic angle (…) between rotations, degrees."""
    cos = ((r_pred.transpose(-1, -2) @ r_true).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
