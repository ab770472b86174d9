"""The dome backdrop switch (SyntheticConfig.backdrop): "plain" draws exactly what it drew before
the switch existed; "panorama" and "waves" make sky and ground depend on viewing azimuth, as
MultiShapeNet's environment maps do, without touching the scene's main random stream; street
refuses them."""

import json

import numpy as np
import pytest
import torch

from rust_perception.config import load_config, to_dict
from rust_perception.data.generate import generate_dataset
from rust_perception.data.raycast import SOLID, SPHERE, Environment, Primitives, Renderer, _ground_waves, render_views
from rust_perception.data.synthetic import BACKDROP_STREAM, SyntheticConfig, class_id, generate_scene, \
    panorama_backdrop, scene_azimuths, scene_rng, waves_backdrop
from rust_perception.errors import ConfigError
from rust_perception.geometry import intrinsics_from_fov, look_at
from rust_perception.latent_space import own_pose

from conftest import ROOT

LEARN = load_config(SyntheticConfig, ROOT / "config" / "data_dome_learn.yaml")
PANORAMA = load_config(SyntheticConfig, ROOT / "config" / "data_dome_learn_panorama.yaml")
WAVES = load_config(SyntheticConfig, ROOT / "config" / "data_dome_learn_waves.yaml")

# Scenes of config/data_dome_learn.yaml as generated before the switch existed (data/dome_learn and
# the committed learning runs were made from these): families, view 0's and view 9's camera
# centres, and the sum of all RGB bytes of the scene's 10 views (4.3M; a backdrop that varied with
# azimuth moves it by tens of thousands — the tolerance only absorbs float rounding across CPUs).
PINNED = {
    ("train", 0): ([41, 32, 17], [[-2.275910, 0.583666, 3.245528], [-2.993854, -1.195720, 2.091880]], 4262873),
    ("test", 3): ([54], [[-1.460404, -1.842454, 3.839754], [-1.984446, 3.480386, 2.224541]], 4504369),
}


@pytest.mark.parametrize("split,index", list(PINNED))
def test_plain_default_draws_what_it_drew_before(split, index):
    assert LEARN.backdrop is None and SyntheticConfig().backdrop is None
    families, centres, rgb_sum = PINNED[(split, index)]
    scene = generate_scene(LEARN, split, index)
    assert scene["families"][: len(families)].tolist() == families and (scene["families"][len(families):] == -1).all()
    np.testing.assert_allclose(scene["cam2world"][[0, 9], :3, 3], centres, atol=1e-5)
    assert abs(int(scene["rgb"].astype(np.int64).sum()) - rgb_sum) <= 200


