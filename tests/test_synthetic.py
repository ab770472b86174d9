"""The generator: determinism, correct geometry, semantics consistent with geometry, held-out
object families, exact culling, shadows."""

import numpy as np
import pytest
import torch

from rust_perception.data import raycast
from rust_perception.data.generate import generate_dataset
from rust_perception.data.raycast import BOX, CONE, CYLINDER, SOLID, SPHERE, Environment, Primitives, Renderer, \
    render_views
from rust_perception.data.store import DatasetStore
from rust_perception.data.synthetic import SyntheticConfig, class_id, generate_scene, split_families
from rust_perception.geometry import intrinsics_from_fov, look_at, project, unproject, pixel_grid

from conftest import DOME, STREET


def test_same_arguments_same_bytes_different_seed_differs(tmp_path):
    cfg = SyntheticConfig(kind="dome", scenes=3, views=4, size=32, seed=11, shard_scenes=2)
    hashes = []
    for name, c, workers in (("a", cfg, 1), ("b", cfg, 2), ("c", SyntheticConfig(**{**cfg.__dict__, "seed": 12}), 1)):
        store = generate_dataset(c, tmp_path / name, workers=workers, progress=False)
        hashes.append([s["sha256"] for info in store.manifest["splits"].values() for s in info["shards"]])
    assert hashes[0] == hashes[1], "same arguments (serial vs 2 processes) must give identical shards"
    assert not set(hashes[0]) & set(hashes[2]), "another seed must give other scenes"


@pytest.mark.parametrize("cfg", [DOME, STREET], ids=["dome", "street"])
def test_reprojection_agrees_across_views(cfg):
    """Unproject pixels of view A with depth + K + cam2world, project into view B: where the
    point is visible in B (depths agree), label and colour must agree. A wrong convention
    (flipped axis, transposed pose, off-by-half-pixel K) breaks the depth agreement."""
    scene = generate_scene(SyntheticConfig(**{**cfg.__dict__, "size": 64}), "train", 0)
    size = scene["rgb"].shape[1]
    uv = pixel_grid(size, size)
    checked = agreed = same_color = 0
    pairs = [(0, 1), (1, 2), (0, 3), (2, 5)] if cfg.kind == "dome" else [(0, 6), (1, 7), (3, 9), (0, 1)]
    for a, b in pairs:
        depth_a = scene["depth"][a].astype(np.float64).ravel()
        solid = np.isfinite(depth_a)
        pts = unproject(uv[solid], depth_a[solid], scene["intrinsics"][a].astype(np.float64),
                        scene["cam2world"][a].astype(np.float64))
        uv_b, z_b = project(pts, scene["intrinsics"][b].astype(np.float64), scene["cam2world"][b].astype(np.float64))
        px = np.round(uv_b).astype(int)
        inside = (z_b > 0) & (px[:, 0] >= 0) & (px[:, 0] < size) & (px[:, 1] >= 0) & (px[:, 1] < size)
        px, z_b, src = px[inside], z_b[inside], np.flatnonzero(solid)[inside]
        depth_b = scene["depth"][b].astype(np.float64)[px[:, 1], px[:, 0]]
        visible = np.abs(depth_b - z_b) < 0.02 * z_b + 0.05
        checked += inside.sum()
        agreed += visible.sum()
        lab_a = scene["labels"][a].ravel()[src[visible]]
        lab_b = scene["labels"][b][px[visible, 1], px[visible, 0]]
        assert (lab_a == lab_b).mean() > 0.9
        col_a = scene["rgb"][a].reshape(-1, 3)[src[visible]].astype(int)
        col_b = scene["rgb"][b][px[visible, 1], px[visible, 0]].astype(int)
        same_color += (np.abs(col_a - col_b).max(1) < 40).sum()
    assert agreed > 0.3 * checked, f"only {agreed}/{checked} reprojected points land on a matching depth"
    assert same_color > 0.75 * agreed


