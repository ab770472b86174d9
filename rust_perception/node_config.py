"""`rust_node`'s parameters, declared once: name, default (whose type is the parameter's type),
description and validation. Three consumers must agree on them, so all three are made from this
table: the node's ROS parameters, `rust_offline`'s flags, and `PipelineConfig` (the settings the
ROS-free pipeline reads). The offline runner thereby replays any node configuration, and a bad
value is refused with the same reason at configure, in `ros2 param set` and on the command line.
ROS-free: never imports rclpy.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .latent_space import MOTIONS
from .runtime.registry import CHOICES as BACKENDS

NODE = "rust_node"
# the novel view as rendered ("none"), moved along the latent component that means one of
# latent_space.MOTIONS, or swept back and forth along the top component ("traversal")
NOVEL_VIEW_MOTIONS = ("none", *MOTIONS, "traversal")
QOS = ("sensor_data", "default", "reliable")
# keys of a ROS 2 params file that apply to a node named rust_node, least specific first
PARAMS_FILE_KEYS = ("/**", f"/**/{NODE}", NODE, f"/{NODE}")


@dataclass(frozen=True)
class Setting:
    name: str
    default: bool | int | float | str | list
    description: str
    choices: tuple[str, ...] = ()
    gt: float | None = None  # the value must be > gt
    ge: float | None = None  # the value must be >= ge
    pipeline: bool = False  # a field of PipelineConfig (and a flag of rust_offline)
    offline: bool = False  # read by rust_offline too (a flag), outside the pipeline
    live: bool = False  # `ros2 param set` applies it at once; the others are read at configure

    @property
    def constraints(self) -> str:
        """What the value must be, in words (ROS: `ros2 param describe`)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return f"> {self.gt:g}" if self.gt is not None else f">= {self.ge:g}" if self.ge is not None else ""


SETTINGS = {s.name: s for s in (
    Setting("camera_topics", ["cam0/image_raw"], "image topics of the rig (sensor_msgs/Image or, ending in "
            "/compressed, CompressedImage), relative to the node's namespace", pipeline=True),
    Setting("reference_camera", "", "topic of the reference camera: the first input view, and the frame relative "
            "poses are given in (default: the first of camera_topics)", pipeline=True),
    Setting("model_dir", "", "model directory written by `rust_export`", offline=True),
    Setting("backend", "auto", "inference backend (auto: the best installed)", choices=BACKENDS, offline=True),
    Setting("threads", 0, "CPU threads of the engine (0: its default)", ge=0, offline=True),
    Setting("slsr_period", 0.5, "seconds between re-encodes of the scene representation", gt=0, pipeline=True,
            live=True),
    Setting("render_rate", 2.0, "novel views per second", gt=0, pipeline=True, live=True),
    Setting("render_size", 0, "novel-view size in pixels (0: the model's image size)", ge=0, pipeline=True, live=True),
    Setting("pose_rate", 2.0, "latent poses, relative poses and segmentation per second", gt=0, pipeline=True,
            live=True),
    Setting("novel_view_motion", "none", "where the novel view looks from, relative to novel_view_camera, in the "
            "latent pose space (any but none needs the model's latent basis from analyze_latent)",
            choices=NOVEL_VIEW_MOTIONS, pipeline=True, live=True),
    Setting("novel_view_camera", "", "topic of the camera whose latent pose the novel view starts from (default: "
            "the reference camera)", pipeline=True, live=True),
    Setting("novel_view_amount", 1.0, "standard deviations moved along the latent component of novel_view_motion",
            pipeline=True, live=True),
    Setting("sync_tolerance", 0.05, "seconds: frames of other cameras this close to the reference frame count as "
            "synchronous", ge=0, pipeline=True),
    Setting("stale_after", 1.0, "seconds without frames after which a camera counts as silent", gt=0, pipeline=True),
    Setting("buffer_size", 4, "frames kept per camera (the oldest is evicted)", ge=1, pipeline=True),
    Setting("publish_segmentation", True, "publish segmentation (needs a model with a segmentation head)",
            pipeline=True),
    Setting("publish_relative_pose", True, "publish relative poses and camera_poses (needs a model with an EPE "
            "head)", pipeline=True),
    Setting("publish_latent_pose", True, "publish each camera's latent pose", offline=True),
    Setting("novel_view_frame_id", "rust_novel_view_optical_frame", "frame id of the novel view", offline=True),
    Setting("input_qos", "sensor_data", "QoS of image subscriptions", choices=QOS),
    Setting("output_qos", "default", "QoS of publishers", choices=QOS),
    Setting("worker_period", 0.005, "seconds between inference worker ticks (a coarse tick makes outputs late)",
            gt=0),
    Setting("diagnostics_period", 1.0, "seconds between /diagnostics messages", gt=0),
    Setting("status_window", 5.0, "seconds of bad frames and failed inference steps that keep /diagnostics at WARN",
            gt=0),
    Setting("input_timeout", 3.0, "seconds after activate after which a camera topic that delivered nothing is "
            "logged with the reason (no publisher, or another message type)", gt=0, live=True),
    Setting("publish_tf", False, "broadcast relative poses as TF <camera>_estimated frames under the reference's "
            "optical frame (needs tf2_ros; never fights URDF extrinsics, which use other frame names)"),
)}
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a float", str: "a string", list: "a list of strings"}


