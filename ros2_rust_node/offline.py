"""`rust_offline`: the node's logic on a recording — rosbag2 in, rosbag2 out, no ROS installed.

    rust_offline --bag rig_bag --model-dir runs/demo/model --out rig_bag_rust
    rust_offline --bag rig_bag --params-file config/node.yaml --out rig_bag_rust

It replays a node configuration: each node parameter its outputs depend on is a flag of the same
name (`render_rate` → `--render-rate`; both come from `rust_perception.node_config`), and
`--params-file` reads the node's ROS params file. A flag overrides the file, the file the node's
defaults, and values are checked as the node checks them (the node's own transport and timer
settings in the file are checked too, but change nothing offline). Camera topics resolve as for a node
without a namespace (`rig/cam0/image_raw` → `/rig/cam0/image_raw`). Without camera_topics every
image topic of the bag with messages is a camera, sorted; the reference camera is, as in the
node, reference_camera or else the first of camera_topics.

Image messages are read in log-time order, decoded and fitted to the model's size like the node
does (`image_codec`), fed to `Pipeline.add_frame(topic, header stamp, rgb, log time)`, and
`Pipeline.step(log time)` runs after every one: the SLSR / pose / render schedule and silence
(a camera whose frames stop) follow bag time as the live node follows its clock, so a run is
reproducible and independent of how fast this machine is. Each camera's camera_info, where the
bag has it, gives the novel view its intrinsics as in the node. Outputs (`outputs.py`, shared
with the node) are written under the node's topic names (namespace /rust_node), stamped with the
frames they were computed from and logged at the bag time they were produced. Frames that cannot
be read (unknown encoding, corrupt data) are counted and skipped.

OUT/summary.json is written (atomically) into the output bag directory after the bag is closed:
rosbags only creates new directories, but rosbag2 readers (rosbags, `ros2 bag`) read only the
files metadata.yaml lists, so the extra file leaves the bag valid and keeps the run in one place.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rust_perception.cli import ArgumentParser, run
from rust_perception.errors import UserError
from rust_perception.node_config import SETTINGS, defaults, params_file_values, validate

from .naming import camera_info_topic
from .outputs import CAMERA_INFO, IMAGE

PROG = "rust_offline"
NODE_NAMESPACE = "/rust_node"  # what "~" in the node's topics means for a node launched without namespace
COMPRESSED = "sensor_msgs/msg/CompressedImage"
FLAGS = [name for name, s in SETTINGS.items() if s.pipeline or s.offline]  # the rest are the node's alone
WARN_PER_TOPIC = 5  # bad-frame warnings printed per topic; later ones are only counted


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--bag", type=Path, required=True, help="input rosbag2 directory (mcap or sqlite3)")
    p.add_argument("--out", type=Path, required=True, help="output rosbag2 directory to create (must not exist)")
    p.add_argument("--params-file", type=Path, help="the node's ROS 2 params file (rust_node: ros__parameters: "
                                                   "...); flags override it")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="output bag storage (default mcap)")
    p.add_argument("--pace", type=float, default=0.0,
                   help="playback speed as a realtime factor (1 = as recorded; default 0: as fast as possible)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    group = p.add_argument_group("node parameters", "the node's parameters of the same names (default: the params "
                                 "file's, else the node's)")
    for name in FLAGS:
        s, flag = SETTINGS[name], "--" + name.replace("_", "-")
        default = "every image topic of the bag, sorted" if name == "camera_topics" else s.default
        text = s.description + (f" (default: {default})" if default != "" else "")
        if isinstance(s.default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
        elif isinstance(s.default, list):
            group.add_argument(flag, nargs="+", metavar="TOPIC", help=text)
        else:
            group.add_argument(flag, type=type(s.default), choices=s.choices or None, help=text)
    return p


def check_args(p: ArgumentParser, args) -> None:
    if args.pace < 0:
        p.error("--pace must be >= 0")
    if not args.bag.is_dir():
        raise UserError(f"{args.bag} is not a rosbag2 directory")
    if args.out.exists():
        raise UserError(f"{args.out} exists already; the output bag must be a new directory "
                        "(delete it or choose another --out)")


def absolute(topic: str) -> str:
    return topic if not topic or topic.startswith("/") else "/" + topic


def node_values(args, connections) -> dict:
    """The node's parameters for this run, checked: its defaults, the params file, the flags."""
    given = params_file_values(args.params_file) if args.params_file else {}
    if args.params_file and not given:
        raise UserError(f"{args.params_file} has no parameters for rust_node (`rust_node: ros__parameters: ...`)")
    given.update({name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None})
    cameras = given["camera_topics"] if "camera_topics" in given else image_topics(connections)
    values = validate({**defaults(), **given, "camera_topics": cameras})
    values["camera_topics"] = [absolute(t) for t in values["camera_topics"]]
    values["reference_camera"], values["novel_view_camera"] = (absolute(values[k]) for k in
                                                               ("reference_camera", "novel_view_camera"))
    if not values["model_dir"]:
        raise UserError("no model: give --model-dir, or a --params-file that sets model_dir")
    check_cameras(connections, values["camera_topics"])
    return values