def test_flipped_convention_fails_reprojection():
    """The check above must be able to fail: with the camera's y axis flipped it does."""
    scene = generate_scene(SyntheticConfig(**{**DOME.__dict__, "size": 64}), "train", 0)
    uv = pixel_grid(64, 64)
    depth = scene["depth"][0].astype(np.float64).ravel()
    solid = np.isfinite(depth)
    wrong = scene["cam2world"][0].astype(np.float64) @ np.diag([1.0, -1.0, 1.0, 1.0])
    pts = unproject(uv[solid], depth[solid], scene["intrinsics"][0].astype(np.float64), wrong)
    uv_b, z_b = project(pts, scene["intrinsics"][1].astype(np.float64), scene["cam2world"][1].astype(np.float64))
    px = np.round(uv_b).astype(int)
    inside = (z_b > 0) & (px >= 0).all(1) & (px < 64).all(1)
    depth_b = scene["depth"][1].astype(np.float64)[px[inside, 1], px[inside, 0]]
    assert (np.abs(depth_b - z_b[inside]) < 0.02 * z_b[inside] + 0.05).mean() < 0.3


@pytest.mark.parametrize("cfg", [DOME, STREET], ids=["dome", "street"])
def test_semantics_agree_with_geometry(cfg):
    scene = generate_scene(cfg, "train", 1)
    depth = scene["depth"].astype(np.float64)
    sky = scene["labels"] == class_id(cfg.kind, "sky")
    assert sky.any() and (~sky).any()
    assert np.isinf(depth[sky]).all(), "sky pixels must have infinite depth"
    assert np.isfinite(depth[~sky]).all() and (depth[~sky] > 0).all()
    flat = ["ground"] if cfg.kind == "dome" else ["road", "road_marking", "terrain"]
    size = cfg.size
    for v in range(cfg.views):
        labels = scene["labels"][v].ravel()
        mask = np.isin(labels, [class_id(cfg.kind, n) for n in flat])
        assert mask.sum() > 0
        pts = unproject(pixel_grid(size, size)[mask], depth[v].ravel()[mask],
                        scene["intrinsics"][v].astype(np.float64), scene["cam2world"][v].astype(np.float64))
        assert np.abs(pts[:, 2]).max() < 0.05 + 2e-3 * depth[v].ravel()[mask].max(), "ground labels off the ground"
        above = ~mask & ~sky[v].ravel()
        pts = unproject(pixel_grid(size, size)[above], depth[v].ravel()[above],
                        scene["intrinsics"][v].astype(np.float64), scene["cam2world"][v].astype(np.float64))
        assert (pts[:, 2] > -0.05).all(), "objects below the ground plane"


def test_street_rig_layout():
    scene = generate_scene(STREET, "train", 0)
    cams, positions = scene["view_camera"], scene["view_position"]
    assert list(cams[:6]) == list(range(6)) and set(positions) == {0, 1}
    forward = scene["cam2world"][:6, :3, 2]
    yaws = np.degrees(np.arctan2(forward[:, 1], forward[:, 0]))
    steps = (np.diff(yaws) + 180) % 360 - 180
    assert np.allclose(steps, 60.0, atol=1e-3), "rig cameras must be 60° apart"
    heights = scene["cam2world"][:, 2, 3]
    assert np.all(np.abs(heights - 2.5) < 0.2)
    assert set(np.unique(scene["labels"])) >= {class_id("street", n) for n in ("sky", "road", "building")}


def test_test_split_objects_are_held_out(dome_dir):
    store = DatasetStore(dome_dir)
    used = {split: set() for split in store.splits}
    for split in store.splits:
        for i in range(store.num_scenes(split)):
            fams = store.scene(split, i)["families"]
            used[split] |= set(fams[fams >= 0].tolist())
    assert used["train"] and used["test"]
    assert not used["train"] & used["test"]
    assert used["test"] <= set(split_families("test").tolist())


