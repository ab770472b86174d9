"""Live check of rust_node with real rclpy, run by tests/test_node_live.py inside `unshare -n`.

Starts the node process with config/node.yaml, drives its lifecycle through services, plays the
6-camera street-rig captures of a dataset (the model's training scenes) as sensor_msgs/Image at
10 Hz, records every output topic, renders at a second camera (novel_view_camera set live; an
unknown camera or motion, and a setting read only at configure, are refused with the reason), sends
bad frames, silences one camera for a while, jumps the stamps 100 s back (a bag loop), stops every
camera, requests transitions in the wrong state, then deactivates and cleans up. A second node
process gets the usual mistakes: a camera topic nobody publishes, a CompressedImage published on a
topic configured as raw, and one live compressed camera (fewer than the model's inputs) whose
camera_info follows image_transport's naming. Writes what it saw to the JSON file given as the
second argument; the test makes the assertions.

    live_node_check.py MODEL_DIR REPORT.json DATASET_DIR

The caller sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID.
"""

from __future__ import annotations

import functools
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
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from visualization_msgs.msg import MarkerArray

from rust_perception.data.store import DatasetStore
from rust_perception.image_codec import fill_compressed_msg, fill_image_msg, image_msg_to_rgb8

ROOT = Path(__file__).resolve().parents[1]
CAMS = [f"rig/cam{i}/image_raw" for i in range(6)]
NAMES = [f"rig_cam{i}" for i in range(6)]


def call_service(node, client, request, timeout=90.0):
    """Call a service from `node` and wait for the answer (an error if the service never appears)."""
    if not client.wait_for_service(timeout_sec=timeout):
        raise RuntimeError(f"service {client.srv_name} did not appear")
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    return future.result()


