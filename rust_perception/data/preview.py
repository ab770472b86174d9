"""Contact sheets: what a dataset looks like, for people (views, semantic overlays, legend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..io import atomic_write
from .store import DatasetStore


def overlay(rgb: np.ndarray, labels: np.ndarray, colors: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend per-pixel class colours over an RGB image (both H×W[×3] uint8)."""
    blended = (1 - alpha) * rgb.astype(np.float32) + alpha * colors[labels].astype(np.float32)
    return blended.round().astype(np.uint8)


def contact_sheet(store: DatasetStore, split: str = "train", scenes: int = 4, views: int = 6,
                  scale: int = 2) -> Image.Image:
    """Per scene one row of views and one row of semantic overlays; a class legend below."""
    colors = np.array([c["color"] for c in store.classes], dtype=np.uint8)
    scenes = min(scenes, store.num_scenes(split))
    views = min(views, store.views)
    h, w = store.height * scale, store.width * scale
    pad, label_h = 4, 14
    legend_h = 18 * ((len(colors) + 3) // 4) + pad
    width = views * (w + pad) + pad
    height = scenes * (label_h + 2 * (h + pad)) + legend_h + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = pad
    for s in range(scenes):
        scene = store.scene(split, s)
        draw.text((pad, y), f"{split} scene {s}: views 0-{views - 1} (top), semantic overlay (bottom)", fill=(0, 0, 0))
        y += label_h
        for row, images in enumerate((scene["rgb"], overlay(scene["rgb"], scene["labels"], colors))):
            for v in range(views):
                tile = Image.fromarray(images[v]).resize((w, h), Image.NEAREST)
                sheet.paste(tile, (pad + v * (w + pad), y + row * (h + pad)))
        y += 2 * (h + pad)
    for i, cls in enumerate(store.classes):
        x0, y0 = pad + (i % 4) * (width // 4), y + 18 * (i // 4)
        draw.rectangle([x0, y0 + 2, x0 + 12, y0 + 14], fill=tuple(cls["color"]), outline=(0, 0, 0))
        draw.text((x0 + 18, y0 + 2), cls["name"], fill=(0, 0, 0))
    return sheet


def save_png(image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as handle:
        image.save(handle, format="PNG")
    return path
