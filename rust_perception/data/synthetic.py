"""Procedural multi-camera scenes: the embedded default dataset (docs/data.md "Synthetic multi-camera scenes").

Two kinds, both rendered by `raycast.Renderer`:
- `dome` (MultiShapeNet-like): 16–32 textured primitives on a tiled ground under a sky; cameras
  on the upper hemisphere at varying distance, looking at the scene centre. Objects come from a
  fixed catalogue of *families* (shape, proportions, texture, palette); every fifth family is
  held out for the test split, as MSN holds out its ShapeNet objects. `backdrop: panorama` makes
  the sky near the horizon and the ground colour vary smoothly with azimuth, as MSN's
  environment-map backgrounds do (yaw cues in every view); `backdrop: waves` does so with no side
  of the scene but the sun's that one view can recognise; the default backdrop does not.
- `street` (Street-View-like): a road with markings between sidewalks, façades with windows,
  parked and driving cars, poles and trees; a 6-camera rig (yaws 60° apart, fixed height) drives
  along the street and a scene's views are its captures at several positions, with small jitter.

Each scene draws its randomness from `SeedSequence([seed, split, index])`, so scenes are
independent of each other, of shard boundaries and of the order they are made in.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from transforms3d.euler import euler2mat

from ..config import require
from ..geometry import intrinsics_from_fov, look_at, yaw_pitch_pose
from .raycast import (
    BOX, CHECKER, CONE, CONE_SLOPE, CYLINDER, DOTS, SOLID, SPHERE, STRIPES, WINDOWS, Environment, Primitives,
    Renderer, render_views,
)
from .store import split_sizes

KINDS = ("dome", "street")
# dome backgrounds: "plain" (sky a function of elevation only, uniform ground), "panorama" (sky
# and ground also vary smoothly with azimuth, as MultiShapeNet's environment maps do: yaw cues in
# every view; its ground is lighter on one side, which one view shows) or "waves" (the panorama's
# sky over a ground of a few random plane waves: yaw cues in every view, but no side of the scene
# besides the sun's that one view can recognise, so a view's yaw is known only against other views').
# `backdrop: null` in older manifests and configs means "plain".
BACKDROPS = ("plain", "panorama", "waves")
BACKDROP_STREAM = 1  # extra SeedSequence word: the backdrop's own random stream (plain draws stay as they were)
PANORAMA_HARMONICS = 3
GROUND_WAVES = 4
SPLITS = ("train", "test")
RIG_CAMERAS = 6
DEFAULT_VIEWS = {"dome": 10, "street": 18}
DEFAULT_HFOV = {"dome": 55.0, "street": 75.0}
MAX_FAMILIES_PER_SCENE = 32
FAMILIES_PER_SHAPE = 16
HELD_OUT_EVERY = 5  # families with id % 5 == 4 appear only in test scenes

# (name, RGB colour for overlays); the index is the label value stored per pixel.
CLASSES = {
    "dome": [
        ("sky", (70, 130, 180)), ("ground", (152, 251, 152)), ("box", (220, 20, 60)),
        ("sphere", (255, 215, 0)), ("cylinder", (0, 0, 142)), ("cone", (255, 127, 0)),
    ],
    "street": [  # Cityscapes names and colours
        ("sky", (70, 130, 180)), ("road", (128, 64, 128)), ("road_marking", (255, 255, 255)),
        ("sidewalk", (244, 35, 232)), ("terrain", (152, 251, 152)), ("building", (70, 70, 70)),
        ("car", (0, 0, 142)), ("pole", (153, 153, 153)), ("vegetation", (107, 142, 35)),
    ],
}


# Classes scored as "object pixels" (issue: a model can beat a constant colour without placing a
# single object, so evaluations report PSNR on these pixels too), and the background class whose
# colour the background oracle paints over them.
OBJECT_CLASSES = {"dome": ("box", "sphere", "cylinder", "cone"), "street": ("car", "pole", "vegetation")}
GROUND_CLASS = {"dome": "ground", "street": "road"}


def class_id(kind: str, name: str) -> int:
    return [n for n, _ in CLASSES[kind]].index(name)


@dataclass(frozen=True)
class SyntheticConfig:
    """What `trainer/make_dataset.py` generates. `views`/`hfov_deg` of 0 mean the kind's default."""

    kind: str = "dome"
    scenes: int = 200
    views: int = 0
    size: int = 64
    seed: int = 0
    test_fraction: float = 0.1
    shard_scenes: int = 64
    hfov_deg: float = 0.0
    # dome only: objects per scene, and whether objects/ground are textured. Fewer, plain objects
    # ("easy" dome) is what a CPU-sized model can learn in hours — see config/data_dome_easy.yaml.
    min_objects: int = 16
    max_objects: int = 32
    textures: bool = True
    # dome only: "panorama" / "waves" make the sky near the horizon and the ground colour vary with
    # azimuth (see BACKDROPS). The plain default is stored as None, so manifests written before
    # this switch existed (which lack the key) still match their config when generation resumes.
    backdrop: str | None = None

    def __post_init__(self):
        require(self.kind in KINDS, f"kind={self.kind!r} is not allowed (choose from {', '.join(KINDS)})")
        require(self.backdrop is None or self.backdrop in BACKDROPS,
                f"backdrop={self.backdrop!r} is not allowed (choose from {', '.join(BACKDROPS)})")
        if self.backdrop == "plain":
            object.__setattr__(self, "backdrop", None)
        require(self.kind == "dome" or self.backdrop is None,
                f"backdrop={self.backdrop!r} is not allowed for {self.kind} scenes (only dome scenes have a "
                "backdrop; street scenes get their yaw cues from the street itself)")
        if self.views == 0:
            object.__setattr__(self, "views", DEFAULT_VIEWS[self.kind])
        if self.hfov_deg == 0:
            object.__setattr__(self, "hfov_deg", DEFAULT_HFOV[self.kind])
        require(self.scenes >= 1, f"scenes={self.scenes} is not allowed (must be an integer >= 1)")
        require(2 <= self.views <= 256, f"views={self.views} is not allowed (must be between 2 and 256)")
        require(
            self.kind != "street" or self.views % RIG_CAMERAS == 0,
            f"views={self.views} is not allowed for street scenes (must be a multiple of {RIG_CAMERAS}: "
            f"the rig captures {RIG_CAMERAS} cameras per position)",
        )
        require(
            self.size % 8 == 0 and 32 <= self.size <= 512,
            f"size={self.size} is not allowed (must be a multiple of 8 between 32 and 512)",
        )
        require(0.0 <= self.test_fraction < 1.0, f"test_fraction={self.test_fraction} is not allowed (must be in [0, 1))")
        require(self.shard_scenes >= 1, f"shard_scenes={self.shard_scenes} is not allowed (must be >= 1)")
        require(10.0 <= self.hfov_deg <= 120.0, f"hfov_deg={self.hfov_deg} is not allowed (must be in [10, 120])")
        require(
            1 <= self.min_objects <= self.max_objects <= MAX_FAMILIES_PER_SCENE,
            f"min_objects={self.min_objects}, max_objects={self.max_objects} are not allowed "
            f"(need 1 <= min_objects <= max_objects <= {MAX_FAMILIES_PER_SCENE})",
        )
        require(0 <= self.seed < 2**32, f"seed={self.seed} is not allowed (must be in [0, 2**32))")

    def split_sizes(self) -> dict[str, int]:
        return split_sizes(self.scenes, self.test_fraction)


