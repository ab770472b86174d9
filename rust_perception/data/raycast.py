"""Vectorised ray casting of analytic primitives: the renderer behind the synthetic datasets.

Every primitive is a unit shape in its own frame (box [-1,1]³, sphere, cylinder and cone of
radius 1 along z ∈ [-1,1]) mapped to the world by rotation · diag(half_size) + centre, so one
intersection routine per shape serves every size and orientation. Rays travel in bundles, each
tested at once against the few objects it can reach (tensors of bundle-object pairs × rays) —
no per-pixel Python loops. Shading is
Lambertian under one directional light (the sun) with hard shadows cast by shadow rays, plus a
sky-coloured ambient term; textures are procedural functions of the object-frame hit point, so
they stick to the objects across views.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

SHAPES = ("box", "sphere", "cylinder", "cone")
TEXTURES = ("solid", "checker", "stripes", "dots", "windows")
GROUNDS = ("tiles", "street")
BOX, SPHERE, CYLINDER, CONE = range(4)
SOLID, CHECKER, STRIPES, DOTS, WINDOWS = range(5)
CONE_SLOPE = 0.5  # cone radius = CONE_SLOPE · (1 - z): apex at z=1, radius 1 at z=-1
EPS = 1e-4


@dataclass
class Primitives:
    """K objects; arrays are numpy, converted to torch once per render."""

    shape: np.ndarray  # (K,) index into SHAPES
    rotation: np.ndarray  # (K, 3, 3) object → world
    center: np.ndarray  # (K, 3)
    half_size: np.ndarray  # (K, 3) metres along the object's x, y, z
    texture: np.ndarray  # (K,) index into TEXTURES
    color_a: np.ndarray  # (K, 3) base albedo in [0, 1]
    color_b: np.ndarray  # (K, 3) pattern albedo
    tex_period: np.ndarray  # (K,) pattern period in metres
    label: np.ndarray  # (K,) semantic class id

    def __len__(self) -> int:
        return len(self.shape)

    @staticmethod
    def concat(parts: list["Primitives"]) -> "Primitives":
        return Primitives(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in Primitives.__dataclass_fields__})


@dataclass
class Environment:
    """Everything in a scene that is not an object: ground, sky and light."""

    ground: str  # one of GROUNDS
    ground_colors: np.ndarray  # (2, 3) tile colours, or road / terrain for 'street'
    ground_period: float  # tile size (tiles) or dash length (street), metres
    ground_label: int  # class of the ground (tiles) or the road (street)
    sun_dir: np.ndarray  # (3,) unit vector towards the sun
    sky_horizon: np.ndarray  # (3,)
    sky_zenith: np.ndarray  # (3,)
    sun_strength: float = 0.85
    ambient: float = 0.35
    far: float = 200.0  # ground hits beyond this are treated as sky (keeps depth finite)
    street: dict = field(default_factory=dict)  # road_half_width, marking_label, terrain_label
    # Azimuth-dependent backdrop, as an environment map gives (synthetic.py BACKDROPS).
    # None (the default) leaves the sky a function of elevation only and the ground uniform.
    # Sky: + Σ_h a_h·cos(h·az) + b_h·sin(h·az) (RGB, h = 1..H), fading with height above the horizon
    # as exp(-dir_z / sky_band). Ground: albedo × (1 + tint · tanh(⟨xy, axis⟩ / ground_scale))
    # ("panorama") or albedo × (1 + Σ_k tint_k · cos(⟨xy, wave_k⟩ + phase_k) / (1 + |xy|² / radius²))
    # ("waves": faded far out, where 32 px would alias them).
    sky_harmonics: np.ndarray | None = None  # (H, 2, 3): cos / sin coefficients of harmonics 1..H
    sky_band: float = 0.3
    ground_tint: np.ndarray | None = None  # (3,)
    ground_axis: np.ndarray | None = None  # (2,) unit world direction of the ground gradient
    ground_scale: float = 1.0  # metres
    ground_waves: np.ndarray | None = None  # (K, 2) wave vectors, radians per metre
    ground_wave_phase: np.ndarray | None = None  # (K,)
    ground_wave_tint: np.ndarray | None = None  # (K, 3)
    ground_wave_radius: float = 1.0  # metres


def f32t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


INF = float("inf")


def _first_positive(t_near, t_far):
    """Per element: t_near if > EPS, else t_far if > EPS, else inf (nan counts as a miss)."""
    t = torch.where(t_near > EPS, t_near, t_far)
    return torch.where(t > EPS, t, INF)


def _roots(a, b, c):
    """Both roots of a·t² + 2b·t + c = 0 (nan where none; smaller first when a > 0)."""
    a = torch.where(a.abs() < 1e-12, 1e-12, a)
    sq = torch.sqrt(b * b - a * c)  # nan where there is no root
    return (-b - sq) / a, (-b + sq) / a


def _hit_box(o, d):
    inv = 1.0 / torch.where(d.abs() < 1e-12, 1e-12, d)
    t1, t2 = (-1.0 - o) * inv, (1.0 - o) * inv
    t_near = torch.minimum(t1, t2).amax(-1)
    t_far = torch.maximum(t1, t2).amin(-1)
    return torch.where(t_far >= t_near, _first_positive(t_near, t_far), INF)


def _hit_sphere(o, d):
    return _first_positive(*_roots((d * d).sum(-1), (o * d).sum(-1), (o * o).sum(-1) - 1.0))


def _cap(o, d, z, radius):
    """Hit distance of the disc of `radius` at height z (inf where missed)."""
    t = (z - o[..., 2]) / torch.where(d[..., 2].abs() < 1e-12, 1e-12, d[..., 2])
    x, y = o[..., 0] + t * d[..., 0], o[..., 1] + t * d[..., 1]
    return torch.where((x * x + y * y <= radius * radius) & (t > EPS), t, INF)


def _side(o, d, t0, t1):
    """Nearest of two quadric roots (any order, nan = none) hitting within z ∈ [-1, 1]."""

    def keep(t):
        z = o[..., 2] + t * d[..., 2]
        return torch.where((z.abs() <= 1.0) & (t > EPS), t, INF)

    return torch.minimum(keep(t0), keep(t1))


def _hit_cylinder(o, d):
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1]
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - 1.0
    side = _side(o, d, *_roots(a, b, c))
    return torch.minimum(side, torch.minimum(_cap(o, d, -1.0, 1.0), _cap(o, d, 1.0, 1.0)))


def _hit_cone(o, d):
    k2 = CONE_SLOPE**2
    w = 1.0 - o[..., 2]
    a = d[..., 0] ** 2 + d[..., 1] ** 2 - k2 * d[..., 2] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1] + k2 * w * d[..., 2]
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - k2 * w * w
    side = _side(o, d, *_roots(a, b, c))  # the double cone's roots; z limits keep the upright half
    return torch.minimum(side, _cap(o, d, -1.0, 2.0 * CONE_SLOPE))


_HIT = {BOX: _hit_box, SPHERE: _hit_sphere, CYLINDER: _hit_cylinder, CONE: _hit_cone}


def _local_normal(shape, p):
    """Object-frame surface normal (unnormalised) at hit points p (R, 3) of shapes (R,)."""
    n = torch.zeros_like(p)
    radial = torch.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2)
    # box: the face whose coordinate is closest to ±1
    axis = p.abs().argmax(-1, keepdim=True)
    box_n = torch.zeros_like(p).scatter_(1, axis, torch.sign(p.gather(1, axis)))
    # cylinder: cap when the hit is nearer a cap plane than the side surface
    cyl_cap = (1.0 - p[:, 2].abs()) < (1.0 - radial).abs()
    cyl_n = torch.where(
        cyl_cap[:, None],
        torch.stack([torch.zeros_like(radial), torch.zeros_like(radial), torch.sign(p[:, 2])], -1),
        torch.stack([p[:, 0], p[:, 1], torch.zeros_like(radial)], -1),
    )
    cone_cap = (p[:, 2] + 1.0).abs() < (radial - CONE_SLOPE * (1.0 - p[:, 2])).abs()
    cone_n = torch.where(
        cone_cap[:, None],
        torch.tensor([0.0, 0.0, -1.0]).expand_as(p),
        torch.stack([p[:, 0], p[:, 1], CONE_SLOPE**2 * (1.0 - p[:, 2])], -1),
    )
    for code, value in ((BOX, box_n), (SPHERE, p), (CYLINDER, cyl_n), (CONE, cone_n)):
        n = torch.where((shape == code)[:, None], value, n)
    return n


def _texture(tex, q, qn, half, period, color_a, color_b):
    """Albedo at object-frame metric points q (R, 3); qn is the object-frame normal."""
    cells = torch.floor(q / period[:, None])
    checker = (cells.sum(-1) % 2) == 1
    stripes = (torch.floor(q[:, 2] / period) % 2) == 1
    frac = q / period[:, None] - torch.floor(q / period[:, None]) - 0.5
    dots = (frac * frac).sum(-1) < 0.12
    # windows: a grid on the vertical faces, in face-horizontal × height coordinates
    horizontal = torch.where(qn[:, 0].abs() > qn[:, 1].abs(), q[:, 1], q[:, 0])
    u = horizontal / period - torch.floor(horizontal / period)
    height = (q[:, 2] + half[:, 2]) / (1.2 * period)
    v = height - torch.floor(height)
    vertical_face = qn[:, 2].abs() < 0.5
    windows = vertical_face & (u > 0.25) & (u < 0.75) & (v > 0.35) & (v < 0.8) & (height > 0.9)
    pattern = torch.zeros_like(checker)
    for code, value in ((CHECKER, checker), (STRIPES, stripes), (DOTS, dots), (WINDOWS, windows)):
        pattern = torch.where(tex == code, value, pattern)
    return torch.where(pattern[:, None], color_b, color_a)


def _sky_azimuth(dirs, env: Environment):
    """The azimuth-dependent part of the sky (R, 3) for unit rays `dirs` (R, 3), strongest at
    (and below) the horizon."""
    az = torch.atan2(dirs[:, 1], dirs[:, 0])
    coeffs = f32t(env.sky_harmonics)
    h = torch.arange(1, len(coeffs) + 1, dtype=torch.float32)
    basis = torch.stack([torch.cos(az[:, None] * h), torch.sin(az[:, None] * h)], -1)  # (R, H, 2)
    band = torch.exp(-dirs[:, 2].clamp(min=0.0) / env.sky_band)
    return band[:, None] * torch.einsum("rhc,hck->rk", basis, coeffs)


def _ground_gradient(points, env: Environment):
    """Albedo factor (R, 3) of the smooth ground colour gradient along `env.ground_axis`."""
    s = torch.tanh((points[:, :2] @ f32t(env.ground_axis)) / env.ground_scale)
    return 1.0 + s[:, None] * f32t(env.ground_tint)


def _ground_waves(points, env: Environment):
    """Albedo factor (R, 3) of the ground's sum of plane waves (`env.ground_waves`)."""
    xy = points[:, :2]
    angle = xy @ f32t(env.ground_waves).T + f32t(env.ground_wave_phase)  # (R, K)
    fade = 1.0 / (1.0 + (xy**2).sum(-1, keepdim=True) / env.ground_wave_radius**2)
    return 1.0 + fade * (torch.cos(angle) @ f32t(env.ground_wave_tint))


