"""Latent poses of a trained RUST model on held-out data, and the figures of paper Figs. 5/8:
a 3-D scatter of the top PCA components coloured by camera attributes, and traversal renders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..config import from_dict
from ..errors import ConfigError
from ..data.synthetic import SyntheticConfig, scene_azimuths
from ..latent_space import PCA, camera_attributes, linear_probe, neighbour_probe, own_pose, pair_probe, relative_pose
from ..model.scene_model import SceneModel, pixel_grid

LATENT_FILE = "latent_space.json"  # in the run directory: PCA basis + component meanings (the node reads it)


@dataclass
class LatentSet:
    """Latent poses of held-out targets and what the probes read from them."""

    latents: np.ndarray  # (N, D): each target's, from its left half
    first_latents: np.ndarray  # (N, D): the first input view's (its left half), for the pair probe
    attributes: dict[str, np.ndarray]  # camera_attributes, relative to the first input camera
    relative: dict[str, np.ndarray]  # relative_pose and own_pose: the probes' targets


def synthetic_config(manifest: dict) -> SyntheticConfig | None:
    """The generator settings of a synthetic dataset (None for a recording, or for one made by a
    generator whose settings have since changed: its scenes' yaw references are then unknown)."""
    if manifest.get("source") != "synthetic":
        return None
    try:
        return from_dict(SyntheticConfig, manifest["generator"])
    except ConfigError:
        return None


@torch.no_grad()
def collect_latents(model: SceneModel, dataset, kind: str, samples: int, batch_size: int = 16,
                    progress: bool = True) -> LatentSet:
    """The latent poses of every target of `samples` held-out (scene, view draw) pairs — scenes
    are revisited with new view draws when the split has fewer — with the Pose Estimator fed left
    halves, and what the probes and correlations read from them (`LatentSet`)."""
    if model.cfg.variant != "rust":
        raise ValueError(f"latent poses exist only for rust runs, not {model.cfg.variant}")
    items = [(i % len(dataset), i // len(dataset)) for i in range(samples)]
    synthetic = synthetic_config(dataset.store.manifest)
    latents, firsts, attrs, relative = [], [], [], []
    for start in tqdm(range(0, len(items), batch_size), desc="latent poses", unit="batch", disable=not progress):
        rows = [dataset[it] for it in items[start : start + batch_size]]
        batch = {k: torch.stack([r[k] for r in rows]) for k in rows[0]}
        b, m = batch["target_images"].shape[:2]
        slsr = model.encode(batch["input_images"])
        latents.append(model.estimate_pose(slsr, batch["target_images"], torch.zeros(b, m, dtype=torch.bool)).flatten(0, 1))
        first_latent = model.estimate_pose(slsr, batch["input_images"][:, :1], torch.zeros(b, 1, dtype=torch.bool))
        firsts.append(first_latent.expand(-1, m, -1).flatten(0, 1))
        first = batch["input_cam2world"][:, :1].expand(-1, m, -1, -1).flatten(0, 1)
        first_cam = batch["input_rig_camera"][:, :1].expand(-1, m).flatten()
        attrs.append(camera_attributes(kind, batch["target_cam2world"].flatten(0, 1).numpy(), first.numpy(),
                                       batch["target_rig_camera"].flatten().numpy(), first_cam.numpy()))
        target = batch["target_cam2world"].flatten(0, 1).numpy()
        scenes = [scene_azimuths(synthetic, dataset.split, int(i)) if synthetic else {} for i in batch["scene_index"]]
        references = {k: np.repeat([s[k] for s in scenes], m) for k in scenes[0]}
        relative.append({**relative_pose(target, first.numpy()), **own_pose(target, references)})
    join = lambda parts: {k: np.concatenate([a[k] for a in parts]) for k in parts[0]}  # noqa: E731
    return LatentSet(torch.cat(latents).float().numpy(), torch.cat(firsts).float().numpy(), join(attrs), join(relative))


def probe_relative_pose(model: SceneModel, data, cfg, kind: str, test: LatentSet, samples: int) -> dict[str, dict[str, float]]:
    """R² on the held-out `test` latents of the linear, the nearest-neighbour and the pair probe,
    fitted on `samples` draws of the training split of `data` (a dataset path; {} when it has no
    training split): {"linear": {value: R²}, "neighbours": {…}, "pair": {…}}. The pair probe
    reads only the relative values (from the target's and the first input view's latents)."""
    from ..data.store import DatasetStore, MultiViewDataset

    if "train" not in DatasetStore(data).splits:
        return {}
    train = collect_latents(model, MultiViewDataset(data, "train", cfg.model.num_inputs, cfg.num_targets,
                                                    seed=cfg.seed + 2), kind, samples, progress=False)
    relative = [k for k in train.relative if not k.startswith("own_")]
    return {"linear": linear_probe(train.latents, train.relative, test.latents, test.relative),
            "neighbours": neighbour_probe(train.latents, train.relative, test.latents, test.relative),
            "pair": pair_probe(train.latents, train.first_latents, {k: train.relative[k] for k in relative},
                               test.latents, test.first_latents, {k: test.relative[k] for k in relative})}


@torch.no_grad()
def traversal(model: SceneModel, batch, pca: PCA, components: int = 3, steps: int = 7, span: float = 2.0) -> np.ndarray:
    """Renders (K, steps, H, W, 3) of the first scene in `batch`: its first target's latent poses
    (both halves', `view_latents`) moved from −span to +span standard deviations along each of the
    top `components`."""
    size = model.cfg.image_size
    one = {k: v[:1] for k, v in batch.items()}
    slsr = model.encode(one["input_images"])
    base = model.view_latents(slsr, one["target_images"][:, :1])[0, 0].numpy()
    uv = pixel_grid(size, size)[None, None]
    out = np.zeros((components, steps, size, size, 3), np.float32)
    for k in range(min(components, len(pca.std))):
        for j, a in enumerate(np.linspace(-span, span, steps)):
            latent = torch.from_numpy(base + a * pca.std[k] * pca.components[k]).float()[None, None]
            rgb = model.render(slsr, model.query_input(uv, latent), chunk=4096)
            out[k, j] = rgb[0, 0].clamp(0, 1).view(size, size, 3).numpy()
    return out


@torch.no_grad()
def yaw_turn(model: SceneModel, batch, latents: np.ndarray, cos: np.ndarray, sin: np.ndarray, scenes: int = 3,
             steps: int = 8) -> np.ndarray:
    """Renders (scenes, steps, H, W, 3): the first target of each of the first `scenes` scenes in
    `batch` with its latent poses (both halves') turned once round the circle that latents trace
    as a view turns relative to a reference (the yaw whose cos / sin the latents hold, from
    `latents` (N, D) and their `cos`, `sin` (N,)): the fitted latent-per-unit-(cos, sin) map moves
    them from the target's own (cos, sin), read by the inverse fit, in steps of 360° / `steps`.
    `latents` are left halves' (collect_latents); the right half's latent moves by the same change,
    an approximation that can leave a seam down the middle of a crossed model's frames."""
    x = np.c_[cos, sin, np.ones(len(cos))]
    to_latent = np.linalg.lstsq(x, latents, rcond=None)[0][:2]  # (2, D): the latent's change per unit cos, sin
    to_yaw = np.linalg.lstsq(np.c_[latents, np.ones(len(latents))], x[:, :2], rcond=None)[0]  # (D + 1, 2)
    size = model.cfg.image_size
    uv = pixel_grid(size, size)[None, None]
    out = np.zeros((min(scenes, len(batch["input_images"])), steps, size, size, 3), np.float32)
    for i in range(len(out)):
        slsr = model.encode(batch["input_images"][i : i + 1])
        own = model.view_latents(slsr, batch["target_images"][i : i + 1, :1])[0, 0].numpy()  # (2, D)
        c, s = np.r_[own[0], 1.0] @ to_yaw
        start = np.arctan2(s, c)
        for j in range(steps):
            angle = start + 2 * np.pi * j / steps
            turned = own + (np.array([np.cos(angle), np.sin(angle)]) - [np.cos(start), np.sin(start)]) @ to_latent
            rgb = model.render(slsr, model.query_input(uv, torch.from_numpy(turned).float()[None, None]), chunk=4096)
            out[i, j] = rgb[0, 0].clamp(0, 1).view(size, size, 3).numpy()
    return out


def scatter_figure(coords: np.ndarray, attributes: dict[str, np.ndarray], table: dict[str, list[float]], path: Path) -> Path:
    """One 3-D scatter of PCA components 1–3 per attribute, coloured by it (paper Figs. 5/8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import save_figure

    fig = plt.figure(figsize=(4.2 * len(attributes), 4.0))
    for i, (name, values) in enumerate(attributes.items()):
        ax = fig.add_subplot(1, len(attributes), i + 1, projection="3d")
        cmap = "twilight" if name in ("yaw", "camera") else "viridis"
        sc = ax.scatter(coords[:, 0], coords[:, 1], coords[:, 2] if coords.shape[1] > 2 else 0 * coords[:, 0],
                        c=values, s=3, cmap=cmap, alpha=0.8)
        rs = ", ".join(f"{r:+.2f}" for r in table[name][:3])
        ax.set_title(f"{name} (r with PC1–3: {rs})", fontsize=8)
        ax.set_xlabel("PC1", fontsize=7)
        ax.set_ylabel("PC2", fontsize=7)
        ax.set_zlabel("PC3", fontsize=7)
        ax.tick_params(labelsize=6)
        fig.colorbar(sc, ax=ax, shrink=0.55, pad=0.1)
    fig.tight_layout()
    return save_figure(fig, path)


def traversal_figure(frames: np.ndarray, labels: list[str], path: Path, span: float = 2.0,
                     columns: list[str] | None = None) -> Path:
    """Rows: `labels`; columns: −span … +span standard deviations, or the `columns` titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import save_figure

    rows, cols = frames.shape[:2]
    columns = columns or [f"{a:+.1f}σ" for a in np.linspace(-span, span, cols)]
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(frames[r, c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
