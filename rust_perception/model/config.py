"""ModelConfig: one model family — RUST and the posed baselines SRT / UpSRT — and its ablations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import require

VARIANTS = ("rust", "srt", "upsrt")
POSE_HALVES = ("random", "left", "right")
POSE_SUPERVISION = ("full", "unseen")


@dataclass(frozen=True)
class ModelConfig:
    variant: str = "rust"  # rust: no poses; srt: posed inputs + targets; upsrt: posed targets only
    image_size: int = 64
    num_inputs: int = 5
    dim: int = 192  # token width (encoder, SLSR, Pose Estimator)
    heads: int = 4
    mlp_dim: int = 384
    cnn_channels: tuple[int, int, int] = (48, 96, 192)  # 3 conv blocks, the first log2(patch_size) strided
    patch_size: int = 8  # pixels per token side (4 or 8; 2 also allowed)
    decoder_dim: int = 0  # width of the per-pixel decoder queries (0: dim); its MLP keeps mlp_dim/dim
    encoder_layers: int = 3
    pose_layers: int = 2  # Pose Estimator blocks of [cross-attention into S̃, self-attention]
    decoder_layers: int = 2
    latent_dim: int = 8  # size of the latent pose p̃ (paper ablations: 3 / 8 / 64)
    pixel_octaves: int = 8  # sinusoidal encoding of the target pixel's 2D position (RUST query)
    ray_octaves: int = 8  # sinusoidal encoding of ray origin/direction (SRT, UpSRT)
    position_scale: float = 0.1  # metres → ray-encoding units
    # learning fixes (docs/design.md "Deviations from the paper"); the other values reproduce the old model
    init: Literal["scaled", "vit", "torch"] = "scaled"  # He/LeCun-normal convs and linears with
    # zero biases; vit: linears truncated-normal σ 0.02 instead; torch: its default (layers.init_weights)
    cnn_activation: Literal["selu", "relu"] = "selu"  # SELU: no image-independent offset at init
    output_activation: Literal["sigmoid", "linear"] = "sigmoid"  # both start at mid-grey
    ray_code: Literal["patch", "pixel"] = "patch"  # SRT input rays: projected and added per patch
    # token, or concatenated to every pixel's RGB before the CNN (the SRT paper)
    # ablation switches (paper Tab. 1 right)
    pose_half: str = "random"  # half of the target fed to the Pose Estimator during training
    pose_supervision: str = "full"  # pixels a RUST target's loss covers: full (the paper) or only the
    # half its Pose Estimator did not see, so the latent pose cannot carry the seen half's content
    pose_grad_scale: float = 0.2  # gradients into and through the Pose Estimator are scaled by this
    pose_stop_gradient: bool = False  # cut gradients from the Pose Estimator into the SLSR
    pose_slsr: bool = True  # cross-attention into the first view's SLSR tokens
    pose_self_attention: bool = True

    def __post_init__(self):
        require(self.variant in VARIANTS, f"variant={self.variant!r} is not allowed (choose from {', '.join(VARIANTS)})")
        require(self.pose_half in POSE_HALVES,
                f"pose_half={self.pose_half!r} is not allowed (choose from {', '.join(POSE_HALVES)})")
        require(self.pose_supervision in POSE_SUPERVISION, f"pose_supervision={self.pose_supervision!r} is not allowed "
                f"(choose from {', '.join(POSE_SUPERVISION)})")
        require(self.pose_supervision == "full" or self.pose_half == "random",
                f"pose_supervision={self.pose_supervision!r} needs pose_half='random', not {self.pose_half!r}: with "
                "a fixed half, the loss on the unseen half never trains the other half of any view")
        require(self.pose_supervision == "full" or self.variant == "rust",
                f"pose_supervision={self.pose_supervision!r} is only for variant rust (the posed variants have no "
                "Pose Estimator)")
        require(self.patch_size in (2, 4, 8), f"patch_size={self.patch_size} is not allowed (choose from 2, 4, 8)")
        require(self.image_size % (2 * self.patch_size) == 0 and self.image_size >= 2 * self.patch_size,
                f"image_size={self.image_size} is not allowed (must be a multiple of {2 * self.patch_size}: "
                f"{self.patch_size}×{self.patch_size} patches of half images)")
        require(self.dim % self.heads == 0, f"dim={self.dim} is not allowed (must be divisible by heads={self.heads})")
        require(self.decoder_dim >= 0 and self.query_dim % self.heads == 0,
                f"decoder_dim={self.decoder_dim} is not allowed (must be 0 or a multiple of heads={self.heads})")
        require(self.num_inputs >= 1, f"num_inputs={self.num_inputs} is not allowed (must be >= 1)")
        require(self.latent_dim >= 1, f"latent_dim={self.latent_dim} is not allowed (must be >= 1)")
        for name in ("encoder_layers", "decoder_layers"):
            require(getattr(self, name) >= 1, f"{name}={getattr(self, name)} is not allowed (must be >= 1)")
        require(self.pose_layers >= 0, f"pose_layers={self.pose_layers} is not allowed (must be >= 0)")
        require(0.0 <= self.pose_grad_scale <= 1.0, f"pose_grad_scale={self.pose_grad_scale} is not allowed (must be in [0, 1])")

    @property
    def posed_inputs(self) -> bool:
        return self.variant == "srt"

    @property
    def posed_targets(self) -> bool:
        return self.variant in ("srt", "upsrt")

    @property
    def crossed_halves(self) -> bool:
        """Whole frames render each half from the latent pose of the other half: a model whose
        loss covered only the half its Pose Estimator did not see never learned the seen half
        from its own latent (docs/learning.md), so that combination is never queried."""
        return self.variant == "rust" and self.pose_supervision == "unseen"

    @property
    def patches(self) -> int:
        """Tokens per side of an input view."""
        return self.image_size // self.patch_size

    @property
    def query_dim(self) -> int:
        """Width of the decoder's per-pixel queries."""
        return self.decoder_dim or self.dim

    @property
    def query_mlp_dim(self) -> int:
        return max(1, self.mlp_dim * self.query_dim // self.dim)
