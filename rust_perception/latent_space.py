"""What the latent pose space encodes (paper §4.2, Figs. 5 and 8): PCA of latent poses p̃, Pearson
correlation of each component with ground-truth camera attributes relative to the first input
camera, and the "meanings" the node uses for "move up / rotate / move closer" queries.

Everything here is numpy and ROS-free; `trainer/analyze_latent.py` feeds it a trained model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Attributes per data kind: dome cameras orbit a centre, the street rig drives along x.
ATTRIBUTES = {"dome": ("height", "distance", "yaw"), "street": ("position", "camera", "yaw")}
# Node queries (docs/node.md "Parameters") → the attribute whose component they move along.
MOTIONS = {"up": "height", "closer": "distance", "rotate": "yaw", "forward": "position"}


@dataclass
class PCA:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D), rows orthonormal, by decreasing variance
    std: np.ndarray  # (K,) standard deviation of the data along each component
    explained: np.ndarray  # (K,) fraction of total variance

    def project(self, latents: np.ndarray) -> np.ndarray:
        return (np.asarray(latents, np.float64) - self.mean) @ self.components.T

    def unproject(self, coords: np.ndarray) -> np.ndarray:
        return self.mean + np.asarray(coords, np.float64) @ self.components

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("mean", "components", "std", "explained")}

    @classmethod
    def from_dict(cls, data: dict) -> "PCA":
        return cls(**{k: np.asarray(data[k], np.float64) for k in ("mean", "components", "std", "explained")})


def fit_pca(latents: np.ndarray) -> PCA:
    x = np.asarray(latents, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"PCA needs an (N ≥ 2, D) array of latents, got shape {x.shape}")
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2 / (len(x) - 1)
    return PCA(mean, vt, np.sqrt(var), var / max(var.sum(), 1e-30))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64) - np.mean(a), np.asarray(b, np.float64) - np.mean(b)
    denom = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def correlation_table(coords: np.ndarray, attributes: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Pearson r of every PCA coordinate (N, K) with every attribute (N,): {name: [r_1 … r_K]}."""
    return {name: [pearson(coords[:, k], values) for k in range(coords.shape[1])] for name, values in attributes.items()}


def component_meanings(table: dict[str, list[float]], min_abs_r: float = 0.5) -> dict[str, dict]:
    """For each attribute, the component that correlates with it most strongly (if |r| ≥
    `min_abs_r`): {attribute: {"component": k, "r": r, "sign": ±1}} — moving +sign along
    component k increases the attribute."""
    out = {}
    for name, rs in table.items():
        k = int(np.argmax(np.abs(rs)))
        if abs(rs[k]) >= min_abs_r:
            out[name] = {"component": k, "r": round(float(rs[k]), 4), "sign": 1 if rs[k] > 0 else -1}
    return out


def motion_latent(pca: PCA, meanings: dict[str, dict], latent: np.ndarray, motion: str, amount: float) -> np.ndarray:
    """`latent` moved by `amount` standard deviations along the component that means `motion`
    ("up", "closer", "rotate", "forward"); ValueError when the run found no such component."""
    if motion not in MOTIONS:
        raise ValueError(f"motion {motion!r} is unknown (choose from {', '.join(MOTIONS)})")
    attribute = MOTIONS[motion]
    if attribute not in meanings:
        raise ValueError(f"no latent component correlates with {attribute!r} in this run (|r| < threshold)")
    m = meanings[attribute]
    sign = -1 if motion == "closer" else 1  # closer = smaller distance
    step = sign * m["sign"] * amount * pca.std[m["component"]]
    return np.asarray(latent, np.float64) + step * pca.components[m["component"]]


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _yaw(cam2world: np.ndarray) -> np.ndarray:
    """World yaw of the optical axis (the rotation matrix's third column)."""
    forward = cam2world[..., :3, 2]
    return np.arctan2(forward[..., 1], forward[..., 0])


def relative_pose(target_c2w: np.ndarray, first_c2w: np.ndarray) -> dict[str, np.ndarray]:
    """What a latent pose should let one read out linearly: the target camera's position in the
    first input camera's frame (x right, y down, z forward) and cos / sin of the relative yaw —
    a wrapped angle itself has no linear relation to anything (issue 13)."""
    t, f = np.asarray(target_c2w, np.float64), np.asarray(first_c2w, np.float64)
    position = np.einsum("nji,nj->ni", f[:, :3, :3], t[:, :3, 3] - f[:, :3, 3])
    yaw = _wrap(_yaw(t) - _yaw(f))
    return {"x": position[:, 0], "y": position[:, 1], "z": position[:, 2], "cos_yaw": np.cos(yaw), "sin_yaw": np.sin(yaw)}


