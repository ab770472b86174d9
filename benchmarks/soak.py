#!/usr/bin/env python3
"""Soak: the node's pipeline on a long recording → benchmarks/results/soak.json (+ soak.png).

A 6-camera street-rig recording (default 30 Hz × 10 minutes = 108,000 frames at 64×64) is written
as rosbag2, then `rust_offline` (the node's logic, no ROS needed) runs it as fast as it can with
the live node's rates (novel views 10 Hz, poses 2 Hz, SLSR every 0.2 s, in bag time) while this
script samples its resident memory once a second. Reports frames in, processed, dropped by reason
(evicted unused, out of order, bad), outputs, latency p50/p99 per stage, and RSS over time; the
RSS must plateau: the last quarter's median may exceed the second quarter's by at most 5 %.

The recording loops a few rendered scenes (rendering 18,000 rig captures would take hours): the
pipeline's cost does not depend on image content, and its memory is what is under test.

Usage: python benchmarks/soak.py [--minutes 10] [--rate 30] [--model-dir DIR] [--background-load TEXT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_node import model  # noqa: E402
from common import RESULTS, Results  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAMERAS = 6
PLATEAU_TOLERANCE = 0.05


def recording(out: Path, minutes: float, rate: float, size: int, scenes: int) -> int:
    """Write the looped rig recording; returns its frame count."""
    from rosbags.typesys import Stores, get_typestore

    from ros2_rust_node.make_rig_bag import START_NS, as_uint8_array, topic, write_bag
    from rust_perception.data.synthetic import SyntheticConfig, generate_scene
    from rust_perception.image_codec import fill_image_msg

    cfg = SyntheticConfig(kind="street", scenes=scenes, views=18, size=size, seed=11, test_fraction=0.0)
    captures = []  # per rig position: the six cameras' images
    for i in range(scenes):
        scene = generate_scene(cfg, "train", i)
        for position in range(3):
            views = [int(np.flatnonzero((scene["view_position"] == position) & (scene["view_camera"] == cam))[0])
                     for cam in range(CAMERAS)]
            captures.append(scene["rgb"][views])
    typestore = get_typestore(Stores.ROS2_JAZZY)
    types = typestore.types
    count = int(minutes * 60 * rate)

    def messages():
        for k in range(count):
            stamp = START_NS + round(k * 1e9 / rate)
            for cam, rgb in enumerate(captures[(k // max(1, round(rate))) % len(captures)]):  # a new place each second
                header = types["std_msgs/msg/Header"](
                    stamp=types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                    frame_id=f"cam{cam}_optical_frame")
                msg = types["sensor_msgs/msg/Image"](header=header, height=0, width=0, encoding="", is_bigendian=0,
                                                     step=0, data=np.zeros(0, np.uint8))
                fill_image_msg(msg, rgb, "rgb8")
                msg.data = as_uint8_array(msg.data)
                yield topic(cam), stamp, msg

    write_bag(out, messages(), "mcap", typestore)
    return count * CAMERAS


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def plot(samples: list[tuple[float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rust_perception.io import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    ax.plot([t for t, _ in samples], [r for _, r in samples])
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("rust_offline RSS (MiB)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def in_repo(path: Path) -> str:
    """A path as the JSON records it: relative to the checkout when inside it (no machine paths)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="recording length in bag time")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second per camera")
    parser.add_argument("--scenes", type=int, default=6, help="rendered scenes the recording loops over")
    parser.add_argument("--model-dir", type=Path, help="exported model (default: a throwaway cpu-config model)")
    parser.add_argument("--background-load", default="none stated", help="what else ran on the machine")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "soak")
    args = parser.parse_args()
    model_dir = args.model_dir or model(ROOT / "runs" / "bench_node")
    size = json.loads((model_dir / "metadata.json").read_text())["image_size"]
    bag = args.work / f"rig_{args.minutes:g}min_{args.rate:g}hz_{size}px"
    if not bag.is_dir():
        shutil.rmtree(bag.with_suffix(".tmp"), ignore_errors=True)  # a cut-short write starts again
        print(f"writing {bag} ...", flush=True)
        recording(bag.with_suffix(".tmp"), args.minutes, args.rate, size, args.scenes)
        bag.with_suffix(".tmp").rename(bag)
    out = args.work / "out"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "ros2_rust_node.offline", "--bag", str(bag), "--model-dir", str(model_dir),
               "--out", str(out), "--backend", "onnxruntime", "--render-rate", "10", "--pose-rate", "2",
               "--slsr-period", "0.2", "--quiet"]
    start = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []
    while proc.poll() is None:
        rss = rss_mib(proc.pid)
        if rss is not None:
            samples.append((round(time.time() - start, 1), round(rss, 1)))
        time.sleep(1.0)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"rust_offline failed ({proc.returncode}): {stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    rss = np.array([r for _, r in samples])
    quarter = len(rss) // 4
    second, last = float(np.median(rss[quarter:2 * quarter])), float(np.median(rss[3 * quarter:]))
    frames_in = sum(summary["frames_in"].values())
    dropped = {reason: sum(summary[key].values()) for reason, key in
               (("evicted_unused", "evicted_unused"), ("out_of_order", "out_of_order"), ("bad", "bad_frames"))}
    plot(samples, RESULTS / "soak.png")
    Results("soak.json", minutes=args.minutes, rate_hz=args.rate, cameras=CAMERAS, image_size=size,
            model_dir=in_repo(model_dir), backend=summary["backend"], render_rate=10, pose_rate=2, slsr_period=0.2,
            background_load=args.background_load,
            frames_in=frames_in, frames_processed=frames_in - dropped["bad"] - dropped["out_of_order"],
            frames_dropped=dropped, encodes=summary["encodes"], views_rendered=summary["views_rendered"],
            outputs=summary["outputs"], latency_ms=summary["latency_ms"], bag_seconds=summary["bag_seconds"],
            wall_seconds=summary["wall_seconds"], realtime_factor=round(summary["bag_seconds"] / summary["wall_seconds"], 2),
            rss_mib={"peak": float(rss.max()), "second_quarter_median": second,
                     "last_quarter_median": last, "growth": round(last / second - 1, 4)},
            rss_plateaus=last <= second * (1 + PLATEAU_TOLERANCE), rss_samples=samples[:: max(1, len(samples) // 200)],
            plateau_rule=f"last quarter's median RSS <= second quarter's × {1 + PLATEAU_TOLERANCE}").save()
    print(f"wrote {RESULTS / 'soak.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