# --------------------------------------------------------------------------------------------
# dome
@dataclass(frozen=True)
class Family:
    shape: int
    proportions: tuple[float, float, float]
    texture: int
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    period: float


def _hsv(h, s, v):
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


@lru_cache(maxsize=1)
def object_families() -> tuple[Family, ...]:
    """The fixed catalogue of object families (independent of the dataset seed)."""
    rng = np.random.default_rng(20231122)
    families = []
    for shape in (BOX, SPHERE, CYLINDER, CONE):
        for _ in range(FAMILIES_PER_SHAPE):
            if shape == BOX:
                prop = rng.uniform(0.35, 1.0, 3)
            elif shape == SPHERE:
                prop = np.array([1.0, 1.0, rng.uniform(0.6, 1.3)])
            else:
                r = rng.uniform(0.35, 1.0)
                prop = np.array([r, r, rng.uniform(0.5, 1.2)])
            prop = prop / prop.max()
            hue = rng.uniform()
            families.append(
                Family(
                    shape=shape,
                    proportions=tuple(float(p) for p in prop),
                    texture=int(rng.choice([SOLID, CHECKER, STRIPES, DOTS])),
                    color_a=_hsv(hue, rng.uniform(0.4, 0.9), rng.uniform(0.55, 0.95)),
                    color_b=_hsv(hue + rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.95)),
                    period=float(rng.uniform(0.12, 0.3)),
                )
            )
    return tuple(families)


