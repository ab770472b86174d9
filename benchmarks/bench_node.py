#!/usr/bin/env python3
"""rust_node under load, with real rclpy on loopback → benchmarks/results/node.json, keyed by
camera image size.

6 cameras publish a street-rig sequence at 10 Hz at each of `--input-sizes` (default 64×64,
640×480, 1280×720: real rigs send 640×480 to 1920×1080; the node centre-crops and resizes to the
model's 64×64), one fresh node process per size; the node (`cpu` model, ONNX Runtime) renders the
reference camera's novel view. Measured over the steady window (after a 3 s warm-up): end-to-end
latency (image stamp → novel view received) p50/p99, novel-view and pose output rates, the node
process's CPU %, and from the node's last diagnostics its per-stage latency (mean, max over the
last 100 calls), worker errors and frame counts per camera (received, evicted unused, out of
order, time resets, bad), from which frames lost in transport = published − received − out of
order − bad, over the window from the first diagnostics after the warm-up to the end (±1 for a
frame in flight at that message).
Goal (issue 14): ≥ 9.5 Hz novel views for a 10 Hz request and 0 frames lost at 640×480 on 2
cores. The node schedules outputs on a fixed grid, so 9.5 Hz allows 5 % for the window's edges.

Network rule: this script re-executes itself inside `unshare -n` (root) with loopback only,
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID, set before rclpy loads.
Usage: python benchmarks/bench_node.py [--seconds 30] [--input-sizes 64x64 640x480 1280x720]
       [--render-rate 10] [--slsr-period 0.2] [--model-dir DIR] [--background-load "what else ran"]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DDS_PROFILE = ROOT / "config" / "fastdds_large_images.xml"  # what docs/node.md tells camera drivers to use


def isolate(transport: str, profile: Path | None = None) -> None:
    """Re-run this script in a private network namespace with DDS confined to localhost; `profile`:
    a Fast DDS XML profile for every process of the run (None: Fast DDS's defaults)."""
    if os.environ.get("RUST_BENCH_ISOLATED"):
        return
    env = dict(os.environ, RUST_BENCH_ISOLATED="1", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(1 + os.getpid() % 100), PYTHONPATH=str(ROOT))
    if transport != "default":  # Fast DDS's builtin transports, for the publisher and the node alike
        env["FASTDDS_BUILTIN_TRANSPORTS"] = transport
    for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):  # Fast DDS 2.x, 3.x
        env.pop(name, None)
        if profile is not None:
            env[name] = str(profile.resolve())
    command = [sys.executable, *sys.argv]
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    sys.exit(subprocess.call(command, env=env))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def model(work: Path) -> Path:
    """A cpu-config RUST model with heads, exported (latency does not depend on training)."""
    from rust_perception.data.generate import generate_dataset
    from rust_perception.data.synthetic import SyntheticConfig
    from rust_perception.training.export import export_model
    from rust_perception.training.config import load_train_config
    from rust_perception.training.heads import train_head
    from rust_perception.training.trainer import Trainer

    out = work / "model_cpu"
    if (out / "metadata.json").is_file():
        return out
    data = work / "data"
    generate_dataset(SyntheticConfig(kind="street", scenes=20, views=18, size=64), data, progress=False)
    cfg = load_train_config(ROOT / "config" / "train_street.yaml", [f"dataset={data}", "steps=1", "batch_size=1",
                                                                      "eval_every=1", "eval_scenes=1", "workers=0"])
    Trainer(cfg, work / "run", progress=False).train()
    for head in ("epe", "segmentation"):
        train_head(work / "run", head, steps=1, batch_size=1, rays=16, progress=False)
    export_model(work / "run", out)
    return out


def messages(captures, width: int, height: int, fill_image_msg, Image) -> list[list]:
    """Each capture's 6 camera images at width×height as sensor_msgs/Image, built once: the
    publisher then only stamps them, so its own CPU does not limit what the node is offered."""
    from PIL import Image as PILImage

    out = []
    for capture in captures:
        row = []
        for i, rgb in enumerate(capture):
            big = rgb if rgb.shape[:2] == (height, width) else np.asarray(
                PILImage.fromarray(rgb).resize((width, height), PILImage.BILINEAR))
            msg = fill_image_msg(Image(), big, "rgb8")
            msg.header.frame_id = f"cam{i}_optical_frame"
            row.append(msg)
        out.append(row)
    return out