def test_plain_spelled_out_is_the_default_and_old_manifests_still_match(tmp_path):
    """`backdrop: plain` is stored as None, so a dataset whose manifest predates the key resumes."""
    assert SyntheticConfig(backdrop="plain") == SyntheticConfig()
    assert to_dict(SyntheticConfig())["backdrop"] is None
    cfg = SyntheticConfig(kind="dome", scenes=2, views=2, size=32, test_fraction=0.0, min_objects=1, max_objects=2)
    out = tmp_path / "data"
    generate_dataset(cfg, out, workers=1, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["generator"]["backdrop"]  # as written before the switch existed
    (out / "manifest.json").write_text(json.dumps(manifest))
    generate_dataset(SyntheticConfig(**{**cfg.__dict__, "backdrop": "plain"}), out, workers=1, progress=False)


@pytest.mark.parametrize("backdrop", ["panorama", "waves"])
def test_backdrop_only_repaints_the_backdrop(backdrop):
    """Same objects, cameras, labels and depth as plain (its randomness is a separate stream, and
    the backdrop stays sky/ground); object pixels identical, backdrop pixels differ."""
    cfg = {"panorama": PANORAMA, "waves": WAVES}[backdrop]
    assert cfg.backdrop == backdrop
    plain, painted = generate_scene(LEARN, "train", 5), generate_scene(cfg, "train", 5)
    for key in ("cam2world", "labels", "depth", "families"):
        np.testing.assert_array_equal(plain[key], painted[key])
    objects = plain["labels"] >= class_id("dome", "box")
    np.testing.assert_array_equal(plain["rgb"][objects], painted["rgb"][objects])
    diff = np.abs(plain["rgb"].astype(int) - painted["rgb"].astype(int)).max(-1)
    assert (diff[~objects] > 4).mean() > 0.5
    assert generate_scene(cfg, "train", 6)["rgb"].tobytes() != painted["rgb"].tobytes()


def test_waves_fade_out_and_favour_no_direction():
    """The ground waves' contrast fades with distance from the centre (1 / (1 + r²/R²)), and over
    many scenes no world direction is lighter than another — unlike the panorama, whose ground is
    lighter along its axis in every scene."""
    scenes = [waves_backdrop(scene_rng(0, "train", i, BACKDROP_STREAM), 1.0) for i in range(400)]
    radius = scenes[0]["ground_wave_radius"]
    # ground points along 8 world directions at half the fade radius, and far out
    az = np.arange(8) * np.pi / 4
    ring = lambda r: torch.tensor(np.c_[r * np.cos(az), r * np.sin(az), np.zeros(8)], dtype=torch.float32)  # noqa: E731
    near, far = [], []
    for fields in scenes:
        env = Environment(**{**_plain_env().__dict__, **fields})
        near.append(_ground_waves(ring(radius / 2), env).numpy())
        far.append(_ground_waves(ring(30 * radius), env).numpy())
    near, far = np.array(near), np.array(far)  # (scenes, directions, RGB)
    assert np.abs(far - 1).max() < 0.5 / 900 * 1.01  # contrast ≤ Σ|tint| ≤ 0.48, faded by 1 / (1 + 900)
    assert near.std(0).min() > 0.05  # near the scene the waves show
    # the mean factor in every direction is 1 within sampling error (no side lighter across scenes)
    assert np.abs(near.mean(0) - 1).max() < 4 * near.std(0).max() / np.sqrt(len(scenes))


def _views(env: Environment, azimuths_deg, elevation_deg=12.0, distance=4.0, size=32):
    """Views of the backdrop alone (the one object is buried under the ground) from cameras at
    equal elevation and distance."""
    empty = Primitives(shape=np.array([SPHERE]), rotation=np.eye(3)[None], center=np.array([[0.0, 0.0, -10.0]]),
                       half_size=np.full((1, 3), 0.1), texture=np.array([SOLID]), color_a=np.full((1, 3), 0.5),
                       color_b=np.full((1, 3), 0.5), tex_period=np.ones(1),
                       label=np.array([class_id("dome", "sphere")]))
    el = np.deg2rad(elevation_deg)
    cams = np.array([look_at(distance * np.array([np.cos(el) * np.cos(a), np.cos(el) * np.sin(a), np.sin(el)]),
                             np.zeros(3)) for a in np.deg2rad(azimuths_deg)])
    K = np.broadcast_to(intrinsics_from_fov(size, size, 55.0), (len(cams), 3, 3))
    return render_views(Renderer(empty, env), cams, K, size, size)


def _plain_env():
    # one tile colour and the sun overhead: nothing in a plain backdrop depends on azimuth
    return Environment(ground="tiles", ground_colors=np.array([[0.6, 0.6, 0.55]] * 2), ground_period=1.0,
                       ground_label=1, sun_dir=np.array([0.0, 0.0, 1.0]), sky_horizon=np.array([0.82, 0.87, 0.93]),
                       sky_zenith=np.array([0.35, 0.55, 0.85]))


@pytest.mark.parametrize("backdrop", [panorama_backdrop, waves_backdrop], ids=["panorama", "waves"])
def test_backdrop_depends_on_azimuth(backdrop):
    plain = _plain_env()
    pano = Environment(**{**plain.__dict__, **backdrop(scene_rng(0, "train", 0, BACKDROP_STREAM), 0.3)})
    rgb, labels, _ = _views(plain, [0.0, 120.0])
    assert (labels == 0).any(axis=(1, 2)).all() and (labels == 1).any(axis=(1, 2)).all(), "views see sky and ground"
    np.testing.assert_array_equal(rgb[0], rgb[1])  # the control: a plain backdrop is the same all round
    rgb, labels_p, _ = _views(pano, [0.0, 120.0])
    np.testing.assert_array_equal(labels_p, labels)  # still sky and ground
    assert np.abs(rgb[0].astype(int) - rgb[1].astype(int)).mean() > 5
    # within one view: the sky's bottom row and the ground vary across the image
    row = int(np.flatnonzero((labels[0] == 0).all(1))[-1])
    assert np.ptp(rgb[0, row].astype(int), axis=0).max() > 3, "sky near the horizon varies with azimuth"
    ground = labels[0] == 1
    cols = [rgb[0][:, c][ground[:, c]].astype(float).mean(0) for c in (0, 31)]
    assert np.abs(cols[0] - cols[1]).max() > 3, "ground colour varies across the view"


def test_backdrops_are_refused_where_they_do_not_apply():
    for backdrop in ("panorama", "waves"):
        with pytest.raises(ConfigError, match=f"backdrop='{backdrop}' is not allowed for street"):
            SyntheticConfig(kind="street", backdrop=backdrop)
    SyntheticConfig(kind="street", backdrop="plain")
    with pytest.raises(ConfigError, match="backdrop='hdri' is not allowed"):
        SyntheticConfig(backdrop="hdri")


def test_scene_azimuths_are_the_references_the_scene_shows():
    """The sun's azimuth is the one that lights the scene; the panorama's is the side where its
    ground is lighter; own_pose turns them into each view's yaw relative to them."""
    assert set(scene_azimuths(LEARN, "test", 3)) == {"sun"}
    assert set(scene_azimuths(WAVES, "test", 3)) == {"sun"}  # its ground shows no side of the scene
    assert scene_azimuths(SyntheticConfig(kind="street"), "test", 3) == {}
    refs = scene_azimuths(PANORAMA, "test", 3)
    assert set(refs) == {"sun", "ground_tint"} and refs["sun"] == scene_azimuths(LEARN, "test", 3)["sun"]
    # the reference is the direction in which the ground gets lighter (scene 11: its tint is darker
    # along +ground_axis): render the ground alone from the side opposite it and from its side
    backdrop = panorama_backdrop(scene_rng(PANORAMA.seed, "test", 11, BACKDROP_STREAM), 1.0)
    assert backdrop["ground_tint"].sum() < 0
    env = Environment(**{**_plain_env().__dict__, **backdrop})
    ref = scene_azimuths(PANORAMA, "test", 11)["ground_tint"]
    rgb, labels, _ = _views(env, np.rad2deg([ref + np.pi, ref]), elevation_deg=40.0)
    ground = labels == 1
    towards, away = (rgb[k][ground[k]].astype(float).mean() for k in (0, 1))
    assert towards > away + 4, (towards, away)  # a camera on the far side looks towards the lighter ground
    assert scene_azimuths(PANORAMA, "test", 4)["ground_tint"] != pytest.approx(refs["ground_tint"])
    # a camera looking along the tint axis has yaw 0 relative to it, one looking across it ±90°
    cams = np.array([look_at(-4.0 * np.array([np.cos(a), np.sin(a), 0.3]), np.zeros(3))
                     for a in (refs["ground_tint"], refs["ground_tint"] + np.pi / 2)])
    own = own_pose(cams, {"ground_tint": np.full(2, refs["ground_tint"])})
    np.testing.assert_allclose(own["own_cos_yaw_ground_tint"], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(np.abs(own["own_sin_yaw_ground_tint"]), [0.0, 1.0], atol=1e-9)
    assert set(own_pose(cams)) == {"own_height", "own_pitch"}