def _ground(points, env: Environment, colors):
    """Albedo and label of ground hits at world points (R, 3)."""
    x, y = points[:, 0], points[:, 1]
    if env.ground == "tiles":
        parity = (torch.floor(x / env.ground_period) + torch.floor(y / env.ground_period)) % 2
        albedo = torch.where(parity[:, None] == 1, colors[1], colors[0])
        if env.ground_tint is not None:
            albedo = albedo * _ground_gradient(points, env)
        if env.ground_waves is not None:
            albedo = albedo * _ground_waves(points, env)
        return albedo, torch.full_like(x, env.ground_label, dtype=torch.long)
    half = env.street["road_half_width"]
    road = y.abs() < half
    dash = (x / env.ground_period - torch.floor(x / env.ground_period)) < 0.5
    centre_line = (y.abs() < 0.08) & dash
    edge_line = (y.abs() > half - 0.35) & (y.abs() < half - 0.2)
    marking = road & (centre_line | edge_line)
    albedo = torch.where(road[:, None], colors[0], colors[1])
    albedo = torch.where(marking[:, None], torch.tensor([0.92, 0.92, 0.88]), albedo)
    label = torch.where(road, env.ground_label, env.street["terrain_label"])
    label = torch.where(marking, env.street["marking_label"], label)
    return albedo, label.long()