def measure(args, model_dir: Path, size: str, captures) -> dict:
    """One node process fed 6 cameras × 10 Hz of `size` images for the warm-up + `seconds`."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState

    from rust_perception.image_codec import fill_image_msg

    width, height = map(int, size.split("x"))
    frames_out = messages(captures, width, height, fill_image_msg, Image)
    cams = [f"rig/cam{i}/image_raw" for i in range(6)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ros2_rust_node.node", "--ros-args", "--params-file", str(ROOT / "config" / "node.yaml"),
         "-p", f"model_dir:={model_dir}", "-p", "backend:=onnxruntime", "-p", f"render_rate:={args.render_rate}",
         "-p", f"pose_rate:={args.pose_rate}", "-p", f"slsr_period:={args.slsr_period}",
         "-p", "publish_segmentation:=false", "-p", f"worker_period:={args.worker_period}", "-p", f"threads:={args.threads}",
         "-p", f"input_qos:={args.input_qos}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    atexit.register(proc.kill)  # the node never outlives a benchmark that failed
    node = Node("bench_node")
    arrivals, latents, diagnostics = [], [], []
    node.create_subscription(Image, "/rust_node/novel_view/image",
                             lambda m: arrivals.append((time.time(), m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)), 10)
    node.create_subscription(JointState, "/rust_node/latent_pose/rig_cam1", lambda m: latents.append(time.time()), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.append(m), 10)
    qos = QoSProfile(depth=10) if args.input_qos == "reliable" else qos_profile_sensor_data  # the node's QOS table
    pubs = [node.create_publisher(Image, "/" + c, qos) for c in cams]
    client = node.create_client(ChangeState, "/rust_node/change_state")
    if not client.wait_for_service(timeout_sec=120):
        raise SystemExit("rust_node did not come up")
    for tid in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        future = client.call_async(ChangeState.Request(transition=Transition(id=tid)))
        rclpy.spin_until_future_complete(node, future, timeout_sec=120)
        if not (future.result() and future.result().success):
            raise SystemExit(f"transition {tid} failed")
    load_before = os.getloadavg()
    start = time.time()
    cpu_start = None
    k, sent = 0, []
    warmup = 3.0
    while time.time() - start < args.seconds + warmup:
        stamp = node.get_clock().now().to_msg()
        sent.append(stamp.sec + stamp.nanosec * 1e-9)
        for pub, msg in zip(pubs, frames_out[(k // 10) % len(frames_out)]):
            msg.header.stamp = stamp
            pub.publish(msg)
        k += 1
        if cpu_start is None and time.time() - start >= warmup:
            cpu_start = (time.time(), cpu_seconds(proc.pid), cpu_seconds(os.getpid()))  # after warm-up
        deadline = start + k * 0.1
        while time.time() < deadline:
            rclpy.spin_once(node, timeout_sec=max(0.0, deadline - time.time()))
    t0, t1 = start + warmup, time.time()
    cpu_percent = 100 * (cpu_seconds(proc.pid) - cpu_start[1]) / (t1 - cpu_start[0])
    publisher_cpu = 100 * (cpu_seconds(os.getpid()) - cpu_start[2]) / (t1 - cpu_start[0])  # this process: cameras
    while time.time() < t1 + 2.0:  # no more frames: let a diagnostics message count them all
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    proc.terminate()
    proc.communicate(timeout=20)
    window = t1 - t0
    steady = [(a, s) for a, s in arrivals if t0 <= a < t1]
    latency = np.array([(a - s) * 1000 for a, s in steady])
    values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values} if diagnostics else {}
    # the window's counts: from the first diagnostics stamped after the warm-up to the last
    first = next((d for d in diagnostics if d.header.stamp.sec + d.header.stamp.nanosec * 1e-9 >= t0), None)
    first_stamp = first.header.stamp.sec + first.header.stamp.nanosec * 1e-9 if first else t1
    before = {kv.key: kv.value for kv in first.status[0].values} if first else {}
    stages = {}
    for key, value in values.items():
        if key.startswith("latency_ms/"):
            mean, peak = map(float, re.findall(r"[\d.]+", value))
            stages[key[len("latency_ms/"):]] = {"mean_ms": mean, "max_ms": peak}
    counts = lambda diag: {key[len("frames/"):]: {name.strip().replace(" ", "_"): int(n)  # noqa: E731
                                                   for name, n in re.findall(r"([a-z ]+) (\d+)", value)}
                           for key, value in diag.items() if key.startswith("frames/")}  # "received 10, out of order 1, …"
    frames, frames_before = counts(values), counts(before)
    rate = len(steady) / window
    sent_in_window = sum(s > first_stamp for s in sent)
    lost = {c: sent_in_window - sum(f[n] - frames_before.get(c, {}).get(n, 0) for n in ("received", "out_of_order", "bad"))
            for c, f in frames.items()}
    return dict(width=width, height=height, seconds=round(window, 2), load_average_before=[round(v, 2) for v in load_before],
                novel_view_hz=round(rate, 2), latent_pose_hz=round(len([t for t in latents if t0 <= t < t1]) / window, 2),
                latency_ms_p50=round(float(np.percentile(latency, 50)), 1) if len(latency) else None,
                latency_ms_p99=round(float(np.percentile(latency, 99)), 1) if len(latency) else None,
                stage_latency_ms=stages, node_cpu_percent=round(cpu_percent, 1), publisher_cpu_percent=round(publisher_cpu, 1),
                worker_errors=int(values.get("worker_errors", 0)), frames_published_per_camera=k, frames=frames,
                frames_published_in_window=sent_in_window, lost_in_transport=lost, meets_10hz=args.render_rate >= 10.0 and rate >= 9.5,
                meets_goal=args.render_rate >= 10.0 and rate >= 9.5 and not any(lost.values()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--input-sizes", nargs="+", default=["64x64", "640x480", "1280x720"],
                        help="camera image sizes WIDTHxHEIGHT, one node run each (the node resizes to the model's)")
    parser.add_argument("--render-rate", type=float, default=10.0)
    parser.add_argument("--pose-rate", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=0, help="the node's inference threads (0: the backend's default)")
    parser.add_argument("--worker-period", type=float, default=0.005,
                        help="seconds between the node's worker ticks (config/node.yaml's default; 0.02 measured "
                             "8.8 Hz for a 10 Hz request here)")
    parser.add_argument("--slsr-period", type=float, default=0.2,
                        help="seconds between re-encodes: the novel view shows a scene at most this old (plus the "
                             "encode) — a latency knob; the node's default, 0.5, costs less CPU")
    parser.add_argument("--background-load", default="none stated",
                        help="free text for the JSON: what else ran on the machine during the measurement")
    parser.add_argument("--transport", default="default",
                        help="Fast DDS builtin transports (FASTDDS_BUILTIN_TRANSPORTS) of both processes, e.g. "
                             "LARGE_DATA (TCP/SHM for data, UDP only for discovery) or "
                             "'LARGE_DATA?max_msg_size=1MB&sockets_size=4MB'. A run with another transport adds "
                             "its sizes (keyed 'SIZE TRANSPORT') to the existing node.json")
    parser.add_argument("--dds-profile", default=str(DDS_PROFILE.relative_to(ROOT)),
                        help="Fast DDS XML profile of both processes (default: the shipped "
                             "config/fastdds_large_images.xml, a 32 MiB shared-memory segment); 'none': Fast DDS's "
                             "defaults (512 KiB, smaller than one 640x480 image), whose sizes are keyed 'SIZE none'")
    parser.add_argument("--input-qos", choices=("sensor_data", "reliable"), default="sensor_data",
                        help="QoS of the cameras' publishers and the node's input_qos (reliable: depth 10, "
                             "DDS retransmits what the best-effort sensor-data QoS loses); a run with "
                             "reliable adds its sizes (keyed 'SIZE reliable') to the existing node.json")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_node")
    args = parser.parse_args()
    if args.transport.split("?")[0] not in ("default", "DEFAULT", "DEFAULTv6", "SHM", "UDPv4", "UDPv6", "LARGE_DATA",
                                            "LARGE_DATAv6", "NONE"):
        parser.error(f"--transport: {args.transport!r} is not a Fast DDS builtin transports mode")
    for size in args.input_sizes:
        if not re.fullmatch(r"[1-9]\d*x[1-9]\d*", size):
            parser.error(f"--input-sizes: {size!r} is not WIDTHxHEIGHT (e.g. 640x480)")
    profile = None if args.dds_profile == "none" else Path(args.dds_profile)
    if profile is not None and not profile.is_absolute() and not profile.is_file():
        profile = ROOT / profile  # the default, from any working directory
    if profile is not None and not profile.is_file():
        parser.error(f"--dds-profile: {profile} is not a file")
    if profile is not None and args.transport != "default":
        parser.error("--transport and --dds-profile both choose the transports: give --dds-profile none with --transport")
    isolate(args.transport, profile)
    import rclpy

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import Results

    from rust_perception.data.synthetic import SyntheticConfig, generate_scene

    model_dir = args.model_dir or model(args.work)
    cfg = SyntheticConfig(kind="street", scenes=2, views=18, size=64, seed=3, test_fraction=0.0)
    scenes = [generate_scene(cfg, "train", i)["rgb"] for i in range(2)]
    captures = [s[p * 6 : p * 6 + 6] for s in scenes for p in range(3)]
    results = Results("node.json", cameras=6, camera_rate_hz=10, model="config/model_cpu.yaml", image_size=64,
                      backend="onnxruntime", render_rate_requested=args.render_rate, pose_rate_requested=args.pose_rate,
                      slsr_period=args.slsr_period, worker_period=args.worker_period, threads=args.threads,
                      warmup_seconds=3.0, background_load=args.background_load, sizes={},
                      goal="at every input size: novel views >= 9.5 Hz for 10 Hz requested (the node schedules "
                           "renders on a fixed 100 ms grid) and 0 frames lost in transport")
    dds = "none" if profile is None and args.transport == "default" else ""  # Fast DDS defaults: a variant
    variant = " ".join(v for v in (args.transport, args.input_qos, dds) if v not in ("", "default", "sensor_data"))
    if variant and results.path.is_file():
        results.data["sizes"] = json.loads(results.path.read_text()).get("sizes", {})
    rclpy.init()
    for size in args.input_sizes:
        key = f"{size} {variant}".strip()
        results.data["sizes"][key] = dict(measure(args, model_dir, size, captures), transport=args.transport,
                                          dds_profile=args.dds_profile,
                                          input_qos=args.input_qos, measured=time.strftime("%Y-%m-%d %H:%M:%S"))
        results.save()
        print(key, json.dumps(results.data["sizes"][key]), flush=True)
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