def own_pose(target_c2w: np.ndarray, references: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """What one image can show of its own camera without any other view: its height above the
    ground and its pitch (the horizon's place in the image), and cos / sin of its yaw relative to
    each of the scene's yaw `references` (name → world azimuth per row, synthetic.scene_azimuths) —
    beside `relative_pose`, this tells a latent that relates the target to the first input view
    from one that describes the target alone."""
    t = np.asarray(target_c2w, np.float64)
    own = {"own_height": t[:, 2, 3], "own_pitch": np.arcsin(np.clip(t[:, 2, 2], -1.0, 1.0))}
    for name, azimuth in (references or {}).items():
        yaw = _yaw(t) - np.asarray(azimuth, np.float64)
        own.update({f"own_cos_yaw_{name}": np.cos(yaw), f"own_sin_yaw_{name}": np.sin(yaw)})
    return own


def linear_probe(train_latents: np.ndarray, train_values: dict[str, np.ndarray], test_latents: np.ndarray,
                 test_values: dict[str, np.ndarray]) -> dict[str, float]:
    """R² on test latents of an affine least-squares map from latents to each value, fitted on the
    train latents: how much of it the latent carries, readable without knowing the basis."""
    fit = np.linalg.lstsq(np.c_[train_latents, np.ones(len(train_latents))],
                          np.stack([train_values[k] for k in train_values], 1), rcond=None)[0]
    pred = np.c_[test_latents, np.ones(len(test_latents))] @ fit
    r2 = {}
    for i, name in enumerate(train_values):
        truth = np.asarray(test_values[name], np.float64)
        total = ((truth - truth.mean()) ** 2).sum()
        r2[name] = float(1 - ((pred[:, i] - truth) ** 2).sum() / total) if total > 0 else 0.0
    return r2


def neighbour_probe(train_latents: np.ndarray, train_values: dict[str, np.ndarray], test_latents: np.ndarray,
                    test_values: dict[str, np.ndarray], k: int = 15) -> dict[str, float]:
    """R² on test latents of k-nearest-neighbour regression (standardised latents, mean of the k
    nearest training values): whether the latent carries a value at all, linearly or not — where
    the linear probe reads nothing, this tells a curved latent space from an empty one."""
    train = np.asarray(train_latents, np.float64)
    mean, std = train.mean(0), train.std(0) + 1e-9
    train, test = (train - mean) / std, (np.asarray(test_latents, np.float64) - mean) / std
    nearest = np.concatenate([np.argsort(((rows[:, None] - train[None]) ** 2).sum(-1), 1)[:, :k]
                              for rows in np.array_split(test, max(1, len(test) // 256))])
    r2 = {}
    for name in train_values:
        truth = np.asarray(test_values[name], np.float64)
        pred = np.asarray(train_values[name], np.float64)[nearest].mean(1)
        total = ((truth - truth.mean()) ** 2).sum()
        r2[name] = float(1 - ((pred - truth) ** 2).sum() / total) if total > 0 else 0.0
    return r2


def pair_probe(train_latents: np.ndarray, train_first: np.ndarray, train_values: dict[str, np.ndarray],
               test_latents: np.ndarray, test_first: np.ndarray, test_values: dict[str, np.ndarray]) -> dict[str, float]:
    """R² on test pairs of a linear map from a target's latent, the first input view's latent and
    their outer product to each relative value. Where each latent holds its own view's orientation
    in a frame the scene fixes (its backdrop) rather than one relative to the first view,
    the relative yaw is bilinear in the two — cos(a − b) = cos a·cos b + sin a·sin b — and this reads
    it where the single-latent probe cannot."""
    def features(target, first):
        target, first = np.asarray(target, np.float64), np.asarray(first, np.float64)
        return np.c_[target, first, np.einsum("ni,nj->nij", target, first).reshape(len(target), -1)]

    return linear_probe(features(train_latents, train_first), train_values, features(test_latents, test_first), test_values)


def camera_attributes(kind: str, target_c2w: np.ndarray, first_c2w: np.ndarray,
                      target_camera: np.ndarray | None = None, first_camera: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Ground-truth attributes of target cameras (N, 4, 4) relative to the first input camera (N, 4, 4).

    dome: height (z difference), distance to the scene centre (difference), yaw (wrapped
    difference of viewing azimuth). street: position along the street (x difference), rig
    camera index relative to the first camera's (mod 6), yaw."""
    t, f = np.asarray(target_c2w, np.float64), np.asarray(first_c2w, np.float64)
    yaw = _wrap(_yaw(t) - _yaw(f))
    if kind == "dome":
        return {
            "height": t[:, 2, 3] - f[:, 2, 3],
            "distance": np.linalg.norm(t[:, :3, 3], axis=1) - np.linalg.norm(f[:, :3, 3], axis=1),
            "yaw": yaw,
        }
    if kind == "street":
        if target_camera is None or first_camera is None:
            raise ValueError("street attributes need the rig camera indices")
        return {
            "position": t[:, 0, 3] - f[:, 0, 3],
            "camera": (np.asarray(target_camera) - np.asarray(first_camera)) % 6,
            "yaw": yaw,
        }
    raise ValueError(f"unknown data kind {kind!r}")
