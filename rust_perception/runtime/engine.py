"""The inference interface every backend shares (`registry.py` picks one).

`Engine` does the input checking and the image/pixel bookkeeping once over a verified
`ModelDirectory`; a backend module (`torch_backend`, `onnxruntime_backend`, `tensorrt_backend`)
only implements `_run(graph, feeds) -> outputs`. Torch-free: a Jetson running ONNX Runtime or
TensorRT never imports torch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .model_dir import ModelDirectory


class EngineInputError(UserError):
    """An input of the wrong shape or type; the message names the expected shape."""


class Engine:
    """Single-scene inference. Images are (H, W, 3) uint8 RGB or (3, H, W) float in [0, 1]."""

    name = "base"

    def __init__(self, model: ModelDirectory | str | Path):
        self.model = model if isinstance(model, ModelDirectory) else ModelDirectory.load(model)
        self.model_dir = self.model.path
        self.size = self.model.image_size

    @property
    def meta(self) -> Mapping[str, Any]:
        """The raw metadata, read-only (kept for callers that read keys by name)."""
        return self.model.meta

    # ------------------------------------------------------------------ backend hook
    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} does not run graphs")

    # ------------------------------------------------------------------ input checks
    def _image(self, image: np.ndarray, what: str) -> np.ndarray:
        """→ (3, H, W) float32 in [0, 1]."""
        a = np.asarray(image)
        s = self.size
        if a.shape == (s, s, 3) and a.dtype == np.uint8:
            return np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32) / 255.0
        if a.shape == (3, s, s) and a.dtype.kind == "f":
            if not np.isfinite(a).all():
                raise EngineInputError(f"{what} has non-finite values (NaN or inf); expected floats in [0, 1]")
            if a.min() < 0 or a.max() > 1:
                raise EngineInputError(f"{what} has values outside [0, 1] ({a.min():g} to {a.max():g}); "
                                       "float images are RGB in [0, 1] (or pass uint8)")
            return a.astype(np.float32)
        raise EngineInputError(f"{what} has shape {a.shape} and dtype {a.dtype}; expected ({s}, {s}, 3) uint8 RGB "
                               f"or (3, {s}, {s}) float in [0, 1] (the model's image size is {s})")

    def _slsr(self, slsr: np.ndarray) -> np.ndarray:
        expected = (1, self.model.tokens, self.model.dim)
        a = np.asarray(slsr, np.float32).reshape((1, *np.shape(slsr))) if np.ndim(slsr) == 2 else np.asarray(slsr, np.float32)
        if a.shape != expected:
            raise EngineInputError(f"slsr has shape {np.shape(slsr)}; expected {expected[1:]} from encode()")
        return a

    def _latent(self, latent: np.ndarray, what: str = "latent") -> np.ndarray:
        a = np.asarray(latent, np.float32).reshape(-1)
        if a.shape != (self.model.latent_dim,):
            raise EngineInputError(f"{what} has shape {np.shape(latent)}; expected ({self.model.latent_dim},)")
        return a[None]

    def pixel_grid(self, size: int | None = None) -> np.ndarray:
        """(size², 2) pixel coordinates of a size×size render in model-pixel units (size may
        differ from the model's: the decoder takes continuous pixel positions)."""
        size = size or self.size
        c = (np.arange(size, dtype=np.float32) + 0.5) * (self.size / size) - 0.5
        v, u = np.meshgrid(c, c, indexing="ij")
        return np.stack([u.ravel(), v.ravel()], -1)

    # ------------------------------------------------------------------ the interface
    def encode(self, images) -> np.ndarray:
        """num_inputs views (first = reference) → SLSR (T, dim)."""
        n = self.model.num_inputs
        if len(images) != n:
            raise EngineInputError(f"encode got {len(images)} views; the model takes exactly {n} "
                                   f"(each ({self.size}, {self.size}, 3) uint8)")
        stack = np.stack([self._image(img, f"view {i}") for i, img in enumerate(images)])[None]
        return self._run("encoder", {"images": stack})[0][0]

    def estimate_pose(self, slsr: np.ndarray, image, half: str = "left") -> np.ndarray:
        """Latent pose (D,) of `image` from its left (default) or right half."""
        if half not in ("left", "right"):
            raise EngineInputError(f"half={half!r}; expected 'left' or 'right'")
        img = self._image(image, "image")
        w = self.size // 2
        part = img[:, :, :w] if half == "left" else img[:, :, w:]
        return self._run("pose", {"half_image": np.ascontiguousarray(part)[None], "slsr": self._slsr(slsr)})[0][0]

    def view_latents(self, slsr: np.ndarray, image) -> np.ndarray:
        """Latent poses (2, D) of `image`'s left and right halves: what `render` and `segment`
        take to draw that view whole. Row 0 is the left half's (`estimate_pose`, the latent pose
        the node publishes); models without `crossed_halves` render every pixel from it, and the
        model's own graph repeats it in row 1 instead of estimating the right half's."""
        return self._run("view_pose", {"image": self._image(image, "image")[None], "slsr": self._slsr(slsr)})[0][0]

    def _latents(self, latents: np.ndarray) -> np.ndarray:
        """(D,) — one latent for every pixel — or (2, D) from `view_latents` → (1, 2, D)."""
        a = np.asarray(latents, np.float32)
        d = self.model.latent_dim
        if a.shape == (d,):
            a = np.stack([a, a])
        if a.shape != (2, d):
            raise EngineInputError(f"latent has shape {a.shape}; expected ({d},) or (2, {d}) from view_latents()")
        return a[None]

    def _render(self, slsr, latents, uv, chunk: int, graph: str = "render") -> np.ndarray:
        uv = np.asarray(uv, np.float32)
        if uv.ndim != 2 or uv.shape[1] != 2 or len(uv) == 0:
            raise EngineInputError(f"uv has shape {uv.shape}; expected (R ≥ 1, 2) pixel coordinates")
        feeds = {"slsr": self._slsr(slsr), "latents": self._latents(latents)}
        return np.concatenate([self._run(graph, {**feeds, "uv": uv[s : s + chunk][None]})[0][0]
                               for s in range(0, len(uv), chunk)])

    def render(self, slsr: np.ndarray, latents: np.ndarray, uv: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
        """RGB (R, 3) in [0, 1] at pixel coordinates uv (default: every pixel, row-major), from a
        view's `view_latents` (2, D) — or one latent (D,) for every pixel, e.g. a moved one."""
        return self._render(slsr, latents, self.pixel_grid() if uv is None else uv, chunk)

    def render_image(self, slsr: np.ndarray, latents: np.ndarray, size: int | None = None, chunk: int = 4096) -> np.ndarray:
        """A size×size (default: model size) view as (H, W, 3) uint8; `latents` as in `render`."""
        size = size or self.size
        rgb = self.render(slsr, latents, self.pixel_grid(size), chunk)
        return (rgb.reshape(size, size, 3) * 255.0 + 0.5).astype(np.uint8)

    def segment(self, slsr: np.ndarray, latents: np.ndarray, size: int | None = None, chunk: int = 4096) -> np.ndarray:
        """Class ids (H, W) uint8 of a size×size view (needs a segmentation head); `latents` as in `render`."""
        if not self.model.segmentation:
            raise UserError(f"{self.model_dir} has no segmentation head (train_heads --head segmentation, then rust_export)")
        size = size or self.size
        logits = self._render(slsr, latents, self.pixel_grid(size), chunk, graph="segment")
        return logits.argmax(-1).reshape(size, size).astype(np.uint8)

    def relative_pose(self, slsr: np.ndarray, latent_1: np.ndarray, latent_2: np.ndarray) -> dict[str, np.ndarray | None]:
        """View 2's pose in view 1's optical frame: position (3,) metres and rotation (3, 3) or None."""
        if not self.model.epe:
            raise UserError(f"{self.model_dir} has no EPE head (train_heads --head epe, then rust_export)")
        out = self._run("epe", {"slsr": self._slsr(slsr), "latent_1": self._latent(latent_1, "latent_1"),
                                "latent_2": self._latent(latent_2, "latent_2")})[0][0]
        rotation = None
        if out.shape[0] == 9:
            a = out[3:6] / np.linalg.norm(out[3:6])
            b = out[6:9] - (a @ out[6:9]) * a
            b /= np.linalg.norm(b)
            rotation = np.stack([a, b, np.cross(a, b)], axis=-1)
        return {"position": out[:3], "rotation": rotation}
