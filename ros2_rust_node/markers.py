"""Estimated camera poses drawn for rviz (ROS-free, shared by the node and the offline runner):
one arrow per camera along its optical axis (+z of an optical frame) and its name, in the
reference camera's optical frame, so the rig shows without TF."""

from __future__ import annotations

import numpy as np

from .naming import camera_name

ARROW_LENGTH, ARROW_SHAFT, ARROW_HEAD, TEXT_HEIGHT = 0.3, 0.03, 0.06, 0.08
ARROW, TEXT_VIEW_FACING, ADD = 0, 9, 0  # visualization_msgs/Marker types, and its action
# an arrow points along its own +x; a camera looks along its optical frame's +z: rotate -90° about y
X_TO_Z = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def quaternion(rotation) -> tuple[float, float, float, float]:
    """A rotation matrix (or None: unknown, the EPE head predicts none) → (x, y, z, w)."""
    if rotation is None:
        return 0.0, 0.0, 0.0, 1.0
    from transforms3d.quaternions import mat2quat

    w, x, y, z = (float(v) for v in mat2quat(np.asarray(rotation, float)))
    return x, y, z, w


def camera_markers(relative_poses: dict[str, dict], cameras: list[str], reference: str) -> list[dict]:
    """Marker fields per camera (the reference at the origin, then each camera with a relative
    pose): an arrow (namespace "cameras") and its name (namespace "names"), ids = rig order."""
    poses = {reference: {"position": np.zeros(3), "rotation": np.eye(3)}, **relative_poses}
    out = []
    for index, camera in enumerate(cameras):
        if camera not in poses:
            continue
        position = tuple(float(v) for v in poses[camera]["position"])
        rotation = poses[camera]["rotation"]
        colour = (1.0, 0.3, 0.1, 1.0) if camera == reference else (0.1, 0.6, 1.0, 1.0)
        out.append({"ns": "cameras", "id": index, "type": ARROW, "position": position,
                    "orientation": quaternion(np.asarray(rotation if rotation is not None else np.eye(3)) @ X_TO_Z),
                    "scale": (ARROW_LENGTH, ARROW_SHAFT, ARROW_HEAD), "color": colour, "text": ""})
        out.append({"ns": "names", "id": index, "type": TEXT_VIEW_FACING, "position": position,
                    "orientation": (0.0, 0.0, 0.0, 1.0), "scale": (0.0, 0.0, TEXT_HEIGHT), "color": colour,
                    "text": camera_name(camera)})
    return out
