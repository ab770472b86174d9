"""Live check of rust_node with real rclpy, run by tests/test_node_live.py inside `unshare -n`.

Starts the node process with config/node.yaml, drives its lifecycle through services, plays the
6-camera street-rig captures of a dataset (the model's training scenes) as sensor_msgs/Image at
10 Hz, records every output topic, renders at a second camera (novel_view_camera set live), sends
bad frames, silences one camera for a while, jumps the stamps 100 s back (a bag loop), then
deactivates and cleans up. Writes what it saw to the JSON file given as the second argument; the
test makes the assertions.

    live_node_check.py MODEL_DIR REPORT.json DATASET_DIR

The caller sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from rust_perception.data.store import DatasetStore
from rust_perception.image_codec import fill_image_msg, image_msg_to_rgb8

ROOT = Path(__file__).resolve().parents[1]
CAMS = [f"rig/cam{i}/image_raw" for i in range(6)]
NAMES = [f"rig_cam{i}" for i in range(6)]


def main(model_dir: str, out_path: str, data_dir: str) -> int:
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST", "refusing to start DDS beyond localhost"
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "ros2_rust_node.node", "--ros-args", "--params-file", str(ROOT / "config" / "node.yaml"),
         "-p", f"model_dir:={model_dir}", "-p", "render_rate:=4.0", "-p", "pose_rate:=2.0", "-p", "slsr_period:=0.5",
         "-p", "stale_after:=0.6", "-p", "backend:=onnxruntime"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    node = Node("live_check")
    report = {"transitions": {}, "topics": {}, "errors": []}
    received: dict[str, list] = {}

    def record(topic):
        def callback(msg):
            received.setdefault(topic, []).append((time.monotonic(), msg))
        return callback

    subs = [(Image, "/rust_node/novel_view/image"), (CameraInfo, "/rust_node/novel_view/camera_info"),
            (DiagnosticArray, "/diagnostics")]
    for name in NAMES:
        subs += [(Float32MultiArray, f"/rust_node/latent_pose/{name}"), (Image, f"/rust_node/segmentation/{name}/image"),
                 (Image, f"/rust_node/segmentation/{name}/color")]
        if name != NAMES[0]:
            subs.append((PoseWithCovarianceStamped, f"/rust_node/relative_pose/{name}"))
    keep = [node.create_subscription(kind, topic, record(topic), 10) for kind, topic in subs]
    pubs = {cam: node.create_publisher(Image, "/" + cam, qos_profile_sensor_data) for cam in CAMS}
    change = node.create_client(ChangeState, "/rust_node/change_state")
    get_state = node.create_client(GetState, "/rust_node/get_state")

    def call(client, request, timeout=90.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"service {client.srv_name} did not appear")
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        return future.result()

    def transition(name, tid):
        result = call(change, ChangeState.Request(transition=Transition(id=tid)))
        state = call(get_state, GetState.Request()).current_state.label
        report["transitions"][name] = {"success": bool(result and result.success), "state": state}

    store = DatasetStore(data_dir)
    scenes = [store.scene("train", i)["rgb"] for i in range(store.num_scenes("train"))]
    frames = [rgb[p * 6 : p * 6 + 6] for rgb in scenes for p in range(len(rgb) // 6)]  # rig captures, 6 cameras each
    scene_mean = [rgb.reshape(-1, 3).mean(0) for rgb in scenes for _ in range(len(rgb) // 6)]  # colour per capture
    sent = {}  # stamp → capture index

    def play(seconds, silent=(), offset=0.0):
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            index = (k // 5) % len(frames)  # each capture held for 0.5 s: a slowly moving rig
            capture = frames[index]
            stamp = rclpy.time.Time(nanoseconds=node.get_clock().now().nanoseconds + int(offset * 1e9)).to_msg()
            for i, cam in enumerate(CAMS):
                if cam in silent:
                    continue
                image = capture[i] if i % 2 == 0 else capture[i][..., ::-1]  # odd cameras send bgr8
                msg = fill_image_msg(Image(), image, "rgb8" if i % 2 == 0 else "bgr8")
                msg.header.stamp, msg.header.frame_id = stamp, f"cam{i}_optical_frame"
                pubs[cam].publish(msg)
            sent[stamp.sec + stamp.nanosec * 1e-9] = index
            k += 1
            end = start + k * 0.1
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=max(0.0, end - time.monotonic()))

    novel = "/rust_node/novel_view/image"
    set_params = node.create_client(SetParameters, "/rust_node/set_parameters")

    def set_string(name, value):
        """SetParameters' result for the one parameter: (successful, reason)."""
        result = call(set_params, SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=value))])).results[0]
        return result.successful, result.reason

    rendered = {}  # camera index → novel views rendered at its latent pose
    try:
        transition("configure", Transition.TRANSITION_CONFIGURE)
        transition("activate", Transition.TRANSITION_ACTIVATE)
        play(1.0)  # warm-up: discovery, first encode
        received.clear()
        t0 = time.monotonic()
        play(6.0)
        report["steady_seconds"] = time.monotonic() - t0
        steady = {k: len(v) for k, v in received.items()}
        rendered[0] = [m for _, m in received.get(novel, [])]
        bad = fill_image_msg(Image(), frames[0][1], "rgb8")
        bad.encoding = "yuv422"  # unsupported
        short = fill_image_msg(Image(), frames[0][1], "rgb8")
        short.data = bytes(short.data)[:100]  # truncated garbage
        empty = fill_image_msg(Image(), frames[0][1][:0, :0], "rgb8")  # 0×0
        # one at a time: the subscription keeps the last 5 frames (sensor-data QoS), so a burst
        # followed by regular frames could lose a bad one before the node counts it
        for msg in (bad, short, empty):
            msg.header.stamp = node.get_clock().now().to_msg()
            pubs[CAMS[1]].publish(msg)
            time.sleep(0.1)
        pubs[CAMS[1]].publish(fill_image_msg(Image(), frames[0][1], "rgb8"))  # stamp 0
        time.sleep(0.1)
        play(2.0, silent={CAMS[3]})  # a camera goes silent
        silent_diag = [m for _, m in received.get("/diagnostics", [])][-1:]
        cam3 = f"/rust_node/latent_pose/{NAMES[3]}"
        during = len(received.get(cam3, []))
        play(3.0)  # and comes back
        report["after_recovery_latent_cam3"] = len(received.get(cam3, [])) - during
        report["unknown_novel_view_camera"] = set_string("novel_view_camera", "no/such/camera")
        set_string("novel_view_camera", CAMS[2])  # switched live: no reconfigure needed
        before = len(received.get(novel, []))
        play(2.0)
        rendered[2] = [m for _, m in received.get(novel, [])[before + 1 :]]  # the first may predate the switch
        set_string("novel_view_camera", "")
        before = len(received.get("/rust_node/novel_view/image", []))
        play(2.0, offset=-100.0)  # the stamps jump 100 s back, as when a bag loops
        jumped = [m for _, m in received.get("/rust_node/novel_view/image", [])[before:]]
        report["novel_after_time_jump"] = sum(m.header.stamp.sec < time.time() - 50 for m in jumped)
        transition("deactivate", Transition.TRANSITION_DEACTIVATE)
        before = len(received.get("/rust_node/novel_view/image", []))
        play(1.0)
        report["novel_after_deactivate"] = len(received.get("/rust_node/novel_view/image", [])) - before
        transition("cleanup", Transition.TRANSITION_CLEANUP)
        last = [d for _, d in received.get("/diagnostics", [])][-1:]
        report["frames_diagnostics"] = {kv.key[len("frames/"):]: kv.value for d in last for st in d.status
                                        for kv in st.values if kv.key.startswith("frames/")}
        set_string("model_dir", "/nonexistent/model")
        transition("configure_missing_model", Transition.TRANSITION_CONFIGURE)
    except Exception as exc:  # recorded for the test's message; the node's log is attached below
        report["errors"].append(repr(exc))
        steady, silent_diag = {}, []
    report["steady_counts"] = steady
    report["silent_diagnostics"] = [{"level": int.from_bytes(s.level, "little") if isinstance(s.level, bytes) else int(s.level),
                                     "message": s.message} for d in silent_diag for s in d.status]
    for topic, items in received.items():
        msgs = [m for _, m in items]
        entry = {"count": len(msgs), "type": type(msgs[0]).__name__}
        if hasattr(msgs[0], "header"):
            entry["frame_ids"] = sorted({m.header.frame_id for m in msgs})
        if isinstance(msgs[0], Image):
            entry["encodings"] = sorted({m.encoding for m in msgs})
            entry["sizes"] = sorted({(m.height, m.width) for m in msgs})
            if topic.endswith("/image") and "segmentation" in topic:
                entry["max_label"] = int(max(np.frombuffer(bytes(m.data), np.uint8).max() for m in msgs))
        if isinstance(msgs[0], Float32MultiArray):
            entry["lengths"] = sorted({len(m.data) for m in msgs})
        report["topics"][topic] = entry
    # reconstructions of input cameras: novel views (motion none) at camera c's latent pose vs the
    # frame c sent with the stamp they carry, beside baselines: noise, the scene's mean colour, and
    # the render scored against another camera's frame (cam2's, or cam0's for cam2)
    rng = np.random.default_rng(0)
    psnr = lambda a, b: float(-10 * np.log10(((a - b) ** 2).mean() / 255.0**2 + 1e-12))  # noqa: E731
    report["reconstruction"] = {}
    for c, msgs in rendered.items():
        scores = []
        for m in msgs:
            stamp = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
            nearest = min(sent, key=lambda s: abs(s - stamp))  # float seconds round-trip: ±1 µs
            if abs(nearest - stamp) < 1e-3 and (m.height, m.width) == frames[0][c].shape[:2]:
                truth, other = (frames[sent[nearest]][i].astype(float) for i in (c, 2 if c == 0 else 0))
                render = image_msg_to_rgb8(m).astype(float)
                scores.append((psnr(render, truth), psnr(rng.integers(0, 256, truth.shape), truth),
                               psnr(np.broadcast_to(scene_mean[sent[nearest]], truth.shape), truth),
                               psnr(render, other)))
        keys = ("psnr", "noise_psnr", "mean_colour_psnr", "other_camera_psnr", "views")
        means = [*np.mean(scores, 0).tolist(), len(scores)] if scores else None
        report["reconstruction"][NAMES[c]] = dict(zip(keys, means)) if means else None
    node.destroy_node()
    rclpy.shutdown()
    node_proc.terminate()
    try:
        log, _ = node_proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        node_proc.kill()
        log, _ = node_proc.communicate()
    report["node_log"] = log[-20000:]
    report["node_exit"] = node_proc.returncode
    Path(out_path).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
