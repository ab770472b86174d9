"""The node's outputs, declared once — topic, message type, the parameter that switches it on —
with one function filling each, for `rust_node` (publishers) and `rust_offline` (the output bag),
which used to build them by hand and drifted apart. ROS-free: messages are made by the caller's
`new(type name, **fields)` — rclpy's classes in the node, a rosbags typestore's offline — and are
given every field, the one form both accept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from rust_perception.errors import ConfigError
from rust_perception.image_codec import fill_image_msg

from .markers import ADD, camera_markers, quaternion
from .naming import camera_name, optical_frame, stamp_to_seconds

IMAGE, CAMERA_INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
NO_BYTES = np.zeros(0, np.uint8)


@dataclass(frozen=True)
class Output:
    topic: str  # "~/…": under the node's name; "{camera}": one per camera (its camera_name)
    msgtype: str
    switch: str = ""  # the parameter that turns it on
    head: str = ""  # the model head it needs (a metadata flag)
    reference: bool = True  # whether the reference camera has one (relative poses are relative to it)


OUTPUTS = {
    "novel_view": Output("~/novel_view/image", IMAGE),
    "novel_view_info": Output("~/novel_view/camera_info", CAMERA_INFO),
    "latent_pose": Output("~/latent_pose/{camera}", "sensor_msgs/msg/JointState", "publish_latent_pose"),
    "relative_pose": Output("~/relative_pose/{camera}", "geometry_msgs/msg/PoseWithCovarianceStamped",
                            "publish_relative_pose", "epe", reference=False),
    "camera_poses": Output("~/camera_poses", "visualization_msgs/msg/MarkerArray", "publish_relative_pose", "epe"),
    "segmentation": Output("~/segmentation/{camera}/image", IMAGE, "publish_segmentation", "segmentation"),
    "segmentation_color": Output("~/segmentation/{camera}/color", IMAGE, "publish_segmentation", "segmentation"),
    "diagnostics": Output("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),  # offline: summary.json instead
}


def output_topics(cameras: list[str], reference: str, values: Mapping, meta: Mapping) -> dict[tuple[str, str], str]:
    """(output key, camera or "") → topic, for every output its switch and the model's heads turn
    on; ConfigError when two cameras would share output topics."""
    names = {}
    for camera in cameras:
        if (other := names.setdefault(camera_name(camera), camera)) != camera:
            raise ConfigError(f"camera topics {other} and {camera} would share the output name {camera_name(camera)}")
    topics = {}
    for key, output in OUTPUTS.items():
        if (output.switch and not values[output.switch]) or (output.head and not meta[output.head]):
            continue
        if "{camera}" not in output.topic:
            topics[key, ""] = output.topic
            continue
        for camera in cameras:
            if output.reference or camera != reference:
                topics[key, camera] = output.topic.format(camera=camera_name(camera))
    return topics


class Adapter:
    """Pipeline `Outputs` → (output key, camera, message), keeping what both callers must keep
    alike: each camera's frame id and exact stamps (outputs carry their input's stamp unrounded)
    and camera_info. Used from one thread (the node's inference worker, which also decodes the
    frames; the offline loop); camera_info is set by subscription callbacks, one dict item each."""

    def __init__(self, new: Callable[..., object], cfg, values: Mapping, meta: Mapping):
        self.new, self.cfg = new, cfg
        self.topics = output_topics(cfg.camera_topics, cfg.reference_camera, values, meta)
        self.novel_view_frame_id = values["novel_view_frame_id"]
        self.palette = np.zeros((256, 3), np.uint8)
        for c in meta.get("classes") or ():
            self.palette[int(c["id"])] = c["color"]
        self.frame_ids: dict[str, str] = {}  # camera → its images' latest header.frame_id
        self.camera_info: dict[str, object] = {}  # camera → its latest CameraInfo
        self.exact: OrderedDict[float, tuple[int, int]] = OrderedDict()  # float stamp → (sec, nanosec)

    def remember(self, camera: str, header) -> float:
        """A frame's header stamp → float seconds, remembering the exact stamp and its camera's frame id."""
        seconds = stamp_to_seconds(header.stamp)
        if header.frame_id:
            self.frame_ids[camera] = header.frame_id
        self.exact[seconds] = (int(header.stamp.sec), int(header.stamp.nanosec))
        while len(self.exact) > 4096:
            self.exact.popitem(last=False)
        return seconds

    def messages(self, out, wanted: Callable[[str, str], bool] = lambda key, camera: True) -> Iterator[tuple]:
        """(key, camera, message) for every output in `out` whose topic is on and `wanted`."""
        def want(key: str, camera: str = "") -> bool:
            return (key, camera) in self.topics and wanted(key, camera)

        if out.novel_view is not None:
            image = self.novel_view(out)
            if want("novel_view"):
                yield "novel_view", "", image
            if want("novel_view_info"):
                yield "novel_view_info", "", self.novel_view_info(out, image)
        for camera in out.latent_poses:
            if want("latent_pose", camera):
                yield "latent_pose", camera, self.latent_pose(out, camera)
        for camera in out.relative_poses:
            if want("relative_pose", camera):
                yield "relative_pose", camera, self.relative_pose(out, camera)
        if out.relative_poses and want("camera_poses"):
            yield "camera_poses", "", self.camera_poses(out)
        for camera in out.segmentation:
            if want("segmentation", camera):
                yield "segmentation", camera, self.segmentation(out, camera)
            if want("segmentation_color", camera):
                yield "segmentation_color", camera, self.segmentation_color(out, camera)

    # ------------------------------------------------------------------ one function per output
    def novel_view(self, out):
        """Stamped with the SLSR's reference frame, in `novel_view_frame_id`."""
        return self.image(self.header(out.stamp, self.novel_view_frame_id), out.novel_view, "rgb8")

    def novel_view_info(self, out, image):
        """The intrinsics of the camera the view starts from, scaled to the render size when it
        publishes camera_info; otherwise K = 0 (ROS: uncalibrated) — RUST itself never knows them."""
        k, distortion = np.zeros(9), ""
        ref = self.camera_info.get(out.novel_camera)
        if ref is not None and ref.width and ref.height:
            s = min(ref.width, ref.height)  # the model sees the centre square
            k = np.array(ref.k, float).reshape(3, 3)
            k[0, 2] -= (ref.width - s) / 2
            k[1, 2] -= (ref.height - s) / 2
            k[:2] *= image.width / s
            k, distortion = k.ravel(), ref.distortion_model
        roi = self.new("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.new(CAMERA_INFO, header=image.header, height=image.height, width=image.width,
                        distortion_model=distortion, d=np.zeros(0), k=k, r=np.zeros(9), p=np.zeros(12),
                        binning_x=0, binning_y=0, roi=roi)

    def latent_pose(self, out, camera: str):
        """The 8-d latent pose in `position` (names z0…), stamped with the frame it came from."""
        latent = np.asarray(out.latent_poses[camera], np.float64).ravel()
        return self.new("sensor_msgs/msg/JointState", header=self.camera_header(out, camera),
                        name=[f"z{i}" for i in range(len(latent))], position=latent, velocity=np.zeros(0),
                        effort=np.zeros(0))

    def relative_pose(self, out, camera: str):
        """The camera's pose in the reference optical frame (identity orientation when the EPE
        head predicts no rotation); covariance zero: unknown."""
        rel = out.relative_poses[camera]
        header = self.header(out.frame_stamps[camera], optical_frame(self.frame_ids, self.cfg.reference_camera))
        pose = self.pose(tuple(float(v) for v in rel["position"]), quaternion(rel.get("rotation")))
        return self.new("geometry_msgs/msg/PoseWithCovarianceStamped", header=header,
                        pose=self.new("geometry_msgs/msg/PoseWithCovariance", pose=pose, covariance=np.zeros(36)))

    def camera_poses(self, out):
        """Arrows and names of the cameras at their estimated poses, in the reference camera's
        frame; they expire after two pose periods, so cameras that stop being estimated vanish."""
        reference = self.cfg.reference_camera
        header = self.camera_header(out, reference)
        seconds = 2.0 / self.cfg.pose_rate
        lifetime = self.new("builtin_interfaces/msg/Duration", sec=int(seconds), nanosec=int(seconds % 1 * 1e9))
        markers = []
        for m in camera_markers(out.relative_poses, self.cfg.camera_topics, reference):
            (sx, sy, sz), (r, g, b, a) = m["scale"], m["color"]
            markers.append(self.new(
                "visualization_msgs/msg/Marker", header=header, ns=m["ns"], id=m["id"], type=m["type"], action=ADD,
                pose=self.pose(m["position"], m["orientation"]),
                scale=self.new("geometry_msgs/msg/Vector3", x=sx, y=sy, z=sz),
                color=self.new("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=a), lifetime=lifetime, frame_locked=False,
                points=[], colors=[], texture_resource="",
                texture=self.new("sensor_msgs/msg/CompressedImage", header=header, format="", data=NO_BYTES),
                uv_coordinates=[], text=m["text"], mesh_resource="",
                mesh_file=self.new("visualization_msgs/msg/MeshFile", filename="", data=NO_BYTES),
                mesh_use_embedded_materials=False))
        return self.new("visualization_msgs/msg/MarkerArray", markers=markers)

    def segmentation(self, out, camera: str):
        """Class ids (mono8) in the camera's frame."""
        return self.image(self.camera_header(out, camera), out.segmentation[camera], "mono8")

    def segmentation_color(self, out, camera: str):
        """Class colours (rgb8) in the camera's frame."""
        return self.image(self.camera_header(out, camera), self.palette[out.segmentation[camera]], "rgb8")

    # ------------------------------------------------------------------ parts
    def header(self, seconds: float, frame_id: str):
        exact = self.exact.get(seconds)
        sec, nanosec = exact or divmod(round(seconds * 1e9), 10**9)
        return self.new("std_msgs/msg/Header", frame_id=frame_id,
                        stamp=self.new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec))

    def camera_header(self, out, camera: str):
        """Stamped with the camera's frame the output came from, in its optical frame."""
        return self.header(out.frame_stamps[camera], optical_frame(self.frame_ids, camera))

    def image(self, header, array: np.ndarray, encoding: str):
        msg = fill_image_msg(self.new(IMAGE, header=header, height=0, width=0, encoding="", is_bigendian=0, step=0,
                                      data=NO_BYTES), array, encoding)
        if isinstance(msg.data, bytes):  # rclpy stores bytes as array.array; rosbags as given, but serializes arrays
            msg.data = np.frombuffer(msg.data, np.uint8)
        return msg

    def pose(self, position, orientation):
        (px, py, pz), (qx, qy, qz, qw) = position, orientation
        return self.new("geometry_msgs/msg/Pose", position=self.new("geometry_msgs/msg/Point", x=px, y=py, z=pz),
                        orientation=self.new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw))