def image_topics(connections) -> list[str]:
    """Every image topic of the bag with messages, sorted."""
    topics = sorted({c.topic for c in connections if c.msgtype in (IMAGE, COMPRESSED) and c.msgcount})
    if not topics:
        raise UserError(f"the bag has no {IMAGE} or {COMPRESSED} messages "
                        f"(topics: {', '.join(sorted({c.topic for c in connections})) or 'none'})")
    return topics


def check_cameras(connections, cameras: list[str]) -> None:
    """Each camera topic is an image topic of the bag with messages."""
    types, counts = {c.topic: c.msgtype for c in connections}, Counter()
    for c in connections:
        counts[c.topic] += c.msgcount
    images = sorted(t for t, m in types.items() if m in (IMAGE, COMPRESSED))
    for topic in cameras:
        if topic not in types:
            raise UserError(f"camera topic {topic} is not in the bag (image topics: {', '.join(images) or 'none'})")
        if topic not in images:
            raise UserError(f"camera topic {topic} has type {types[topic]}, not {IMAGE} or {COMPRESSED}")
        if not counts[topic]:
            raise UserError(f"camera topic {topic} has no messages in the bag")


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

    from rust_perception.image_codec import model_input
    from rust_perception.io import write_json
    from rust_perception.node_config import pipeline_config
    from rust_perception.runtime import create_engine
    from rust_perception.scene_memory import LatencyStats, Pipeline

    from .outputs import Adapter

    typestore = get_typestore(Stores.ROS2_JAZZY)
    try:
        reader = AnyReader([args.bag], default_typestore=typestore)
        reader.open()
    except (AnyReaderError, OSError) as exc:
        raise UserError(f"{args.bag} cannot be read as a rosbag2 ({str(exc).splitlines()[0]})") from None
    try:
        values = node_values(args, reader.connections)
        cfg = pipeline_config(values)
        cameras = cfg.camera_topics
        engine = create_engine(values["model_dir"], values["backend"], threads=values["threads"])
        pipeline = Pipeline(engine, cfg)
        pipeline.latency = LatencyStats(window=None)  # keep every sample: the summary reports p50 / p99
        adapter = Adapter(lambda msgtype, /, **fields: typestore.types[msgtype](**fields), cfg, values, engine.meta)
        topics = {key: topic.replace("~", NODE_NAMESPACE, 1) for key, topic in adapter.topics.items()}
        infos = {camera_info_topic(c): c for c in cameras}  # camera_info topic → its camera
        connections = [c for c in reader.connections
                       if c.topic in cameras or c.topic in infos and c.msgtype == CAMERA_INFO]
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
                    bar.update()
                    topic, t0 = conn.topic, time.perf_counter()
                    frames_in[topic] += 1
                    try:  # anything a corrupt or unsupported message raises: count it, skip it, go on
                        msg = reader.deserialize(raw, conn.msgtype)
                        if topic in infos:
                            adapter.camera_info[infos[topic]] = msg
                            continue
                        rgb = model_input(msg, conn.msgtype == COMPRESSED, engine.size)
                        stamp = adapter.remember(topic, msg.header)
                    except Exception as exc:  # noqa: BLE001
                        bad[topic] += 1
                        if bad[topic] <= WARN_PER_TOPIC:
                            more = "; further bad frames on it are only counted" if bad[topic] == WARN_PER_TOPIC else ""
                            tqdm.write(f"{PROG}: warning: {topic}: message at {log_ns} ns skipped "
                                       f"({type(exc).__name__}: {str(exc)[:200]}){more}", file=sys.stderr)
                    else:
                        pipeline.latency.add("decode", time.perf_counter() - t0)
                        pipeline.add_frame(topic, stamp, rgb, log_ns * 1e-9)
                    t0 = time.perf_counter()
                    out = pipeline.step(log_ns * 1e-9)
                    pipeline.latency.add("step", time.perf_counter() - t0)
                    encodes += out.encoded
                    if out.stamp:
                        for key, camera, message in adapter.messages(out):
                            bag.write(topics[key, camera], log_ns, message)
            except KeyboardInterrupt:  # keep what was done: close the bag, write the summary, then stop
                interrupted = True
            finally:
                bar.close()
        stats = pipeline.memory.stats()
        summary = {
            "bag": str(args.bag), "out": str(args.out), "storage": args.storage, "model_dir": values["model_dir"],
            "backend": engine.name, "cameras": cameras, "reference": cfg.reference_camera,
            "frames_in": {t: frames_in[t] for t in cameras},
            "evicted_unused": {t: stats[t]["evicted"] for t in cameras},
            "out_of_order": {t: stats[t]["out_of_order"] for t in cameras},
            "time_resets": {t: stats[t]["time_resets"] for t in cameras},  # stamps jumped back > stale_after
            "bad_frames": {t: bad[t] for t in cameras},
            "encodes": encodes,
            "views_rendered": bag.counts[topics["novel_view", ""]],
            "outputs": dict(sorted(bag.counts.items())),
            "latency_ms": percentiles(pipeline.latency.samples),
            "bag_seconds": round((last_ns - first_ns) * 1e-9, 6) if first_ns is not None else 0.0,
            "wall_seconds": round(time.perf_counter() - start, 3),
            "interrupted": interrupted,
            "parameters": values,
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
