"""`rust_offline`: the node's logic on a recording — rosbag2 in, rosbag2 out, no ROS installed.

    rust_offline --bag rig_bag --model-dir runs/demo/model --out rig_bag_rust

Image messages are read in log-time order, decoded and fitted to the model's size like the node
does (`image_codec`), fed to `Pipeline.add_frame(topic, header stamp, rgb, log time)`, and
`Pipeline.step(log time)` runs after every message: the SLSR / pose / render schedule and silence
(a camera whose frames stop) follow bag time as the live node follows its clock, so a run is
reproducible and independent of how fast this machine is. Outputs are written under the node's topic names (namespace /rust_node),
stamped with the reference frame they were computed from and logged at the bag time they were
produced. Frames that cannot be read (unknown encoding, corrupt data) are counted and skipped.

OUT/summary.json is written (atomically) into the output bag directory after the bag is closed:
rosbags only creates new directories, but rosbag2 readers (rosbags, `ros2 bag`) read only the
files metadata.yaml lists, so the extra file leaves the bag valid and keeps the run in one place.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np

from rust_perception.cli import ArgumentParser, run
from rust_perception.errors import UserError

from .markers import camera_markers, quaternion
from .naming import camera_name, optical_frame, reference_camera, stamp_to_seconds

PROG = "rust_offline"
NAMESPACE = "/rust_node"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
NOVEL_VIEW_FRAME = "rust_novel_view_optical_frame"  # the node's default novel_view_frame_id
MOTIONS = ("none", "up", "closer", "rotate", "forward", "traversal")
WARN_PER_TOPIC = 5  # bad-frame warnings printed per topic; later ones are only counted


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--bag", type=Path, required=True, help="input rosbag2 directory (mcap or sqlite3)")
    p.add_argument("--model-dir", type=Path, required=True, help="model directory written by trainer/export.py")
    p.add_argument("--out", type=Path, required=True, help="output rosbag2 directory to create (must not exist)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="output bag storage (default mcap)")
    p.add_argument("--cameras", nargs="+", metavar="TOPIC",
                   help="image topics (default: every Image / CompressedImage topic with messages, sorted)")
    p.add_argument("--reference", metavar="TOPIC", help="reference camera topic (default, as the node's: the first "
                                                         "of --cameras)")
    p.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime", "torch"), default="auto",
                   help="inference backend (default auto)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads of the engine (default 0: its default)")
    p.add_argument("--pace", type=float, default=0.0,
                   help="playback speed as a realtime factor (1 = as recorded; default 0: as fast as possible)")
    p.add_argument("--slsr-period", type=float, default=0.5, help="seconds between SLSR re-encodes (default 0.5)")
    p.add_argument("--render-rate", type=float, default=2.0, help="novel views per second (default 2)")
    p.add_argument("--render-size", type=int, default=0, help="novel-view size in pixels (default 0: the model's)")
    p.add_argument("--pose-rate", type=float, default=2.0,
                   help="latent / relative poses and segmentation per second (default 2)")
    p.add_argument("--novel-view-motion", choices=MOTIONS, default="none",
                   help="where the novel view looks from, relative to the reference camera (default none)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def check_args(p: ArgumentParser, args) -> None:
    if args.pace < 0 or args.threads < 0 or args.render_size < 0:
        p.error("--pace, --threads and --render-size must be >= 0")
    if args.slsr_period <= 0 or args.render_rate <= 0 or args.pose_rate <= 0:
        p.error("--slsr-period, --render-rate and --pose-rate must be > 0")
    if not args.bag.is_dir():
        raise UserError(f"{args.bag} is not a rosbag2 directory")
    if args.out.exists():
        raise UserError(f"{args.out} exists already; the output bag must be a new directory "
                        "(delete it or choose another --out)")


def select_cameras(connections, cameras: list[str] | None, reference: str | None) -> tuple[list[str], str]:
    """The camera topics and the reference, checked against the bag's topics."""
    types, counts = {c.topic: c.msgtype for c in connections}, Counter()
    for c in connections:
        counts[c.topic] += c.msgcount
    images = sorted(t for t, m in types.items() if m in (IMAGE, COMPRESSED))
    if cameras is None:  # every image topic that has frames; an empty one named in --cameras is an error
        cameras = [t for t in images if counts[t]]
        if not cameras:
            raise UserError(f"the bag has no {IMAGE} or {COMPRESSED} messages (topics: {', '.join(sorted(types)) or 'none'})")
    for topic in cameras:
        if topic not in types:
            raise UserError(f"camera topic {topic} is not in the bag (image topics: {', '.join(images) or 'none'})")
        if topic not in images:
            raise UserError(f"camera topic {topic} has type {types[topic]}, not {IMAGE} or {COMPRESSED}")
        if not counts[topic]:
            raise UserError(f"camera topic {topic} has no messages in the bag")
    if len(set(cameras)) != len(cameras):
        raise UserError(f"--cameras lists a topic twice: {' '.join(cameras)}")
    names = Counter(camera_name(t) for t in cameras)
    if clash := [t for t in cameras if names[camera_name(t)] > 1]:
        raise UserError(f"camera topics {', '.join(clash)} would share the output name {camera_name(clash[0])}")
    reference = reference_camera(cameras, reference or "")
    if reference not in cameras:
        raise UserError(f"--reference {reference} is not one of the cameras ({', '.join(cameras)})")
    return list(cameras), reference