def start_node(model_dir: str, *params: str, name: str = "rust_node") -> subprocess.Popen:
    """The node with config/node.yaml (its parameters are for `rust_node`: another name gets the
    declared defaults) and the check's overrides."""
    return subprocess.Popen(
        [sys.executable, "-m", "ros2_rust_node.node", "--ros-args", "-r", f"__node:={name}",
         "--params-file", str(ROOT / "config" / "node.yaml"),
         "-p", f"model_dir:={model_dir}", "-p", "render_rate:=4.0", "-p", "pose_rate:=2.0", "-p", "slsr_period:=0.5",
         "-p", "stale_after:=0.6", "-p", "backend:=onnxruntime", *(a for p in params for a in ("-p", p))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_node(node_proc: subprocess.Popen) -> str:
    node_proc.terminate()
    try:
        log, _ = node_proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        node_proc.kill()
        log, _ = node_proc.communicate()
    return log[-20000:]


def level(status) -> int:
    return int.from_bytes(status.level, "little") if isinstance(status.level, bytes) else int(status.level)


def main(model_dir: str, out_path: str, data_dir: str) -> int:
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST", "refusing to start DDS beyond localhost"
    node_proc = start_node(model_dir, "status_window:=2.0")
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
    subs.append((MarkerArray, "/rust_node/camera_poses"))
    for name in NAMES:
        subs += [(JointState, f"/rust_node/latent_pose/{name}"), (Image, f"/rust_node/segmentation/{name}/image"),
                 (Image, f"/rust_node/segmentation/{name}/color")]
        if name != NAMES[0]:
            subs.append((PoseWithCovarianceStamped, f"/rust_node/relative_pose/{name}"))
    keep = [node.create_subscription(kind, topic, record(topic), 10) for kind, topic in subs]
    pubs = {cam: node.create_publisher(Image, "/" + cam, qos_profile_sensor_data) for cam in CAMS}
    change = node.create_client(ChangeState, "/rust_node/change_state")
    get_state = node.create_client(GetState, "/rust_node/get_state")

    call = functools.partial(call_service, node)

    def transition(name, tid, timeout=90.0):
        """→ seconds the answer took, not counting the wait for the service to appear."""
        if not change.wait_for_service(timeout_sec=90.0):
            raise RuntimeError("service /rust_node/change_state did not appear")
        start = time.monotonic()
        result = call(change, ChangeState.Request(transition=Transition(id=tid)), timeout)
        seconds = time.monotonic() - start
        state = call(get_state, GetState.Request()).current_state.label
        report["transitions"][name] = {"success": bool(result and result.success), "state": state}
        return seconds

    store = DatasetStore(data_dir)
    scenes = [store.scene("train", i)["rgb"] for i in range(store.num_scenes("train"))]
    frames = [rgb[p * 6 : p * 6 + 6] for rgb in scenes for p in range(len(rgb) // 6)]  # rig captures, 6 cameras each
    scene_mean = [rgb.reshape(-1, 3).mean(0) for rgb in scenes for _ in range(len(rgb) // 6)]  # colour per capture
    sent = {}  # stamp → capture index

    def play(seconds, silent=(), offset=0.0, cam1_instead=()):
        """The rig at 10 Hz; `cam1_instead`: messages cam1 sends instead of its frames, one a tick
        (one at a time: a burst into the 5-deep sensor-data queue could lose one)."""
        instead = list(cam1_instead)
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            index = (k // 5) % len(frames)  # each capture held for 0.5 s: a slowly moving rig
            capture = frames[index]
            stamp = rclpy.time.Time(nanoseconds=node.get_clock().now().nanoseconds + int(offset * 1e9)).to_msg()
            for i, cam in enumerate(CAMS):
                if cam in silent:
                    continue
                if cam == CAMS[1] and instead:
                    msg = instead.pop(0)
                    if msg.header.stamp.sec or msg.header.stamp.nanosec:  # the unstamped one stays so
                        msg.header.stamp = stamp
                    pubs[cam].publish(msg)
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
    report["wrong_state_seconds"] = {}
    try:  # a transition the state does not offer is answered (false) at once, not left to the client's timeout
        report["wrong_state_seconds"]["activate_unconfigured"] = transition(
            "activate_unconfigured", Transition.TRANSITION_ACTIVATE, timeout=10.0)
        transition("configure", Transition.TRANSITION_CONFIGURE)
        transition("activate", Transition.TRANSITION_ACTIVATE)
        report["wrong_state_seconds"]["configure_active"] = transition(
            "configure_active", Transition.TRANSITION_CONFIGURE, timeout=10.0)
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
        for msg in (bad, short, empty):
            msg.header.stamp.sec = 1  # replaced by the tick's stamp
        unstamped = fill_image_msg(Image(), frames[0][1], "rgb8")  # stamp 0
        # sent by cam1 while the rig plays on: silence is measured by the clock, and a pause near
        # stale_after would silence every camera at once
        play(0.5, cam1_instead=[bad, short, empty, unstamped])
        play(2.0, silent={CAMS[3]})  # a camera goes silent
        silent_diag = [m for _, m in received.get("/diagnostics", [])][-1:]
        cam3 = f"/rust_node/latent_pose/{NAMES[3]}"
        during, diagnostics_before = len(received.get(cam3, [])), len(received.get("/diagnostics", []))
        play(3.0)  # and comes back
        report["after_recovery_latent_cam3"] = len(received.get(cam3, [])) - during
        # the bad frames are > status_window (2 s) old now: the level is back to OK
        # (every status since, in order: a loaded machine may show a lagging camera as silent for a moment)
        report["recovered_diagnostics"] = [{"level": level(s), "message": s.message}
                                           for _, d in received.get("/diagnostics", [])[diagnostics_before:]
                                           for s in d.status]
        report["unknown_novel_view_camera"] = set_string("novel_view_camera", "no/such/camera")
        report["unknown_motion"] = set_string("novel_view_motion", "sideways")
        report["read_at_configure"] = set_string("input_qos", "reliable")  # would change nothing while active
        set_string("novel_view_camera", CAMS[2])  # switched live: no reconfigure needed
        before = len(received.get(novel, []))
        play(2.0)
        rendered[2] = [m for _, m in received.get(novel, [])[before + 1 :]]  # the first may predate the switch
        set_string("novel_view_camera", "")
        before = len(received.get("/rust_node/novel_view/image", []))
        play(2.0, offset=-100.0)  # the stamps jump 100 s back, as when a bag loops
        jumped = [m for _, m in received.get("/rust_node/novel_view/image", [])[before:]]
        report["novel_after_time_jump"] = sum(m.header.stamp.sec < time.time() - 50 for m in jumped)
        latents = [m for _, m in received.get(f"/rust_node/latent_pose/{NAMES[4]}", [])]
        report["latent_stamps_sent"] = sum(any(abs(s - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)) < 1e-3
                                               for s in sent) for m in latents), len(latents)
        # every camera stops; the clock goes on
        stopped = time.monotonic()
        while time.monotonic() - stopped < 3.0:
            rclpy.spin_once(node, timeout_sec=0.05)
        report["novel_while_stopped"] = sum(t > stopped + 1.0 for t, _ in received.get(novel, []))
        report["stopped_diagnostics"] = [{"level": level(s), "message": s.message}
                                         for _, d in received.get("/diagnostics", [])[-1:] for s in d.status]
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
    report["silent_diagnostics"] = [{"level": level(s), "message": s.message} for d in silent_diag for s in d.status]
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
        if isinstance(msgs[0], JointState):
            entry["lengths"] = sorted({len(m.position) for m in msgs})
        if isinstance(msgs[0], MarkerArray):
            entry["frame_ids"] = sorted({k.header.frame_id for m in msgs for k in m.markers})
            entry["markers"] = sorted({(k.ns, k.id, k.type) for m in msgs for k in m.markers})
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
    report["node_log"] = stop_node(node_proc)
    report["node_exit"] = node_proc.returncode
    node.destroy_node()  # its Image publishers would keep rig/cam0/image_raw typed for this process
    try:
        report["mistakes"] = mistakes(model_dir, frames)
    except Exception as exc:  # noqa: BLE001 - recorded for the test's message
        report["errors"].append(f"mistakes: {exc!r}")
    rclpy.shutdown()
    Path(out_path).write_text(json.dumps(report, indent=1))
    return 0


def mistakes(model_dir, frames) -> dict:
    """A node configured with one compressed camera that sends (with camera_info beside it, at
    image_transport's /x/camera_info), one raw camera that gets CompressedImage, and one topic
    nobody publishes: it renders from the one camera's earlier frames and names both mistakes. Named
`rust_mistakes`, so no client can reach the first node's services."""
    live, wrong, nobody = "rig/cam1/image_raw/compressed", "rig/cam0/image_raw", "nobody/image_raw"
    node_proc = start_node(model_dir, f"camera_topics:=[{live}, {wrong}, {nobody}]", f"reference_camera:={live}",
                           "input_timeout:=1.0", name="rust_mistakes")
    node = Node("live_mistakes")  # its own publishers: the first part's (Image) hold rig/cam0/image_raw
    change = node.create_client(ChangeState, "/rust_mistakes/change_state")

    call = functools.partial(call_service, node)

    out, got = {}, {"novel": [], "info": [], "diagnostics": []}
    keep = [node.create_subscription(Image, "/rust_mistakes/novel_view/image", got["novel"].append, 10),
            node.create_subscription(CameraInfo, "/rust_mistakes/novel_view/camera_info", got["info"].append, 10),
            node.create_subscription(DiagnosticArray, "/diagnostics", got["diagnostics"].append, 10)]
    pubs = {t: node.create_publisher(CompressedImage, "/" + t, qos_profile_sensor_data) for t in (live, wrong)}
    info_pub = node.create_publisher(CameraInfo, "/rig/cam1/camera_info", 10)
    try:
        out["configure"] = bool(call(change, ChangeState.Request(transition=Transition(
            id=Transition.TRANSITION_CONFIGURE))).success)
        out["activate"] = bool(call(change, ChangeState.Request(transition=Transition(
            id=Transition.TRANSITION_ACTIVATE))).success)
        start, k = time.monotonic(), 0
        while time.monotonic() - start < 4.0:
            stamp = node.get_clock().now().to_msg()
            for topic, publisher in pubs.items():
                msg = fill_compressed_msg(CompressedImage(), frames[k % len(frames)][1], "png")
                msg.header.stamp, msg.header.frame_id = stamp, "cam1_optical_frame"
                publisher.publish(msg)
            info = CameraInfo(width=32, height=32, k=[40.0, 0.0, 16.0, 0.0, 40.0, 16.0, 0.0, 0.0, 1.0])
            info.header.stamp = stamp
            info_pub.publish(info)
            k += 1
            end = start + k * 0.1
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=max(0.0, end - time.monotonic()))
        out["novel_views"] = len(got["novel"])
        out["novel_k"] = [list(m.k) for m in got["info"][-1:]]
        out["diagnostics"] = [{"level": level(s), "message": s.message} for d in got["diagnostics"]
                              for s in d.status if s.name.startswith("rust_mistakes")][-1:]
    finally:
        node.destroy_node()
        out["node_log"] = stop_node(node_proc)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
