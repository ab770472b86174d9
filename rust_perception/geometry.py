"""Camera and pose conventions shared by the generator, the dataset, the model and the node.

- World frame: right-handed, z up (ROS REP 103). Metres.
- Camera frame: the optical frame of ROS `*_optical_frame` and OpenCV: x right, y down,
  z forward (the viewing direction).
- `cam2world` (4×4): maps a point in the camera's optical frame to the world frame, so its
  rotation columns are the camera's right, down and forward axes in world coordinates and its
  translation is the camera centre.
- Intrinsics `K` (3×3): OpenCV / ROS CameraInfo pinhole. Pixel centres sit at integer
  coordinates: pixel (row i, column j) is the point u=j, v=i, and the image centre of a W×H
  image is ((W-1)/2, (H-1)/2).
- Depth: z-depth along the optical axis (not the ray length), +inf where nothing is hit.
"""

from __future__ import annotations

import numpy as np


def intrinsics_from_fov(height: int, width: int, hfov_deg: float) -> np.ndarray:
    """Pinhole K with square pixels and the principal point at the image centre."""
    fx = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
    return np.array(
        [[fx, 0.0, (width - 1) / 2.0], [0.0, fx, (height - 1) / 2.0], [0.0, 0.0, 1.0]],
        dtype=np.float64,
    )


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """cam2world of a camera at `eye` whose optical axis points at `target`."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    norm = np.linalg.norm(right)
    if norm < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to the up vector")
    right /= norm
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def yaw_pitch_pose(position, yaw: float, pitch: float = 0.0) -> np.ndarray:
    """cam2world of a camera at `position` looking along world yaw (about +z, radians from +x),
    tilted up by `pitch` radians; the image is kept level (no roll)."""
    direction = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    position = np.asarray(position, dtype=np.float64)
    return look_at(position, position + direction)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """(H·W, 2) pixel-centre coordinates (u, v), row-major."""
    v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    return np.stack([u.ravel(), v.ravel()], axis=-1)


def camera_rays(K: np.ndarray, cam2world: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-space ray origins and unit directions through pixel coordinates `uv` (N, 2)."""
    homog = np.concatenate([uv, np.ones((len(uv), 1))], axis=1)
    dirs_cam = homog @ np.linalg.inv(K).T
    dirs = dirs_cam @ cam2world[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origins = np.broadcast_to(cam2world[:3, 3], dirs.shape).copy()
    return origins, dirs


def unproject(uv: np.ndarray, depth: np.ndarray, K: np.ndarray, cam2world: np.ndarray) -> np.ndarray:
    """World points (N, 3) of pixels `uv` (N, 2) with z-depths `depth` (N,)."""
    homog = np.concatenate([uv, np.ones((len(uv), 1))], axis=1)
    points_cam = (homog @ np.linalg.inv(K).T) * depth[:, None]
    return points_cam @ cam2world[:3, :3].T + cam2world[:3, 3]


def project(points: np.ndarray, K: np.ndarray, cam2world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and z-depths (N,) of world points (N, 3) in a camera."""
    world2cam = np.linalg.inv(cam2world)
    points_cam = points @ world2cam[:3, :3].T + world2cam[:3, 3]
    z = points_cam[:, 2]
    uvw = points_cam @ K.T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / uvw[:, 2:3]
    return uv, z


# ------------------------------------------------------------------ torch versions (the models)
def relative_poses(cam2world, reference):
    """Poses (…, V, 4, 4) expressed in the frame of `reference` (…, 4, 4): inv(ref) · pose."""
    import torch

    return torch.linalg.inv(reference)[..., None, :, :] @ cam2world


def rays_from_pixels(cam2world, K, uv):
    """World-space ray origins and unit directions (…, R, 3) for pixel coordinates uv (…, R, 2)
    of cameras cam2world (…, 4, 4) with intrinsics K (…, 3, 3), batched in torch."""
    import torch

    homog = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)
    dirs_cam = homog @ torch.linalg.inv(K).transpose(-1, -2)
    dirs = dirs_cam @ cam2world[..., :3, :3].transpose(-1, -2)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return cam2world[..., None, :3, 3].expand_as(dirs), dirs


def perturb_poses(cam2world, sigma: float, generator=None):
    """Additive pose noise (the paper's σ = 0.1): N(0, σ²) on each position coordinate and a
    rotation by an N(0, σ²)-per-axis rotation vector, applied through the matrix exponential."""
    import torch

    if sigma <= 0:
        return cam2world
    shape = cam2world.shape[:-2]
    noise = torch.randn(*shape, 6, generator=generator, dtype=cam2world.dtype) * sigma
    w = noise[..., 3:]
    zero = torch.zeros_like(w[..., 0])
    skew = torch.stack([zero, -w[..., 2], w[..., 1], w[..., 2], zero, -w[..., 0], -w[..., 1], w[..., 0], zero], -1)
    out = cam2world.clone()
    out[..., :3, :3] = torch.linalg.matrix_exp(skew.view(*shape, 3, 3)) @ cam2world[..., :3, :3]
    out[..., :3, 3] = cam2world[..., :3, 3] + noise[..., :3]
    return out


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with target ≈ s·R·source + t for (N, 3) point sets (Umeyama 1991):
    aligns a structure-from-motion reconstruction, known only up to similarity, to ground truth."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    cov = xt.T @ xs / len(source)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    var_s = (xs**2).sum() / len(source)
    scale = float(np.trace(np.diag(d) @ sign) / var_s) if var_s > 0 else 1.0
    return scale, rotation, mu_t - scale * rotation @ mu_s
