"""`make_rig_bag`: a synthetic six-camera rig recording (rosbag2) to try the node without a robot.

Street scenes (`SyntheticConfig(kind="street", views=18)`: 3 rig positions) are played one after
another; each rig position is one capture: six `sensor_msgs/msg/Image` on `/rig/cam{i}/image_raw`
(frame `cam{i}_optical_frame`), stamped at the capture time plus a small per-camera jitter, as
unsynchronised hardware would, captures `1/rate` s apart. No ROS needed (rosbags writes the bag).

    python -m ros2_rust_node.make_rig_bag --out rig_bag --scenes 2 --size 64
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rust_perception.cli import ArgumentParser, run

PROG = "make_rig_bag"
CAMERAS = 6
POSITIONS = 3  # views=18 → 3 rig positions of 6 cameras
START_NS = 1_700_000_000 * 10**9  # an epoch-like start, so stamps look like a real recording
MAX_JITTER_NS = 5_000_000


def topic(camera: int) -> str:
    return f"/rig/cam{camera}/image_raw"


def rig_messages(scenes: int = 2, size: int = 64, rate_hz: float = 10.0, seed: int = 0, encoding: str = "rgb8",
                 typestore=None) -> Iterator[tuple[str, int, object]]:
    """(topic, log time ns, sensor_msgs/msg/Image) in log-time order; log time = header stamp.

    Jitter is at most 5 ms and under a quarter of the capture period, so captures never
    interleave and sorting within a capture keeps the whole stream ordered."""
    from rosbags.typesys import Stores, get_typestore

    from rust_perception.data.synthetic import SyntheticConfig, generate_scene
    from rust_perception.image_codec import fill_image_msg

    if rate_hz <= 0:
        raise ValueError(f"rate_hz={rate_hz} must be > 0")
    if encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"encoding={encoding!r} must be rgb8 or bgr8")
    types = (typestore or get_typestore(Stores.ROS2_JAZZY)).types
    cfg = SyntheticConfig(kind="street", scenes=scenes, views=CAMERAS * POSITIONS, size=size, seed=seed)
    period = round(1e9 / rate_hz)
    jitter = min(MAX_JITTER_NS, period // 4)
    rng = np.random.default_rng(seed)
    capture = 0
    for index in range(scenes):
        scene = generate_scene(cfg, "train", index)
        for position in range(POSITIONS):
            t = START_NS + capture * period
            batch = []
            for camera in range(CAMERAS):
                view = int(np.flatnonzero((scene["view_position"] == position) & (scene["view_camera"] == camera))[0])
                rgb = scene["rgb"][view]
                stamp = t + int(rng.integers(-jitter, jitter + 1))
                header = types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                    frame_id=f"cam{camera}_optical_frame")
                msg = types["sensor_msgs/msg/Image"](header=header, height=0, width=0, encoding="", is_bigendian=0,
                                                     step=0, data=np.zeros(0, np.uint8))
                fill_image_msg(msg, rgb if encoding == "rgb8" else rgb[..., ::-1], encoding)
                msg.data = as_uint8_array(msg.data)
                batch.append((topic(camera), stamp, msg))
            yield from sorted(batch, key=lambda m: m[1])
            capture += 1


def as_uint8_array(data) -> np.ndarray:
    """rosbags' CDR serializer wants uint8[] fields as NumPy arrays, not bytes."""
    return data if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), np.uint8)


def write_bag(out: str | Path, messages, storage: str = "mcap", typestore=None) -> Path:
    """Write (topic, log time ns, message) into a new rosbag2 directory (refused if `out` exists)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = typestore or get_typestore(Stores.ROS2_JAZZY)
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    connections = {}
    with Writer(out, version=Writer.VERSION_LATEST, storage_plugin=plugin) as writer:
        for name, stamp, msg in messages:
            if isinstance(getattr(msg, "data", None), (bytes, bytearray)):
                msg.data = as_uint8_array(msg.data)
            if name not in connections:
                connections[name] = writer.add_connection(name, msg.__msgtype__, typestore=typestore)
            writer.write(connections[name], stamp, typestore.serialize_cdr(msg, msg.__msgtype__))
    return Path(out)


def write_rig_bag(out: str | Path, scenes: int = 2, size: int = 64, rate_hz: float = 10.0, seed: int = 0,
                  storage: str = "mcap", encoding: str = "rgb8") -> Path:
    """scenes × 3 captures × 6 Image messages into a new rosbag2 directory `out`."""
    return write_bag(out, rig_messages(scenes, size, rate_hz, seed, encoding), storage)


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="rosbag2 directory to create (must not exist)")
    p.add_argument("--scenes", type=int, default=2, help="street scenes, 3 captures each (default 2)")
    p.add_argument("--size", type=int, default=64, help="image size in pixels (default 64; match the model's)")
    p.add_argument("--rate", type=float, default=10.0, help="captures per second (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--encoding", choices=("rgb8", "bgr8"), default="rgb8", help="image encoding (default rgb8)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default mcap)")
    return p


def main(argv: list[str] | None = None) -> int:
    from rust_perception.errors import UserError

    args = parser().parse_args(argv)
    if args.scenes < 1 or args.rate <= 0:
        parser().error("--scenes must be >= 1 and --rate > 0")
    if args.out.exists():
        raise UserError(f"{args.out} exists already; rosbag2 writers only create new bags "
                        "(delete it or choose another --out)")
    out = write_rig_bag(args.out, args.scenes, args.size, args.rate, args.seed, args.storage, args.encoding)
    print(f"{out}: {args.scenes * POSITIONS} captures × {CAMERAS} cameras at {args.rate:g} Hz, "
          f"{args.size}px {args.encoding}")
    return 0


def entry() -> int:
    return run(main, prog=PROG)


if __name__ == "__main__":
    raise SystemExit(entry())
