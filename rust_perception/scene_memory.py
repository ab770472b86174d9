"""The node's behaviour without ROS: per-camera frame buffers, approximate time sync, view
selection, a rolling SLSR and the schedule of outputs. `ros2_rust_node/node.py` only converts
messages and forwards calls into `Pipeline`, so everything here is tested without ROS.

View-selection policy (documented for users in docs/node.md):
1. the first input view — the one RUST's latent poses are relative to — is the reference
   camera's newest frame;
2. then, in the order of `cameras` starting after the reference, each other live camera's frame
   closest in time to it, if within `sync_tolerance` seconds;
3. if that gives fewer than `num_inputs` views (fewer cameras than inputs, or cameras out of sync
   or silent), earlier frames fill up: the reference camera's previous frames first, newest first,
   then other cameras' — a moving rig's past views are extra viewpoints of the same street.
A camera is silent when no frame of it has arrived for `stale_after` seconds by the caller's
clock (the node's monotonic clock, the offline runner's bag time), or when its newest frame is
older than `stale_after` seconds by the newest stamp seen on any camera; it is left out until it
sends again. With the reference camera silent nothing is selected, and the pipeline publishes
nothing: a scene representation is never rendered again once a newer reference frame was due.
The reference camera's buffer holds at least `num_inputs` frames, so a rig with fewer cameras than
the model's inputs (or whose other cameras are silent) fills the inputs with its earlier frames.

Timestamps jumping back: a frame older than its camera's newest is dropped and counted
(`out_of_order`) — unless it is more than `stale_after` seconds older. Such a jump means the
timeline restarted (a bag loop, a sim-time reset, a driver restart), so dropping would silence the
camera for good: instead it is counted (`time_resets`), its camera's buffer restarts with it, and
every camera's frames more than `stale_after` seconds after it (the old timeline) are forgotten —
a time reset of each camera that had any, so a looped bag counts one per camera.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .latent_space import MOTIONS, PCA, motion_latent
from .node_config import PipelineConfig


@dataclass
class Frame:
    camera: str
    stamp: float  # seconds (header stamp)
    image: np.ndarray  # (S, S, 3) uint8 RGB at the model's size


class CameraBuffer:
    """Bounded buffer of one camera's newest frames, oldest first. Counts: `evicted` — pushed out
    by newer frames unused (normal: the SLSR is re-encoded less often than cameras send);
    `out_of_order` — older than the newest frame, rejected; `time_resets` — more than
    `reset_after` seconds older than the newest: a new timeline, which replaces the buffer."""

    def __init__(self, capacity: int, reset_after: float = np.inf):
        self.frames: deque[Frame] = deque(maxlen=capacity)
        self.reset_after = reset_after
        self.evicted = 0
        self.out_of_order = 0
        self.time_resets = 0
        self.received = 0

    def add(self, frame: Frame) -> str:
        """Returns what happened to the frame: "added", "out_of_order" or "time_reset"."""
        result = "added"
        if self.frames and self.frames[-1].stamp - frame.stamp > self.reset_after:
            self.frames.clear()
            self.time_resets += 1
            result = "time_reset"
        elif self.frames and frame.stamp < self.frames[-1].stamp:
            self.out_of_order += 1
            return "out_of_order"
        if len(self.frames) == self.frames.maxlen:
            self.evicted += 1
        self.frames.append(frame)
        self.received += 1
        return result

    def forget_after(self, stamp: float) -> None:
        """Drop frames stamped after `stamp`: the old timeline, once another camera's restarted.
        Losing frames that way is this camera's time reset too (counted once per jump)."""
        if self.frames and self.frames[-1].stamp > stamp:
            self.time_resets += 1
        while self.frames and self.frames[-1].stamp > stamp:
            self.frames.pop()

    def newest(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    def closest(self, stamp: float) -> Frame | None:
        return min(self.frames, key=lambda f: abs(f.stamp - stamp), default=None)


class SceneMemory:
    """Every camera's buffer, and the view-selection policy over them. Thread-safe: a node's image
    callbacks add frames while its worker runs inference, and the lock is held only for buffer
    access — never across an encode or render, which would stall the callbacks and drop frames."""

    def __init__(self, cameras: list[str], reference: str, num_inputs: int, capacity: int = 4,
                 sync_tolerance: float = 0.05, stale_after: float = 1.0):
        if reference not in cameras:
            raise ValueError(f"reference camera {reference!r} is not one of the cameras {cameras}")
        if capacity < 1 or num_inputs < 1:
            raise ValueError("capacity and num_inputs must be >= 1")
        self.cameras, self.reference, self.num_inputs = list(cameras), reference, num_inputs
        self.sync_tolerance, self.stale_after = sync_tolerance, stale_after
        # the reference alone can always fill the inputs with its own earlier frames
        self.buffers = {c: CameraBuffer(max(capacity, num_inputs) if c == reference else capacity,
                                        reset_after=stale_after) for c in cameras}
        self.arrived: dict[str, float] = {}  # camera → clock time its newest buffered frame arrived
        self.lock = threading.RLock()

    def add(self, frame: Frame, now: float) -> str:
        """Buffers the frame, arrived at clock time `now`; returns `CameraBuffer.add`'s result.
        After a time reset the other cameras' old-timeline frames are dropped too, or they would
        make the new ones look stale."""
        if frame.camera not in self.buffers:
            raise KeyError(f"frame from unknown camera {frame.camera!r}")
        with self.lock:
            result = self.buffers[frame.camera].add(frame)
            if result != "out_of_order":
                self.arrived[frame.camera] = now
            if result == "time_reset":
                for camera, buffer in self.buffers.items():
                    if camera != frame.camera:
                        buffer.forget_after(frame.stamp + self.stale_after)
        return result

    def newest(self, camera: str) -> Frame | None:
        with self.lock:
            return self.buffers[camera].newest()

    def latest_stamp(self) -> float | None:
        with self.lock:
            stamps = [b.newest().stamp for b in self.buffers.values() if b.newest() is not None]
        return max(stamps) if stamps else None

    def live_cameras(self, now: float | None = None) -> list[str]:
        """Cameras with a frame within `stale_after` of the newest stamp and, given the clock time
        `now`, one that arrived within `stale_after` of it (a rig whose cameras all stopped is
        silent, though its newest stamps agree)."""
        with self.lock:
            newest = self.latest_stamp()
            return [c for c in self.cameras
                    if (f := self.buffers[c].newest()) is not None and newest - f.stamp <= self.stale_after
                    and (now is None or now - self.arrived[c] <= self.stale_after)]

    def silent_for(self, camera: str, now: float) -> float | None:
        """Clock seconds since the camera's newest buffered frame arrived (None: none ever did)."""
        with self.lock:
            return now - self.arrived[camera] if camera in self.arrived else None

    def select_views(self, now: float | None = None) -> list[Frame] | None:
        """num_inputs frames by the policy above, or None while the reference camera is silent
        (by stamps and, given `now`, by the clock) or too few frames exist."""
        with self.lock:
            return self._select_views(now)

    def _select_views(self, now: float | None) -> list[Frame] | None:
        live = self.live_cameras(now)
        if self.reference not in live:
            return None
        first = self.buffers[self.reference].newest()
        chosen = [first]
        start = self.cameras.index(self.reference)
        order = [self.cameras[(start + k) % len(self.cameras)] for k in range(1, len(self.cameras))]
        for camera in order:
            if len(chosen) == self.num_inputs:
                break
            if camera in live:
                frame = self.buffers[camera].closest(first.stamp)
                if frame is not None and abs(frame.stamp - first.stamp) <= self.sync_tolerance:
                    chosen.append(frame)
        for camera in [self.reference, *order]:
            if camera not in live:
                continue
            for frame in reversed(self.buffers[camera].frames):
                if len(chosen) == self.num_inputs:
                    return chosen
                if all(frame is not c for c in chosen):
                    chosen.append(frame)
        return chosen if len(chosen) == self.num_inputs else None

    def stats(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {c: {"received": b.received, "evicted": b.evicted, "out_of_order": b.out_of_order,
                        "time_resets": b.time_resets, "buffered": len(b.frames)} for c, b in self.buffers.items()}


@dataclass
class Outputs:
    """What one `step` produced, for the node to publish (None / empty = nothing new)."""

    stamp: float = 0.0  # the SLSR's reference frame: what the novel view is stamped with
    novel_view: np.ndarray | None = None  # (S, S, 3) uint8
    novel_camera: str = ""  # the camera whose latent pose the novel view started from
    frame_stamps: dict[str, float] = field(default_factory=dict)  # camera → stamp of the frame its poses came from
    latent_poses: dict[str, np.ndarray] = field(default_factory=dict)
    relative_poses: dict[str, dict] = field(default_factory=dict)  # camera → {"position", "rotation"}
    segmentation: dict[str, np.ndarray] = field(default_factory=dict)  # camera → (S, S) uint8 class ids
    encoded: bool = False


class RecentEvents:
    """Events per key within the last `window` seconds of the caller's clock: what a status level
    reflects, so a single bad frame long ago does not hold it at WARN. Thread-safe (image callbacks
    add, the diagnostics timer reads)."""

    def __init__(self, window: float):
        self.window = window
        self.events: deque[tuple[float, str]] = deque()
        self.lock = threading.Lock()

    def add(self, key: str, now: float) -> None:
        with self.lock:
            self.events.append((now, key))

    def counts(self, now: float) -> dict[str, int]:
        with self.lock:
            while self.events and now - self.events[0][0] > self.window:
                self.events.popleft()
            out: dict[str, int] = {}
            for _, key in self.events:
                out[key] = out.get(key, 0) + 1
            return out


class LatencyStats:
    """Milliseconds of the last `window` calls per stage; read by diagnostics while the worker adds."""

    def __init__(self, window: int = 100):
        self.samples: dict[str, deque] = {}
        self.window = window
        self.lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.samples.setdefault(name, deque(maxlen=self.window)).append(seconds * 1000.0)

    def summary(self) -> dict[str, dict[str, float]]:
        with self.lock:
            return {k: {"mean_ms": round(float(np.mean(v)), 2), "max_ms": round(float(np.max(v)), 2), "n": len(v)}
                    for k, v in self.samples.items() if v}


class Pipeline:
    """Frames in, `Outputs` out. `step(now)` does at most what is due: re-encode the SLSR every
    `slsr_period` s, poses / relative poses / segmentation at `pose_rate`, a novel view at
    `render_rate`. Time is passed in (wall clock or bag time), so tests drive it directly."""

    def __init__(self, engine, cfg: PipelineConfig, clock=time.perf_counter):
        self.engine, self.cfg, self.clock = engine, cfg, clock
        self.memory = SceneMemory(cfg.camera_topics, cfg.reference_camera, engine.meta["num_inputs"], cfg.buffer_size,
                                  cfg.sync_tolerance, cfg.stale_after)
        self.slsr: np.ndarray | None = None
        self.views: list[Frame] = []
        self.encoded_reference: Frame | None = None  # the reference frame of the newest SLSR
        self.view_latent: tuple[Frame, np.ndarray] | None = None  # the novel camera's latents, for the current SLSR
        self.last = {"encode": -np.inf, "pose": -np.inf, "render": -np.inf}
        self.latency = LatencyStats()
        self.traversal_phase = 0.0
        latent_space = engine.meta.get("latent_space")
        self.pca = self.meanings = None
        if latent_space:
            self.pca, self.meanings = PCA.from_dict(latent_space["pca"]), latent_space["meanings"]
        self.check_motion(cfg.novel_view_motion)

    def add_frame(self, camera: str, stamp: float, rgb: np.ndarray, now: float) -> str:
        """rgb: (S, S, 3) uint8 at the model's size (the node resizes), arrived at `now` on the
        clock `step` is driven by. Returns `SceneMemory.add`'s result, for the caller to warn
        about time going backwards."""
        return self.memory.add(Frame(camera, stamp, rgb), now)

    def _timed(self, name, fn, *args):
        start = self.clock()
        out = fn(*args)
        self.latency.add(name, self.clock() - start)
        return out

    def novel_latent(self, base: np.ndarray) -> np.ndarray:
        """The latent poses (2, D) of the published novel view: `novel_view_camera`'s halves', both
        moved along the latent component that means `novel_view_motion` (`check_motion`: the run
        found one)."""
        motion = self.cfg.novel_view_motion
        if motion == "none":  # any other motion was checked: the model has a latent basis
            return base
        if motion == "traversal":  # sweep the top component back and forth
            self.traversal_phase += 0.25
            coords = np.zeros(len(self.pca.std))
            coords[0] = 2.0 * np.sin(self.traversal_phase) * self.pca.std[0]
            return base + coords @ self.pca.components
        return motion_latent(self.pca, self.meanings, base, motion, self.cfg.novel_view_amount)

    def check_motion(self, motion: str) -> None:
        """ConfigError with the reason unless this model can move the novel view by `motion`
        (at configure, and before `ros2 param set` changes it): rendering it unmoved instead would
        look like a working motion."""
        if motion != "none" and self.pca is None:
            raise ConfigError(f"novel_view_motion {motion!r} needs the model's latent basis (latent_space in its "
                              "metadata.json): run analyze_latent on its run, then export again")
        if motion in MOTIONS and MOTIONS[motion] not in self.meanings:
            raise ConfigError(f"novel_view_motion {motion!r}: analyze_latent found no latent component of this "
                              f"model that correlates with {MOTIONS[motion]!r} (found: "
                              f"{', '.join(self.meanings) or 'none'}); choose another motion")

    def _due(self, name: str, period: float, now: float) -> bool:
        return now - self.last[name] >= period

    def _done(self, name: str, period: float, now: float) -> None:
        """Next due time on a fixed grid (last + period, not now + period), so the worker tick's
        lateness does not add up: 10 Hz stays 10 Hz. More than a period behind (a slow step, or
        outputs off), the grid restarts at `now` instead of bursting to catch up."""
        late = now - self.last[name]
        self.last[name] = self.last[name] + period if late < 2 * period else now

    def step(self, now: float) -> Outputs:
        """Whatever is due at clock time `now`. A re-encode that is due without a new reference
        frame (the reference stopped, or went silent) drops the SLSR: outputs stop, instead of
        re-rendering it under an old stamp, until the reference sends again."""
        cfg, out = self.cfg, Outputs()
        if self._due("encode", cfg.slsr_period, now):
            views = self.memory.select_views(now)
            if views is None or views[0] is self.encoded_reference:
                self.slsr, self.views = None, []
            else:
                self.slsr = self._timed("encode", self.engine.encode, [f.image for f in views])
                self.views, self.view_latent, out.encoded = views, None, True
                self.encoded_reference = views[0]
                self._done("encode", cfg.slsr_period, now)
        if self.slsr is None:
            return out
        out.stamp = self.views[0].stamp
        view_latents: dict[str, np.ndarray] = {}  # camera → its halves' latents (2, D), what views render from
        if self._due("pose", 1.0 / cfg.pose_rate, now):
            self._done("pose", 1.0 / cfg.pose_rate, now)
            for camera in self.memory.live_cameras(now):
                frame = self.memory.newest(camera)
                out.frame_stamps[camera] = frame.stamp
                view_latents[camera] = self._timed("pose", self.engine.view_latents, self.slsr, frame.image)
                out.latent_poses[camera] = view_latents[camera][0]
            reference_latent = out.latent_poses.get(cfg.reference_camera)
            if cfg.publish_relative_pose and self.engine.meta["epe"] and reference_latent is not None:
                for camera, latent in out.latent_poses.items():
                    if camera != cfg.reference_camera:
                        out.relative_poses[camera] = self._timed("relative_pose", self.engine.relative_pose, self.slsr,
                                                                 reference_latent, latent)
            if cfg.publish_segmentation and self.engine.meta["segmentation"]:
                for camera, latents in view_latents.items():
                    out.segmentation[camera] = self._timed("segment", self.engine.segment, self.slsr, latents)
        if cfg.render and self._due("render", 1.0 / cfg.render_rate, now):
            self._done("render", 1.0 / cfg.render_rate, now)
            out.novel_camera = self.novel_camera()
            out.novel_view = self._timed("render", self.engine.render_image, self.slsr,
                                         self.novel_latent(self.novel_camera_latents(view_latents)),
                                         cfg.render_size or None)
        return out

    def novel_camera(self) -> str:
        """The camera the novel view starts from: `novel_view_camera`, else the reference camera."""
        return self.cfg.novel_view_camera or self.cfg.reference_camera

    def novel_camera_latents(self, view_latents: dict[str, np.ndarray]) -> np.ndarray:
        """`view_latents` (2, D) of `novel_camera()`: the ones just estimated, else its encoded
        view's (the frame synchronous with the published stamp), else its newest frame's —
        estimated once per SLSR and frame, not at every render."""
        camera = self.novel_camera()
        if camera in view_latents:
            return view_latents[camera]
        frame = next((f for f in self.views if f.camera == camera), None) or self.memory.newest(camera) or self.views[0]
        if self.view_latent is None or self.view_latent[0] is not frame:
            self.view_latent = frame, self._timed("pose", self.engine.view_latents, self.slsr, frame.image)
        return self.view_latent[1]