def defaults() -> dict[str, Any]:
    return {name: copy.copy(s.default) for name, s in SETTINGS.items()}


def check(name: str, value: Any) -> Any:
    """`value` for setting `name` as ROS 2 types it (an integer is not a float), or ConfigError."""
    s, kind = SETTINGS[name], type(SETTINGS[name].default)
    if kind is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value) or not value:
            raise ConfigError(f"{name} must be a non-empty list of topic names, got {value!r}")
        if len(set(value)) != len(value):
            raise ConfigError(f"{name} lists a topic twice: {', '.join(value)}")
        return list(value)
    if type(value) is not kind:
        hint = f" (write {value}.0: ROS 2 refuses an integer for a float parameter)" if kind is float and \
            type(value) is int else ""
        raise ConfigError(f"{name} must be {TYPE_NAMES[kind]}, got {value!r}{hint}")
    if s.choices and value not in s.choices or s.gt is not None and not value > s.gt or \
            s.ge is not None and not value >= s.ge:
        raise ConfigError(f"{name}={value!r} is not allowed: it must be {s.constraints}")
    return value


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in `values` checked, each alone and the cameras together; ConfigError with the
    reason otherwise (an unknown name included)."""
    if unknown := sorted(set(values) - set(SETTINGS)):
        raise ConfigError(f"unknown parameter {unknown[0]!r} (rust_node's parameters: {', '.join(SETTINGS)})")
    out = {name: check(name, value) for name, value in values.items()}
    for name in ("reference_camera", "novel_view_camera"):
        if out.get(name) and "camera_topics" in out and out[name] not in out["camera_topics"]:
            raise ConfigError(f"{name} {out[name]!r} is not one of camera_topics ({', '.join(out['camera_topics'])})")
    return out


def params_file_values(path: str | Path) -> dict[str, Any]:
    """The parameters a ROS 2 params file gives a node named rust_node (every key that applies to
    it, the more specific overriding), unchecked. Used by the launch file too."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} cannot be read as a params file ({str(exc).splitlines()[0]})") from None
    values = {}
    for key in PARAMS_FILE_KEYS:
        section = data.get(key) if isinstance(data, dict) else None
        if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict):
            values.update(section["ros__parameters"])
    return values


def _check_and_resolve(self) -> None:
    """Every field checked, and the documented rule in its one place: the reference camera is
    `reference_camera`, else the first of `camera_topics`."""
    validate({s.name: getattr(self, s.name) for s in SETTINGS.values() if s.pipeline})
    self.reference_camera = self.reference_camera or self.camera_topics[0]


# The settings the pipeline reads (validated when made), plus `render`: the node turns the novel
# view off while nobody subscribes to it.
PipelineConfig = dataclasses.make_dataclass(
    "PipelineConfig",
    [(s.name, list[str] if isinstance(s.default, list) else type(s.default),
      dataclasses.field(default_factory=lambda s=s: copy.copy(s.default)))
     for s in SETTINGS.values() if s.pipeline] + [("render", bool, dataclasses.field(default=True))],
    namespace={"__post_init__": _check_and_resolve, "__module__": __name__})


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """PipelineConfig from (validated) settings; the others in `values` are not the pipeline's."""
    return PipelineConfig(**{name: values[name] for name, s in SETTINGS.items() if s.pipeline})