class OutputBag:
    """A rosbags Writer that adds a connection on a topic's first message and counts messages."""

    def __init__(self, path: Path, storage: str, typestore):
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        self.writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self.typestore, self.connections, self.counts = typestore, {}, Counter()

    def __enter__(self):
        self.writer.open()
        return self

    def __exit__(self, *exc):
        self.writer.close()

    def write(self, topic: str, log_ns: int, msg) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msg.__msgtype__, typestore=self.typestore)
        self.writer.write(self.connections[topic], log_ns, self.typestore.serialize_cdr(msg, msg.__msgtype__))
        self.counts[topic] += 1


class Converter:
    """`Outputs` → (topic, message) in the node's topic names, frames and encodings."""

    def __init__(self, types, cameras: list[str], reference: str, classes: list[dict], pose_rate: float):
        self.types, self.cameras, self.reference, self.pose_rate = types, cameras, reference, pose_rate
        self.frame_ids: dict[str, str] = {}  # topic → its images' latest header.frame_id, as the node keeps
        self.palette = np.zeros((256, 3), np.uint8)
        for c in classes:
            self.palette[int(c["id"])] = c["color"]
        self.exact: OrderedDict[float, tuple[int, int]] = OrderedDict()  # float stamp → (sec, nanosec)

    def remember(self, topic: str, header) -> float:
        """Header stamp → float seconds, remembering the exact stamp so outputs carry it unrounded,
        and the camera's frame id for its outputs."""
        if header.frame_id:
            self.frame_ids[topic] = header.frame_id
        stamp = header.stamp
        seconds = stamp_to_seconds(stamp)
        self.exact[seconds] = (int(stamp.sec), int(stamp.nanosec))
        while len(self.exact) > 4096:
            self.exact.popitem(last=False)
        return seconds

    def header(self, seconds: float, frame_id: str):
        sec, nanosec = self.exact.get(seconds) or divmod(round(seconds * 1e9), 10**9)
        t = self.types
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)

    def image(self, header, array: np.ndarray, encoding: str):
        from rust_perception.image_codec import fill_image_msg

        msg = fill_image_msg(self.types[IMAGE](header=header, height=0, width=0, encoding="", is_bigendian=0, step=0,
                                               data=np.zeros(0, np.uint8)), array, encoding)
        if not isinstance(msg.data, np.ndarray):  # rosbags' serializer wants uint8[] as an array
            msg.data = np.frombuffer(bytes(msg.data), np.uint8)
        return msg

    def messages(self, out):
        """The node's messages, stamped as it stamps them: the novel view with its SLSR's reference
        frame, per-camera outputs with the frame they were computed from."""
        t, ns = self.types, NAMESPACE
        if out.novel_view is not None:
            yield f"{ns}/novel_view/image", self.image(self.header(out.stamp, NOVEL_VIEW_FRAME), out.novel_view, "rgb8")
        for topic, latent in out.latent_poses.items():
            latent = np.asarray(latent, np.float64).ravel()
            yield (f"{ns}/latent_pose/{camera_name(topic)}", t["sensor_msgs/msg/JointState"](
                header=self.header(out.frame_stamps[topic], optical_frame(self.frame_ids, topic)),
                name=[f"z{i}" for i in range(len(latent))], position=latent, velocity=np.zeros(0), effort=np.zeros(0)))
        for topic, rel in out.relative_poses.items():
            yield f"{ns}/relative_pose/{camera_name(topic)}", self.pose(out.frame_stamps[topic], rel)
        if out.relative_poses:
            yield f"{ns}/camera_poses", self.markers(out)
        for topic, labels in out.segmentation.items():
            name = camera_name(topic)
            header = self.header(out.frame_stamps[topic], optical_frame(self.frame_ids, topic))
            yield f"{ns}/segmentation/{name}/image", self.image(header, labels, "mono8")
            yield f"{ns}/segmentation/{name}/color", self.image(header, self.palette[labels], "rgb8")

    def pose(self, stamp: float, rel: dict):
        """View's pose in the reference optical frame; identity orientation when the EPE head
        predicts no rotation. Covariance stays zero (unknown), as the live node publishes it."""
        t = self.types
        x, y, z, w = quaternion(rel.get("rotation"))
        px, py, pz = (float(v) for v in rel["position"])
        pose = t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](x=px, y=py, z=pz),
                                           orientation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w))
        return t["geometry_msgs/msg/PoseWithCovarianceStamped"](
            header=self.header(stamp, optical_frame(self.frame_ids, self.reference)),
            pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)))

    def markers(self, out):
        """The node's camera_poses MarkerArray: arrows and names in the reference optical frame,
        expiring after two pose periods."""
        t = self.types
        header = self.header(out.frame_stamps[self.reference], optical_frame(self.frame_ids, self.reference))
        seconds = 2.0 / self.pose_rate
        lifetime = t["builtin_interfaces/msg/Duration"](sec=int(seconds), nanosec=int(seconds % 1 * 1e9))
        markers = []
        for m in camera_markers(out.relative_poses, self.cameras, self.reference):
            (px, py, pz), (qx, qy, qz, qw) = m["position"], m["orientation"]
            pose = t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](x=px, y=py, z=pz),
                                               orientation=t["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw))
            sx, sy, sz = m["scale"]
            r, g, b, a = m["color"]
            markers.append(t["visualization_msgs/msg/Marker"](
                header=header, ns=m["ns"], id=m["id"], type=m["type"], action=0, pose=pose,
                scale=t["geometry_msgs/msg/Vector3"](x=sx, y=sy, z=sz), color=t["std_msgs/msg/ColorRGBA"](r=r, g=g, b=b, a=a),
                lifetime=lifetime, frame_locked=False, points=[], colors=[], texture_resource="",
                texture=t["sensor_msgs/msg/CompressedImage"](header=header, format="", data=np.zeros(0, np.uint8)),
                uv_coordinates=[], text=m["text"], mesh_resource="",
                mesh_file=t["visualization_msgs/msg/MeshFile"](filename="", data=np.zeros(0, np.uint8)),
                mesh_use_embedded_materials=False))
        return t["visualization_msgs/msg/MarkerArray"](markers=markers)


def decode(msg, msgtype: str, size: int) -> np.ndarray:
    from rust_perception.image_codec import (
        compressed_to_rgb8,
        image_msg_to_rgb8,
        resize_rgb,
    )

    rgb = compressed_to_rgb8(msg) if msgtype == COMPRESSED else image_msg_to_rgb8(msg)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("image is empty (0 pixels)")
    return resize_rgb(rgb, size)


def percentiles(samples: dict) -> dict[str, dict[str, float]]:
    return {stage: {"p50_ms": round(float(np.percentile(v, 50)), 3), "p99_ms": round(float(np.percentile(v, 99)), 3),
                    "n": len(v)} for stage, v in sorted(samples.items()) if len(v)}


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    check_args(p, args)
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.typesys import Stores, get_typestore
    from tqdm import tqdm

    from rust_perception.io import write_json
    from rust_perception.runtime import create_engine
    from rust_perception.scene_memory import LatencyStats, Pipeline, PipelineConfig

    typestore = get_typestore(Stores.ROS2_JAZZY)
    try:
        reader = AnyReader([args.bag], default_typestore=typestore)
        reader.open()
    except (AnyReaderError, OSError) as exc:
        raise UserError(f"{args.bag} cannot be read as a rosbag2 ({str(exc).splitlines()[0]})") from None
    try:
        cameras, reference = select_cameras(reader.connections, args.cameras, args.reference)
        engine = create_engine(args.model_dir, args.backend, threads=args.threads)
        pipeline = Pipeline(engine, PipelineConfig(
            cameras=cameras, reference_camera=reference, slsr_period=args.slsr_period, render_rate=args.render_rate,
            render_size=args.render_size, pose_rate=args.pose_rate, novel_view_motion=args.novel_view_motion))
        pipeline.latency = LatencyStats(window=None)  # keep every sample: the summary reports p50 / p99
        convert = Converter(typestore.types, cameras, reference, engine.meta.get("classes", []), args.pose_rate)
        connections = [c for c in reader.connections if c.topic in cameras]
        frames_in, bad, encodes = Counter(), Counter(), 0
        first_ns = last_ns = None
        start = time.perf_counter()
        interrupted = False
        with OutputBag(args.out, args.storage, typestore) as bag:
            bar = tqdm(total=sum(c.msgcount for c in connections), unit="msg", desc=PROG,
                       disable=True if args.quiet else None, dynamic_ncols=True)
            try:
                for conn, log_ns, raw in reader.messages(connections=connections):
                    first_ns = log_ns if first_ns is None else first_ns
                    last_ns = log_ns
                    if args.pace > 0:
                        ahead = (log_ns - first_ns) * 1e-9 / args.pace - (time.perf_counter() - start)
                        if ahead > 0:
                            time.sleep(ahead)
                    topic = conn.topic
                    frames_in[topic] += 1
                    t0 = time.perf_counter()
                    try:  # anything a corrupt or unsupported message raises: count it, skip it, go on
                        msg = reader.deserialize(raw, conn.msgtype)
                        rgb = decode(msg, conn.msgtype, engine.size)
                        stamp = convert.remember(topic, msg.header)
                    except Exception as exc:  # noqa: BLE001
                        bad[topic] += 1
                        if bad[topic] <= WARN_PER_TOPIC:
                            more = "; further bad frames on it are only counted" if bad[topic] == WARN_PER_TOPIC else ""
                            tqdm.write(f"{PROG}: warning: {topic}: frame at {log_ns} ns skipped "
                                       f"({type(exc).__name__}: {str(exc)[:200]}){more}", file=sys.stderr)
                    else:
                        pipeline.latency.add("decode", time.perf_counter() - t0)
                        pipeline.add_frame(topic, stamp, rgb, log_ns * 1e-9)
                    t0 = time.perf_counter()
                    out = pipeline.step(log_ns * 1e-9)
                    pipeline.latency.add("step", time.perf_counter() - t0)
                    encodes += out.encoded
                    if out.stamp:
                        for name, message in convert.messages(out):
                            bag.write(name, log_ns, message)
                    bar.update()
            except KeyboardInterrupt:  # keep what was done: close the bag, write the summary, then stop
                interrupted = True
            finally:
                bar.close()
        stats = pipeline.memory.stats()
        summary = {
            "bag": str(args.bag), "out": str(args.out), "storage": args.storage, "model_dir": str(args.model_dir),
            "backend": engine.name, "cameras": cameras, "reference": reference,
            "frames_in": {t: frames_in[t] for t in cameras},
            "evicted_unused": {t: stats[t]["evicted"] for t in cameras},
            "out_of_order": {t: stats[t]["out_of_order"] for t in cameras},
            "time_resets": {t: stats[t]["time_resets"] for t in cameras},  # stamps jumped back > stale_after
            "bad_frames": {t: bad[t] for t in cameras},
            "encodes": encodes,
            "views_rendered": bag.counts[f"{NAMESPACE}/novel_view/image"],
            "outputs": dict(sorted(bag.counts.items())),
            "latency_ms": percentiles(pipeline.latency.samples),
            "bag_seconds": round((last_ns - first_ns) * 1e-9, 6) if first_ns is not None else 0.0,
            "wall_seconds": round(time.perf_counter() - start, 3),
            "interrupted": interrupted,
        }
    finally:
        reader.close()
    write_json(args.out / "summary.json", summary)
    print(json.dumps(summary))
    if interrupted:
        raise KeyboardInterrupt
    return 0


def entry() -> int:
    return run(main, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(entry())