def split_families(split: str) -> np.ndarray:
    ids = np.arange(len(object_families()))
    held_out = ids % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
    return ids[held_out] if split == "test" else ids[~held_out]


def _lowest_point(shape: int, rot: np.ndarray, half: np.ndarray) -> float:
    """Lowest world z of an object centred at the origin (so it can rest on the ground)."""
    r2 = rot[2]
    if shape == BOX:
        return -float(np.abs(r2 * half).sum())
    if shape == SPHERE:
        return -float(np.sqrt(((r2 * half) ** 2).sum()))
    rim = half[0] * float(np.hypot(r2[0], r2[1]))
    if shape == CYLINDER:
        return -(abs(r2[2]) * half[2] + rim)
    rim *= 2 * CONE_SLOPE  # the cone's base radius in object units
    return min(r2[2] * half[2], -r2[2] * half[2] - rim)


def _place_disc(rng, radii: np.ndarray, area_radius: float, tries: int = 60) -> np.ndarray:
    """Rejection-sample non-overlapping footprints in a disc; overlap is allowed after `tries`."""
    placed: list[np.ndarray] = []
    for r in radii:
        for attempt in range(tries):
            rho, phi = area_radius * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            xy = np.array([rho * np.cos(phi), rho * np.sin(phi)])
            if all(np.linalg.norm(xy - p[:2]) >= r + p[2] for p in placed) or attempt == tries - 1:
                placed.append(np.array([xy[0], xy[1], r]))
                break
    return np.array(placed)[:, :2]


def dome_scene(rng: np.random.Generator, split: str, cfg: SyntheticConfig):
    """Objects resting on the ground in a disc whose area grows with `max_objects` (constant
    density); without `textures`, objects are solid and the ground is one colour."""
    catalogue = object_families()
    family_ids = rng.choice(split_families(split), size=int(rng.integers(cfg.min_objects, cfg.max_objects + 1)))
    n = len(family_ids)
    rots, halves, shapes = [], [], []
    for fid in family_ids:
        fam = catalogue[fid]
        half = rng.uniform(0.28, 0.6) * np.array(fam.proportions)
        tilt = rng.uniform(0, np.pi / 2) if (fam.shape in (BOX, CYLINDER) and rng.uniform() < 0.2) else 0.0
        rots.append(euler2mat(tilt, 0.0, rng.uniform(0, 2 * np.pi), "sxyz"))
        halves.append(half)
        shapes.append(fam.shape)
    footprint = np.array([np.linalg.norm(h[:2]) for h in halves])
    xy = _place_disc(rng, footprint, area_radius=3.5 * dome_scale(cfg))
    centers = np.array([[x, y, -_lowest_point(s, r, h)] for (x, y), s, r, h in zip(xy, shapes, rots, halves)])
    jitter = lambda c: np.clip(np.array(c) + rng.normal(0, 0.03, 3), 0, 1)  # noqa: E731
    objects = Primitives(
        shape=np.array(shapes),
        rotation=np.array(rots),
        center=centers,
        half_size=np.array(halves),
        texture=np.array([catalogue[f].texture if cfg.textures else SOLID for f in family_ids]),
        color_a=np.array([jitter(catalogue[f].color_a) for f in family_ids]),
        color_b=np.array([jitter(catalogue[f].color_b) for f in family_ids]),
        tex_period=np.array([catalogue[f].period for f in family_ids]),
        label=np.array([class_id("dome", ("box", "sphere", "cylinder", "cone")[s]) for s in shapes]),
    )
    tone = rng.uniform()
    tiles = np.array([_hsv(tone, 0.15, rng.uniform(0.55, 0.75)), _hsv(tone, 0.2, rng.uniform(0.35, 0.5))])
    env = Environment(
        ground="tiles",
        ground_colors=tiles if cfg.textures else tiles[[0, 0]],
        ground_period=float(rng.uniform(0.8, 2.0)),
        ground_label=class_id("dome", "ground"),
        sun_dir=_sun(rng, 35, 70),
        sky_horizon=_jitter_color(rng, (0.82, 0.87, 0.93)),
        sky_zenith=_jitter_color(rng, (0.35, 0.55, 0.85)),
    )
    padded = np.full(MAX_FAMILIES_PER_SCENE, -1, dtype=np.int16)
    padded[:n] = family_ids
    return objects, env, padded