class Renderer:
    """Casts ray bundles into one scene.

    Rays come in bundles (T, P): P rays that are close together, e.g. an 8×8 pixel tile of one
    view. A bundle is tested only against the objects whose bounding spheres can meet it (a cone
    test for camera rays, a swept-sphere test for shadow rays), so the work per ray follows what
    it can see rather than the scene's object count (2–5 candidates of ~27 objects per bundle in
    dome scenes).
    """

    def __init__(self, objects: Primitives, env: Environment, sky_label: int = 0, batch_rays: int = 65536):
        self.env, self.sky_label, self.batch_rays = env, sky_label, batch_rays
        rot = f32t(objects.rotation)
        half = f32t(objects.half_size)
        self.inv = (rot / half[:, None, :]).transpose(1, 2)  # world → object (unit shape) linear part
        self.inv_center = torch.einsum("kij,kj->ki", self.inv, f32t(objects.center))
        self.normal_map = rot / half[:, None, :]  # object normal → world normal (inverse transpose)
        self.center = f32t(objects.center)
        self.radius = half.norm(dim=-1) * 1.001 + 1e-4  # bounding spheres, with a safety margin
        self.half = half
        self.shape = torch.as_tensor(objects.shape, dtype=torch.long)
        self.texture = torch.as_tensor(objects.texture, dtype=torch.long)
        self.color_a, self.color_b = f32t(objects.color_a), f32t(objects.color_b)
        self.period = f32t(objects.tex_period)
        self.label = torch.as_tensor(objects.label, dtype=torch.long)
        self.groups = [(code, torch.nonzero(self.shape == code).ravel()) for code in _HIT]
        self.groups = [(code, idx) for code, idx in self.groups if len(idx)]
        self.ground_colors = f32t(env.ground_colors)
        self.sun = f32t(env.sun_dir)

    # ---------------------------------------------------------------- culling
    def _cone_candidates(self, origins, dirs):
        """(T, K) objects whose bounding sphere meets the cone spanned by each bundle's rays."""
        apex = origins.mean(1)  # (T, 3)
        spread = (origins - apex[:, None]).norm(dim=-1).amax(1)  # (T,)
        axis = dirs.mean(1)
        axis = axis / axis.norm(dim=-1, keepdim=True)
        half_angle = torch.acos(((dirs * axis[:, None]).sum(-1)).clamp(-1, 1)).amax(1)  # (T,)
        to_obj = self.center[None] - apex[:, None]  # (T, K, 3)
        dist = to_obj.norm(dim=-1)
        radius = self.radius[None] + spread[:, None]
        cos = (to_obj * axis[:, None]).sum(-1) / dist.clamp(min=1e-9)
        angle = torch.acos(cos.clamp(-1, 1))
        reach = torch.asin((radius / dist.clamp(min=1e-9)).clamp(max=1.0))
        return (dist <= radius) | (angle <= half_angle[:, None] + reach + 1e-4)

    def _sweep_candidates(self, points, valid):
        """(T, K) objects that can block sun rays leaving the valid `points` (T, P, 3)."""
        w = valid[..., None].float()
        count = w.sum(1).clamp(min=1)
        centre = (points * w).sum(1) / count  # (T, 3)
        spread = ((points - centre[:, None]).norm(dim=-1) * valid).amax(1)
        rel = self.center[None] - centre[:, None]  # (T, K, 3)
        along = (rel @ self.sun).clamp(min=0.0)
        dist = (rel - along[..., None] * self.sun).norm(dim=-1)
        return (dist <= self.radius[None] + spread[:, None]) & valid.any(1)[:, None]

    # ---------------------------------------------------------------- intersection
    def _hits(self, origins, dirs, candidates):
        """Nearest object hit per ray: t (T, P) (inf for none) and object index (T, P) (-1).

        Work is done per (bundle, candidate object) pair — exactly the tests culling left, with
        no padding — in chunks of `batch_rays` ray-object tests.
        """
        T, P = origins.shape[:2]
        best_t = torch.full((T * P,), INF)
        best_k = torch.full((T * P,), -1, dtype=torch.long)
        bundle, obj = torch.nonzero(candidates, as_tuple=True)
        lane = torch.arange(P)
        tested = []
        for code, _ in self.groups:
            mine = self.shape[obj] == code
            per_chunk = max(1, self.batch_rays // P)
            for b, k in zip(bundle[mine].split(per_chunk), obj[mine].split(per_chunk)):
                inv_t = self.inv[k].transpose(1, 2)
                o = torch.bmm(origins[b], inv_t) - self.inv_center[k][:, None]
                d = torch.bmm(dirs[b], inv_t)
                t = _HIT[code](o, d).reshape(-1)
                ray = (b[:, None] * P + lane).reshape(-1)
                best_t.scatter_reduce_(0, ray, t, "amin")
                tested.append((ray, t, k[:, None].expand(-1, P).reshape(-1)))
        for ray, t, k in tested:  # the object that gave each ray's minimum (ties: highest index)
            won = torch.isfinite(t) & (t == best_t[ray])
            best_k.scatter_reduce_(0, ray[won], k[won], "amax")
        return best_t.reshape(T, P), best_k.reshape(T, P)

    # ---------------------------------------------------------------- shading
    @torch.no_grad()
    def cast(self, origins: torch.Tensor, dirs: torch.Tensor):
        """Colour (T, P, 3) in [0, 1], label (T, P) and hit distance (T, P; inf for sky) of
        bundles of unit rays (T, P, 3)."""
        env = self.env
        T, P = origins.shape[:2]
        t_obj, k = self._hits(origins, dirs, self._cone_candidates(origins, dirs))
        t_obj, k, origins, dirs = t_obj.reshape(-1), k.reshape(-1), origins.reshape(-1, 3), dirs.reshape(-1, 3)
        t_ground = torch.where(dirs[:, 2] < -1e-6, -origins[:, 2] / dirs[:, 2].clamp(max=-1e-6), float("inf"))
        t_ground = torch.where(t_ground < env.far, t_ground, float("inf"))
        hit_obj = t_obj < t_ground
        t = torch.minimum(t_obj, t_ground)
        hit = torch.isfinite(t)
        points = origins + dirs * torch.where(hit, t, 0.0)[:, None]

        up = dirs[:, 2].clamp(0.0, 1.0).sqrt()[:, None]
        sky = f32t(env.sky_horizon) * (1 - up) + f32t(env.sky_zenith) * up
        sky = sky + 0.6 * (dirs @ self.sun).clamp(min=0.0).pow(48)[:, None]
        if env.sky_harmonics is not None:
            sky = sky + _sky_azimuth(dirs, env)

        albedo, label = _ground(points, env, self.ground_colors)
        label = torch.where(hit, label, self.sky_label)
        normal = torch.tensor([0.0, 0.0, 1.0]).expand_as(points)

        # objects: gather each ray's hit object
        ko = k.clamp(min=0)
        p_local = torch.einsum("rij,rj->ri", self.inv[ko], points) - self.inv_center[ko]
        n_local = _local_normal(self.shape[ko], p_local)
        n_world = torch.einsum("rij,rj->ri", self.normal_map[ko], n_local)
        n_world = n_world / n_world.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        n_world = torch.where((n_world * dirs).sum(-1, keepdim=True) > 0, -n_world, n_world)
        half = self.half[ko]
        o_albedo = _texture(
            self.texture[ko], p_local * half, n_local, half, self.period[ko], self.color_a[ko], self.color_b[ko]
        )
        albedo = torch.where(hit_obj[:, None], o_albedo, albedo)
        normal = torch.where(hit_obj[:, None], n_world, normal)
        label = torch.where(hit_obj, self.label[ko], label)

        # direct sun with hard shadows: one shadow ray per lit surface point, bundled per tile
        lambert = (normal @ self.sun).clamp(min=0.0)
        lit = hit & (lambert > 0)
        if len(self.shape) and bool(lit.any()):
            start = (points + normal * 1e-3).reshape(T, P, 3)
            lit_b = lit.reshape(T, P)
            t_block, _ = self._hits(start, self.sun.expand(T, P, 3), self._sweep_candidates(start, lit_b))
            lambert = torch.where(lit & torch.isfinite(t_block.reshape(-1)), 0.0, lambert)
        ambient = env.ambient * (0.8 + 0.2 * normal[:, 2])
        shaded = albedo * (ambient + env.sun_strength * lambert)[:, None]
        color = torch.where(hit[:, None], shaded, sky)
        return color.clamp(0.0, 1.0).reshape(T, P, 3), label.reshape(T, P), t.reshape(T, P)


def render_views(
    renderer: Renderer, cam2world: np.ndarray, K: np.ndarray, height: int, width: int, tile: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render V views: RGB uint8 (V,H,W,3), labels uint8 (V,H,W), z-depth float16 (V,H,W).

    Rays are bundled per `tile`×`tile` pixel block (height and width must be multiples of it).
    """
    from ..geometry import camera_rays, pixel_grid

    views = len(cam2world)
    uv = pixel_grid(height, width)
    origins, dirs = zip(*(camera_rays(K[v], cam2world[v], uv) for v in range(views)))
    forward = np.repeat(cam2world[:, :3, 2], height * width, axis=0)

    def to_tiles(a):  # (V·H·W, C) → (V·tiles, tile², C)
        c = a.shape[-1]
        a = a.reshape(views, height // tile, tile, width // tile, tile, c).transpose(0, 1, 3, 2, 4, 5)
        return f32t(np.ascontiguousarray(a).reshape(-1, tile * tile, c))

    def from_tiles(t):  # (V·tiles, tile², C) → (V, H, W, C)
        c = t.shape[-1]
        t = t.reshape(views, height // tile, width // tile, tile, tile, c).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(views, height, width, c)

    o, d = to_tiles(np.concatenate(origins)), to_tiles(np.concatenate(dirs))
    color, label, dist = renderer.cast(o, d)
    depth = dist * (d * to_tiles(forward)).sum(-1)
    rgb = (from_tiles(color) * 255.0 + 0.5).floor().to(torch.uint8)
    label = from_tiles(label[..., None])[..., 0].to(torch.uint8)
    depth = from_tiles(depth[..., None])[..., 0].to(torch.float16)
    return rgb.numpy(), label.numpy(), depth.numpy()