def _single(shape, half, center=(0.0, 0.0, 10.0)):
    return Primitives(
        shape=np.array([shape]), rotation=np.eye(3)[None], center=np.array([center]), half_size=np.array([half]),
        texture=np.array([SOLID]), color_a=np.array([[0.8, 0.2, 0.2]]), color_b=np.array([[0.8, 0.2, 0.2]]),
        tex_period=np.array([1.0]), label=np.array([2]),
    )


def _env(sun=(0.0, 0.0, 1.0)):
    return Environment(ground="tiles", ground_colors=np.array([[0.6] * 3, [0.6] * 3]), ground_period=1.0,
                       ground_label=1, sun_dir=np.array(sun, dtype=float), sky_horizon=np.array([0.8, 0.85, 0.9]),
                       sky_zenith=np.array([0.3, 0.5, 0.8]))


@pytest.mark.parametrize(
    "shape,half,expected",
    [(BOX, (1.0, 0.5, 0.5), 4.0), (SPHERE, (1.0, 1.0, 1.0), 4.0), (CYLINDER, (0.5, 0.5, 1.0), 4.5),
     (CONE, (1.0, 1.0, 1.0), 4.5)],  # cone radius at its mid-height is 0.5 × 1
)
def test_primitive_distances(shape, half, expected):
    """A camera 5 m from the object's centre, looking at it: the central pixel's depth is the
    distance to the analytic surface."""
    size = 33 - 1  # even size: average the 4 central pixels
    cam = look_at((5.0, 0.0, 10.0), (0.0, 0.0, 10.0))
    K = intrinsics_from_fov(size, size, 30.0)
    _, labels, depth = render_views(Renderer(_single(shape, half), _env()), cam[None], K[None], size, size)
    centre = depth[0, size // 2 - 1 : size // 2 + 1, size // 2 - 1 : size // 2 + 1].astype(np.float64)
    assert np.allclose(centre, expected, atol=0.02)
    near = depth[0].astype(np.float64) < 8.0  # (the ground shows far below the horizon)
    assert near.sum() > 20 and (labels[0][near] == 2).all()


def test_hard_shadow_beside_a_floating_box():
    """A box floats 2 m up, the sun is tilted towards +x: its shadow falls on the ground near
    x = -1 (dark), while the ground near x = +2 is lit."""
    cam = look_at((0.01, 0.0, 8.0), (0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0))
    K = intrinsics_from_fov(64, 64, 60.0)
    objects = _single(BOX, (0.5, 0.5, 0.5), center=(0.0, 0.0, 2.0))
    sun = np.array([0.5, 0.0, 1.0]) / np.linalg.norm([0.5, 0.0, 1.0])
    rgb, labels, depth = render_views(Renderer(objects, _env(sun)), cam[None], K[None], 64, 64)
    pts = unproject(pixel_grid(64, 64), depth[0].astype(np.float64).ravel(), K, cam).reshape(64, 64, 3)
    ground = labels[0] == 1
    brightness = rgb[0].astype(float).mean(-1)
    in_shadow = ground & (np.abs(pts[..., 0] + 1.0) < 0.3) & (np.abs(pts[..., 1]) < 0.3)
    lit = ground & (np.abs(pts[..., 0] - 2.0) < 0.3) & (np.abs(pts[..., 1]) < 0.3)
    assert in_shadow.sum() > 5 and lit.sum() > 5
    assert brightness[in_shadow].mean() < 0.6 * brightness[lit].mean()


@pytest.mark.parametrize("cfg", [DOME, STREET], ids=["dome", "street"])
def test_culling_is_exact(cfg, monkeypatch):
    """Testing only the culled candidate objects renders exactly what testing all objects does."""
    culled = generate_scene(cfg, "train", 2)
    everything = lambda self, o, *rest: torch.ones(o.shape[0], len(self.shape), dtype=torch.bool)  # noqa: E731
    monkeypatch.setattr(raycast.Renderer, "_cone_candidates", everything)
    monkeypatch.setattr(raycast.Renderer, "_sweep_candidates", everything)
    brute = generate_scene(cfg, "train", 2)
    for key in ("rgb", "labels", "depth"):
        np.testing.assert_array_equal(culled[key], brute[key])