def sky_harmonics(rng: np.random.Generator) -> np.ndarray:
    """(H, 2, 3) RGB cos / sin coefficients of azimuth harmonics 1..H for the sky near the horizon
    ("distant hills"), smaller for higher harmonics."""
    h = np.arange(1, PANORAMA_HARMONICS + 1)[:, None, None]
    return rng.normal(0.0, 0.12, (PANORAMA_HARMONICS, 2, 3)) / h


def panorama_backdrop(rng: np.random.Generator, scale: float) -> dict:
    """Environment fields of a "panorama" backdrop: a few random low harmonics of azimuth added to
    the sky near the horizon (coloured "distant hills", ~±0.2), and the ground tinted up to ~±40%
    along a random world direction over `scale`·6 m (tanh: the far ground on either side saturates,
    so the horizon carries the cue too). Low frequencies only — the views are 32 px."""
    harmonics = sky_harmonics(rng)
    angle = rng.uniform(0, 2 * np.pi)
    hue = rng.normal(0.0, 1.0, 3)
    # a colour part (random RGB direction) and a shared brightness part: one side lighter, the other darker
    tint = rng.uniform(0.15, 0.25) * hue / np.linalg.norm(hue) + rng.choice([-1.0, 1.0]) * 0.15
    return {
        "sky_harmonics": harmonics,
        "sky_band": 0.3,
        "ground_tint": tint,
        "ground_axis": np.array([np.cos(angle), np.sin(angle)]),
        "ground_scale": 6.0 * scale,
    }


def waves_backdrop(rng: np.random.Generator, scale: float) -> dict:
    """Environment fields of a "waves" backdrop: the panorama's sky harmonics (the same draw) and,
    on the ground, GROUND_WAVES plane waves of random direction, wavelength (5–10 m × `scale`),
    phase and colour (an RGB tint of norm 0.12 each), their contrast × 1 / (1 + r² / (8 m ×
    `scale`)²) at r from the centre (far out 32 px views would alias them): alike in every
    direction across scenes, so no side of the scene shows in one view as the panorama's lighter
    ground does (the sun still does)."""
    harmonics = sky_harmonics(rng)
    angle = rng.uniform(0, 2 * np.pi, GROUND_WAVES)
    wavelength = rng.uniform(5.0, 10.0, GROUND_WAVES) * scale
    tint = rng.normal(0.0, 1.0, (GROUND_WAVES, 3))
    return {
        "sky_harmonics": harmonics,
        "sky_band": 0.3,
        "ground_waves": (2 * np.pi / wavelength)[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1),
        "ground_wave_phase": rng.uniform(0, 2 * np.pi, GROUND_WAVES),
        "ground_wave_tint": 0.12 * tint / np.linalg.norm(tint, axis=1, keepdims=True),
        "ground_wave_radius": 8.0 * scale,
    }


