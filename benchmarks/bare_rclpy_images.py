#!/usr/bin/env python3
"""How many images reach a bare rclpy subscriber — the baseline for bench_node's frame loss.

One process publishes 6 topics × 10 Hz of W×H rgb8 images for 10 s; a second process only counts
what arrives (no decoding, no inference). Prints published and received per topic. With the
sensor-data QoS (best effort) and Fast DDS's defaults at 640×480 most frames are lost: the
publisher's 512 KiB shared-memory segment is smaller than one image. With
`--dds-profile config/fastdds_large_images.xml` (a 32 MiB segment; `--profile-side` shows it must
be the publisher's) or `--reliable` (both sides) all arrive. Each run adds its counts to
benchmarks/results/bare_rclpy_images.json, keyed by its settings. Runs itself inside `unshare -n`
with DDS on localhost, like bench_node.py.

    python benchmarks/bare_rclpy_images.py [--size 640x480] [--reliable] [--dds-profile XML]
        [--profile-side both|publisher|subscriber] [--background-load TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from pathlib import Path

from bench_node import isolate
from common import Results

PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")  # set by isolate()


def without_profile(env) -> dict:
    return {k: v for k, v in env.items() if k not in PROFILE_VARIABLES}


def qos(reliable: bool):
    from rclpy.qos import QoSProfile, qos_profile_sensor_data

    return QoSProfile(depth=10) if reliable else qos_profile_sensor_data


def count(width: int, height: int, reliable: bool) -> None:
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init()
    node, counts = Node("bare_sub"), [0] * 6
    keep = [node.create_subscription(Image, f"/bare{i}", lambda m, i=i: counts.__setitem__(i, counts[i] + 1),
                                     qos(reliable)) for i in range(6)]
    end = time.time() + 16
    while time.time() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print("received", counts, flush=True)
    del keep


def publish(width: int, height: int, reliable: bool, side: str) -> tuple[int, list[int]]:
    """(frames published per topic, frames received per topic); the XML profile isolate() set
    stays with `side` (both, publisher or subscriber) and is taken from the other process."""
    child = subprocess.Popen([sys.executable, __file__, "--size", f"{width}x{height}", "--count"]
                             + (["--reliable"] if reliable else []), stdout=subprocess.PIPE, text=True,
                             env=without_profile(os.environ) if side == "publisher" else None)
    if side == "subscriber":  # before rclpy loads in this process
        for name in PROFILE_VARIABLES:
            os.environ.pop(name, None)
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node("bare_pub")
    pubs = [node.create_publisher(Image, f"/bare{i}", qos(reliable)) for i in range(6)]
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = np.random.default_rng(0).integers(0, 256, height * width * 3, dtype=np.uint8).tobytes()
    time.sleep(3)  # discovery
    k, start = 0, time.time()
    while time.time() - start < 10:
        for publisher in pubs:
            publisher.publish(msg)
        k += 1
        time.sleep(max(0.0, start + k * 0.1 - time.time()))
    out, _ = child.communicate()
    received = [int(n) for n in out.split("[", 1)[1].split("]")[0].split(",")]
    print("published", k, "per topic; received", received, flush=True)
    return k, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--reliable", action="store_true")
    parser.add_argument("--dds-profile", type=Path, help="Fast DDS XML profile of both processes (default: none)")
    parser.add_argument("--profile-side", choices=("both", "publisher", "subscriber"), default="both",
                        help="which process keeps --dds-profile (default both)")
    parser.add_argument("--background-load", default="none stated", help="free text for the JSON")
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)  # the subscriber process
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    if args.count:
        count(width, height, args.reliable)
        return 0
    if args.dds_profile is not None and not args.dds_profile.is_file():
        parser.error(f"--dds-profile: {args.dds_profile} is not a file")
    if args.dds_profile is None and args.profile_side != "both":
        parser.error("--profile-side needs --dds-profile")
    isolate("default", args.dds_profile)
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
    published, received = publish(width, height, args.reliable, args.profile_side)
    profile = f"{args.dds_profile.name} ({args.profile_side})" if args.dds_profile else "Fast DDS defaults"
    results = Results("bare_rclpy_images.json", topics=6, rate_hz=10, seconds=10, discovery_wait_s=3)
    if results.path.is_file():
        results.data["results"] = json.loads(results.path.read_text()).get("results", [])
    key = {"size": args.size, "qos": "reliable" if args.reliable else "sensor_data", "profile": profile}
    results.data["results"] = [r for r in results.data["results"] if {k: r.get(k) for k in key} != key]
    results.add(**key, published_per_topic=published, received_per_topic=received,
                background_load=args.background_load, measured=time.strftime("%Y-%m-%d %H:%M:%S"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
