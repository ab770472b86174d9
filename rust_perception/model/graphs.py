"""The inference graphs: thin modules over one SceneModel (and its heads) with plain tensor
inputs, exported to ONNX by `training/export.py` and run as-is by the torch backend, so every backend computes
exactly the same function. One scene per call (batch dimension 1 in practice, kept dynamic)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import from_dict
from .config import ModelConfig
from .heads import HeadConfig, build_head
from .scene_model import SceneModel


class EncodeGraph(nn.Module):
    """images (B, N, 3, H, W) in [0, 1] → SLSR (B, T, dim)."""

    def __init__(self, model: SceneModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images)


class PoseGraph(nn.Module):
    """half_image (B, 3, H, W/2) in [0, 1], SLSR (B, T, dim) → latent pose (B, D)."""

    def __init__(self, model: SceneModel):
        super().__init__()
        self.model = model

    def forward(self, half_image: torch.Tensor, slsr: torch.Tensor) -> torch.Tensor:
        first = self.model.first_view_tokens(slsr)
        return self.model.pose_estimator(half_image[:, None], first)[:, 0]


class ViewPoseGraph(nn.Module):
    """image (B, 3, H, W) in [0, 1], SLSR (B, T, dim) → the latent poses (B, 2, D) a whole frame of
    that view renders from (`SceneModel.view_latents`: both halves' where the model was trained
    with crossed halves, else the left half's twice), so no runtime decides which halves to read."""

    def __init__(self, model: SceneModel):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, slsr: torch.Tensor) -> torch.Tensor:
        return self.model.view_latents(slsr, image[:, None])[:, 0]


class RenderGraph(nn.Module):
    """SLSR (B, T, dim), latents (B, 2, D) of the view's left and right halves (`view_latents`),
    uv (B, R, 2) pixel coordinates → RGB (B, R, 3) in [0, 1], or, given the segmentation head as
    `decoder`, class logits (B, R, C). The model picks each pixel's latent (`pixel_latents`), so
    no runtime re-implements that rule. Two graphs rather than one with two outputs: each decoder
    costs as much as the other, and most calls want one."""

    def __init__(self, model: SceneModel, decoder: nn.Module | None = None):
        super().__init__()
        self.model, self.decoder = model, decoder

    def forward(self, slsr: torch.Tensor, latents: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        query = self.model.query_input(uv[:, None], latents[:, None])
        if self.decoder is not None:
            return self.decoder(query, slsr)[:, 0]
        return self.model.render(slsr, query)[:, 0].clamp(0, 1)


class EPEGraph(nn.Module):
    """SLSR (B, T, dim), latents (B, D) of views 1 and 2 → view 2's position in view 1's optical
    frame in metres (B, 3), followed by its rotation in 6-D form (B, 6) when trained for it."""

    def __init__(self, head: nn.Module, position_std: float):
        super().__init__()
        self.head = head
        self.register_buffer("scale", torch.tensor(float(position_std)))

    def forward(self, slsr: torch.Tensor, latent_1: torch.Tensor, latent_2: torch.Tensor) -> torch.Tensor:
        out = self.head(slsr, latent_1[:, None], latent_2[:, None])[:, 0]
        return torch.cat([out[:, :3] * self.scale, out[:, 3:]], dim=-1)


def build_torch_graphs(weights: dict[str, Any]) -> dict[str, nn.Module]:
    """The graph modules of a model directory's weights.pt (the torch backend's side of the export)."""
    model_cfg = from_dict(ModelConfig, weights["model_config"])
    model = SceneModel(model_cfg)
    model.load_state_dict(weights["model"])
    heads = {}
    for name, state in weights.get("heads", {}).items():
        head = build_head(model_cfg, from_dict(HeadConfig, state["config"]))
        head.load_state_dict(state["head"])
        heads[name] = (head, state)
    graphs = {"encoder": EncodeGraph(model), "pose": PoseGraph(model), "view_pose": ViewPoseGraph(model),
              "render": RenderGraph(model)}
    if "segmentation" in heads:
        graphs["segment"] = RenderGraph(model, heads["segmentation"][0])
    if "epe" in heads:
        graphs["epe"] = EPEGraph(heads["epe"][0], heads["epe"][1]["position_std"])
    return {k: g.eval() for k, g in graphs.items()}