BACKDROP_FIELDS = {"panorama": panorama_backdrop, "waves": waves_backdrop}  # backdrop → its Environment fields


def scene_azimuths(cfg: SyntheticConfig, split: str, index: int) -> dict[str, float]:
    """World azimuths of the yaw references a dome scene shows — the sun (object shading, shadows,
    its glow in the sky) and a panorama's lighter ground side — so a probe can ask whether a
    latent pose holds its view's yaw relative to one of them ({} for street scenes: their
    reference is the street itself)."""
    if cfg.kind != "dome":
        return {}
    _, env, _ = dome_scene(scene_rng(cfg.seed, split, index), split, cfg)
    azimuths = {"sun": float(np.arctan2(env.sun_dir[1], env.sun_dir[0]))}
    if cfg.backdrop == "panorama":
        backdrop = panorama_backdrop(scene_rng(cfg.seed, split, index, BACKDROP_STREAM), dome_scale(cfg))
        # the tint's brightness part (±0.45 summed over RGB) outweighs its colour part (|sum| ≤ 0.44),
        # so the sign of its sum says which way along the axis the ground gets lighter
        axis = backdrop["ground_axis"] * np.sign(backdrop["ground_tint"].sum())
        azimuths["ground_tint"] = float(np.arctan2(axis[1], axis[0]))
    return azimuths


def dome_scale(cfg: SyntheticConfig) -> float:
    """Radius of the object disc relative to the full dome's 3.5 m: constant object density."""
    return float(np.sqrt(cfg.max_objects / MAX_FAMILIES_PER_SCENE))


def dome_cameras(rng: np.random.Generator, views: int, scale: float = 1.0):
    """Cameras on the upper hemisphere at varying distance, looking near the centre; a smaller
    object disc (`scale` < 1) brings them closer by √scale, so objects fill more of the view."""
    poses = []
    for _ in range(views):
        azimuth, elevation = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(20, 65))
        distance = rng.uniform(5.5, 9.0) * np.sqrt(scale)
        eye = distance * np.array(
            [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
        )
        target = np.array([rng.normal(0, 0.3), rng.normal(0, 0.3), rng.uniform(0.0, 0.5)])
        poses.append(look_at(eye, target))
    return np.array(poses), np.zeros(views, np.int16) - 1, np.zeros(views, np.int16) - 1


# --------------------------------------------------------------------------------------------
# street
def _sun(rng, min_elev_deg, max_elev_deg):
    az, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(min_elev_deg, max_elev_deg))
    return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def _jitter_color(rng, base, amount=0.05):
    return np.clip(np.array(base) + rng.normal(0, amount, 3), 0, 1)


def _boxes(items, kind_label, texture, period):
    """Axis-aligned (yaw-only) primitives from (shape, centre, half, yaw, color_a, color_b)."""
    return Primitives(
        shape=np.array([i[0] for i in items]),
        rotation=np.array([euler2mat(0, 0, i[3], "sxyz") for i in items]).reshape(-1, 3, 3),
        center=np.array([i[1] for i in items]).reshape(-1, 3),
        half_size=np.array([i[2] for i in items]).reshape(-1, 3),
        texture=np.full(len(items), texture),
        color_a=np.array([i[4] for i in items]).reshape(-1, 3),
        color_b=np.array([i[5] for i in items]).reshape(-1, 3),
        tex_period=np.full(len(items), period, dtype=np.float64) if np.isscalar(period) else np.array(period),
        label=np.full(len(items), kind_label),
    )


