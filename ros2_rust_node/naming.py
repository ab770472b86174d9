"""Names the node derives from topics (ROS-free, shared by the node and the offline runner)."""

from __future__ import annotations

SUFFIXES = ("compressed", "image_raw", "image_rect", "image_color", "image")


def camera_name(topic: str) -> str:
    """`/rig/cam0/image_raw` → `rig_cam0`: the topic without image suffixes, slashes → underscores."""
    parts = [p for p in topic.strip("/").split("/") if p]
    while len(parts) > 1 and parts[-1] in SUFFIXES:
        parts.pop()
    return "_".join(parts).lstrip("~_") or "camera"


def stamp_to_seconds(stamp) -> float:
    """builtin_interfaces/Time (any class with sec, nanosec) → float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def optical_frame(frame_ids: dict[str, str], topic: str) -> str:
    """A camera's frame id: the `header.frame_id` its driver last stamped its images with (in
    `frame_ids`), or `<camera>_optical_frame` until one with a frame id has arrived."""
    return frame_ids.get(topic) or f"{camera_name(topic)}_optical_frame"


def camera_info_topic(topic: str) -> str:
    """image_transport's convention: the camera_info beside the image topic, its transport suffix
    dropped (`/x/image_raw` and `/x/image_raw/compressed` → `/x/camera_info`)."""
    base = topic.removesuffix("/compressed")
    return base.rsplit("/", 1)[0] + "/camera_info" if "/" in base else "camera_info"