def street_scene(rng: np.random.Generator, length: float):
    """A street segment along +x from 0 to `length` (plus margins), centred on y = 0."""
    road = rng.uniform(3.0, 5.0)  # half width
    walk = rng.uniform(1.5, 3.0)
    lo, hi = -40.0, length + 40.0
    cid = lambda name: class_id("street", name)  # noqa: E731
    parts = []
    grey = rng.uniform(0.55, 0.75)
    parts.append(
        _boxes(
            [(BOX, (0.5 * (lo + hi), s * (road + walk / 2), 0.075), (0.5 * (hi - lo), walk / 2, 0.075), 0.0,
              (grey, grey, grey * 0.97), (grey * 0.85,) * 3) for s in (-1, 1)],
            cid("sidewalk"), CHECKER, 0.6,
        )
    )
    buildings, periods = [], []
    for side in (-1, 1):
        x = lo + rng.uniform(0, 5)
        while x < hi:
            width, depth, height = rng.uniform(6, 16), rng.uniform(6, 12), rng.uniform(6, 22)
            front = road + walk + rng.uniform(0, 1.5)
            facade = _hsv(rng.uniform(0.0, 0.15), rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.9))
            window = _hsv(rng.uniform(0.55, 0.65), rng.uniform(0.1, 0.4), rng.uniform(0.15, 0.35))
            buildings.append((BOX, (x + width / 2, side * (front + depth / 2), height / 2),
                              (width / 2, depth / 2, height / 2), 0.0, facade, window))
            periods.append(rng.uniform(1.6, 2.6))
            x += width + (rng.uniform(1, 4) if rng.uniform() < 0.25 else 0.0)
    parts.append(_boxes(buildings, cid("building"), WINDOWS, periods))
    cars = []
    for _ in range(int(rng.integers(3, 9))):
        side = rng.choice([-1, 1])
        y = side * (road - 1.2 if rng.uniform() < 0.6 else road / 2)
        x, yaw = rng.uniform(-15, length + 15), (0.0 if side < 0 else np.pi) + rng.normal(0, 0.03)
        body = _hsv(rng.uniform(), rng.uniform(0.0, 0.8), rng.uniform(0.2, 0.9))
        glass = (0.15, 0.18, 0.22)
        lx, ly, lz = rng.uniform(1.9, 2.4), rng.uniform(0.8, 0.95), rng.uniform(0.4, 0.55)
        cars.append((BOX, (x, y, 0.2 + lz), (lx, ly, lz), yaw, body, body))
        cars.append((BOX, (x - 0.2 * np.cos(yaw), y - 0.2 * np.sin(yaw), 0.2 + 2 * lz + 0.3),
                     (lx * 0.55, ly * 0.9, 0.3), yaw, glass, glass))
    parts.append(_boxes(cars, cid("car"), SOLID, 1.0))
    poles, trunks, crowns = [], [], []
    for side in (-1, 1):
        x = lo + rng.uniform(0, 10)
        while x < hi:
            h = rng.uniform(2.0, 3.0)
            poles.append((CYLINDER, (x, side * (road + 0.4), h), (0.08, 0.08, h), 0.0, (0.45,) * 3, (0.45,) * 3))
            x += rng.uniform(12, 20)
        x = lo + rng.uniform(0, 8)
        while x < hi:
            trunk, crown = rng.uniform(0.6, 0.9), rng.uniform(1.0, 1.8)
            y = side * (road + walk - 0.8)
            trunks.append((CYLINDER, (x, y, trunk), (0.15, 0.15, trunk), 0.0, (0.35, 0.25, 0.15), (0.35, 0.25, 0.15)))
            leaf = _hsv(rng.uniform(0.22, 0.35), rng.uniform(0.5, 0.8), rng.uniform(0.3, 0.6))
            crowns.append((SPHERE, (x, y, 2 * trunk + 0.8 * crown), (crown, crown, crown * 0.9), 0.0, leaf,
                           tuple(0.7 * c for c in leaf)))
            x += rng.uniform(8, 16)
    parts.append(_boxes(poles, cid("pole"), SOLID, 1.0))
    parts.append(_boxes(trunks, cid("vegetation"), SOLID, 1.0))
    parts.append(_boxes(crowns, cid("vegetation"), DOTS, 0.35))
    asphalt = rng.uniform(0.25, 0.38)
    env = Environment(
        ground="street",
        ground_colors=np.array([(asphalt, asphalt, asphalt * 1.03), _hsv(rng.uniform(0.1, 0.3), 0.4, 0.45)]),
        ground_period=float(rng.uniform(2.5, 4.0)),
        ground_label=cid("road"),
        sun_dir=_sun(rng, 25, 65),
        sky_horizon=_jitter_color(rng, (0.80, 0.86, 0.92)),
        sky_zenith=_jitter_color(rng, (0.35, 0.55, 0.85)),
        street={"road_half_width": road, "marking_label": cid("road_marking"), "terrain_label": cid("terrain")},
    )
    return Primitives.concat(parts), env, road


def rig_cameras(rng: np.random.Generator, positions: int, step: float, road_half_width: float):
    """Six cameras 60° apart on a ring of radius 0.1 m at ~2.5 m height, driving along +x."""
    heading = (0.0 if rng.uniform() < 0.5 else np.pi) + rng.normal(0, np.deg2rad(2))
    lane_y = rng.uniform(-0.5, 0.5) * road_half_width
    poses, cams, pos_idx = [], [], []
    for p in range(positions):
        centre = np.array([p * step, lane_y, 2.5]) + rng.normal(0, [0.05, 0.05, 0.02])
        yaw0 = heading + rng.normal(0, np.deg2rad(1))
        for c in range(RIG_CAMERAS):
            yaw = yaw0 + c * np.pi / 3
            eye = centre + 0.1 * np.array([np.cos(yaw), np.sin(yaw), 0.0])
            poses.append(yaw_pitch_pose(eye, yaw, rng.normal(0, np.deg2rad(1))))
            cams.append(c)
            pos_idx.append(p)
    return np.array(poses), np.array(cams, np.int16), np.array(pos_idx, np.int16)


# --------------------------------------------------------------------------------------------
def scene_rng(seed: int, split: str, index: int, stream: int | None = None) -> np.random.Generator:
    """A scene's random stream; `stream` selects an independent extra one (e.g. BACKDROP_STREAM)."""
    words = [seed, SPLITS.index(split), index] + ([] if stream is None else [stream])
    return np.random.default_rng(np.random.SeedSequence(words))


def generate_scene(cfg: SyntheticConfig, split: str, index: int) -> dict[str, np.ndarray]:
    """All views of one scene: rgb, labels, depth, cam2world, intrinsics, view ids, families."""
    rng = scene_rng(cfg.seed, split, index)
    if cfg.kind == "dome":
        objects, env, families = dome_scene(rng, split, cfg)
        if cfg.backdrop is not None:
            backdrop_rng = scene_rng(cfg.seed, split, index, BACKDROP_STREAM)
            env = replace(env, **BACKDROP_FIELDS[cfg.backdrop](backdrop_rng, dome_scale(cfg)))
        cam2world, view_camera, view_position = dome_cameras(rng, cfg.views, dome_scale(cfg))
    else:
        positions = cfg.views // RIG_CAMERAS
        step = rng.uniform(2.0, 4.0)
        objects, env, road = street_scene(rng, step * (positions - 1))
        cam2world, view_camera, view_position = rig_cameras(rng, positions, step, road)
        families = np.full(MAX_FAMILIES_PER_SCENE, -1, dtype=np.int16)
    K = np.broadcast_to(intrinsics_from_fov(cfg.size, cfg.size, cfg.hfov_deg), (cfg.views, 3, 3))
    rgb, labels, depth = render_views(Renderer(objects, env), cam2world, K, cfg.size, cfg.size)
    return {
        "rgb": rgb,
        "labels": labels,
        "depth": depth,
        "cam2world": cam2world.astype(np.float32),
        "intrinsics": K.astype(np.float32),
        "view_camera": view_camera,
        "view_position": view_position,
        "families": families,
        "scene_index": np.int32(index),
    }
