"""The node's logic on a rosbag2 recording (`ros2_rust_node.offline`), without ROS: a synthetic
six-camera rig bag in, the node's topics out, read back with rosbags and checked against the
summary and the requested rates."""

import dataclasses
import json
import math
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
import yaml
from conftest import ROOT
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ros2_rust_node import make_rig_bag, offline
from ros2_rust_node.make_rig_bag import rig_messages, write_bag
from ros2_rust_node.naming import camera_name
from rust_perception.image_codec import image_msg_to_rgb8

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
CAPTURES = 2 * 3  # 2 street scenes × 3 rig positions
REFERENCE = "/rig/cam0/image_raw"
NS = offline.NODE_NAMESPACE


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """The rig's messages (rendered once) and an MCAP bag of them: 2 scenes, 32 px, 10 Hz."""
    messages = list(rig_messages(scenes=2, size=32, rate_hz=10.0, seed=0))
    return messages, write_bag(tmp_path_factory.mktemp("rig") / "bag", messages)


def read_bag(path):
    """topic → [(log ns, msgtype, message)]."""
    out = defaultdict(list)
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        for conn, log_ns, raw in reader.messages():
            out[conn.topic].append((log_ns, conn.msgtype, reader.deserialize(raw, conn.msgtype)))
    return out


def run_offline(bag, model_dir, out, *args):
    assert offline.main(["--bag", str(bag), "--model-dir", str(model_dir), "--out", str(out), "--quiet", *args]) == 0
    return read_bag(out), json.loads((out / "summary.json").read_text())


def test_camera_names_drop_image_suffixes():
    assert camera_name("/rig/cam0/image_raw") == "rig_cam0"
    assert camera_name("/front/image") == "front"
    assert camera_name("/rig/cam1/image_raw/compressed") == "rig_cam1"
    assert camera_name("left_camera") == "left_camera"


def test_rig_bag_is_six_jittered_cameras_per_capture(rig):
    messages, bag = rig
    assert len(messages) == 6 * CAPTURES
    stamps = [t for _, t, _ in messages]
    assert stamps == sorted(stamps)
    for k in range(CAPTURES):
        capture = messages[6 * k : 6 * k + 6]
        assert sorted(m.header.frame_id for _, _, m in capture) == [f"cam{i}_optical_frame" for i in range(6)]
        offsets = [t - make_rig_bag.START_NS - k * 100_000_000 for _, t, _ in capture]
        assert max(abs(o) for o in offsets) <= 5_000_000
    topics = read_bag(bag)
    assert sorted(topics) == [f"/rig/cam{i}/image_raw" for i in range(6)]
    assert all(len(v) == CAPTURES and v[0][1] == "sensor_msgs/msg/Image" for v in topics.values())


def test_offline_run_writes_the_node_topics_at_the_requested_rates(rig, model_dir, tmp_path):
    messages, bag = rig
    render_rate, pose_rate = 4.0, 2.0
    topics, summary = run_offline(bag, model_dir, tmp_path / "out", "--render-rate", str(render_rate),
                                  "--pose-rate", str(pose_rate), "--render-size", "24")
    meta = json.loads((model_dir / "metadata.json").read_text())
    names = [f"rig_cam{i}" for i in range(6)]
    expected = {f"{NS}/novel_view/image": "sensor_msgs/msg/Image", f"{NS}/camera_poses": "visualization_msgs/msg/MarkerArray",
                f"{NS}/novel_view/camera_info": "sensor_msgs/msg/CameraInfo"}
    for name in names:
        expected[f"{NS}/latent_pose/{name}"] = "sensor_msgs/msg/JointState"
        expected[f"{NS}/segmentation/{name}/image"] = "sensor_msgs/msg/Image"
        expected[f"{NS}/segmentation/{name}/color"] = "sensor_msgs/msg/Image"
        if name != "rig_cam0":
            expected[f"{NS}/relative_pose/{name}"] = "geometry_msgs/msg/PoseWithCovarianceStamped"
    assert {t: v[0][1] for t, v in topics.items()} == expected

    reference_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for t, _, m in messages if t == REFERENCE}
    camera_stamps = {t: {(m.header.stamp.sec, m.header.stamp.nanosec) for t2, _, m in messages if t2 == t}
                     for t in {t for t, _, _ in messages}}
    views = topics[f"{NS}/novel_view/image"]
    for _, _, msg in views:
        assert (msg.height, msg.width, msg.encoding, msg.step) == (24, 24, "rgb8", 72)
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in reference_stamps  # the exact input stamp
    for name in names:
        for _, _, msg in topics[f"{NS}/segmentation/{name}/image"]:
            labels = image_msg_to_rgb8(msg)[..., 0]
            assert msg.encoding == "mono8" and labels.shape == (32, 32) and labels.max() < len(meta["classes"])
            assert msg.header.frame_id == f"{name.removeprefix('rig_')}_optical_frame"  # the bag's frame ids
        for _, _, msg in topics[f"{NS}/segmentation/{name}/color"]:
            assert msg.encoding == "rgb8" and (msg.height, msg.width) == (32, 32)
        camera = f"/rig/{name.removeprefix('rig_')}/image_raw"
        for _, _, msg in topics[f"{NS}/latent_pose/{name}"]:  # stamped with the frame it was estimated from
            assert msg.position.shape == (8,) and np.isfinite(msg.position).all() and len(msg.name) == 8
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in camera_stamps[camera]
            assert msg.header.frame_id == f"{name.removeprefix('rig_')}_optical_frame"
    for name in names[1:]:
        for _, _, msg in topics[f"{NS}/relative_pose/{name}"]:
            assert msg.header.frame_id == "cam0_optical_frame"
            q = msg.pose.pose.orientation
            assert math.isclose(q.x**2 + q.y**2 + q.z**2 + q.w**2, 1.0, rel_tol=1e-6)
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in camera_stamps[f"/rig/{name[4:]}/image_raw"]
    for _, _, msg in topics[f"{NS}/camera_poses"]:  # an arrow and a name per camera, in the reference's frame
        assert {m.header.frame_id for m in msg.markers} == {"cam0_optical_frame"}
        assert sorted((m.ns, m.id, m.type) for m in msg.markers) == sorted(
            [("cameras", i, 0) for i in range(6)] + [("names", i, 9) for i in range(6)])
        assert msg.markers[0].pose.position.x == 0.0 and msg.markers[0].text == ""

    for _, _, msg in topics[f"{NS}/novel_view/camera_info"]:  # the bag has no camera_info: K = 0, uncalibrated
        assert (msg.width, msg.height) == (24, 24) and not msg.k.any()
    assert summary["reference"] == REFERENCE  # the first of camera_topics: here every image topic, sorted
    assert summary["frames_in"] == {f"/rig/cam{i}/image_raw": CAPTURES for i in range(6)}
    assert sum(summary["frames_in"].values()) == 6 * CAPTURES
    assert set(summary["bad_frames"].values()) == {0}
    assert summary["views_rendered"] == len(views) >= 1
    assert summary["outputs"] == {t: len(v) for t, v in topics.items()}
    assert {"encode", "pose", "render", "segment", "relative_pose", "decode", "step"} <= set(summary["latency_ms"])
    assert all(0 <= s["p50_ms"] <= s["p99_ms"] for s in summary["latency_ms"].values())
    assert summary["wall_seconds"] > 0

    # rates: outputs on a fixed grid in bag time — the n-th never earlier than n periods after the
    # first (no bursts) — and none is missing beyond one
    last_input = max(t for _, t, _ in messages)
    for topic, rate in ((f"{NS}/novel_view/image", render_rate), (f"{NS}/latent_pose/rig_cam3", pose_rate)):
        log = [t for t, _, _ in topics[topic]]
        assert all(t - log[0] >= n * 1e9 / rate - 1000 for n, t in enumerate(log)), (topic, log)  # 1 µs: float seconds
        ticks = math.floor((last_input - log[0]) * 1e-9 * rate) + 1
        assert abs(len(log) - ticks) <= 1, (topic, len(log), ticks)


def test_bad_frames_are_counted_and_skipped_with_sqlite3_storage(rig, model_dir, tmp_path, capsys):
    messages, _ = rig
    messages = messages[:18]  # the first scene
    t_bad = messages[8][1] + 1
    bag = tmp_path / "bad"
    with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {t: writer.add_connection(t, "sensor_msgs/msg/Image", typestore=TYPESTORE)
                 for t in sorted({t for t, _, _ in messages})}
        for index, (topic, log_ns, msg) in enumerate(messages):
            writer.write(conns[topic], log_ns, TYPESTORE.serialize_cdr(msg, msg.__msgtype__))
            if index == 8:
                yuv = TYPESTORE.types["sensor_msgs/msg/Image"](
                    header=msg.header, height=32, width=32, encoding="yuv422", is_bigendian=0, step=64,
                    data=np.zeros(32 * 64, np.uint8))
                writer.write(conns["/rig/cam2/image_raw"], t_bad, TYPESTORE.serialize_cdr(yuv, yuv.__msgtype__))
                writer.write(conns["/rig/cam4/image_raw"], t_bad + 1, b"\x00\x01\x00\x00garbage")  # not CDR of an Image
    topics, summary = run_offline(bag, model_dir, tmp_path / "out", "--storage", "sqlite3")
    assert [p.suffix for p in (tmp_path / "out").iterdir() if p.suffix in (".db3", ".mcap")] == [".db3"]
    assert summary["bad_frames"]["/rig/cam2/image_raw"] == 1 and summary["bad_frames"]["/rig/cam4/image_raw"] == 1
    assert summary["frames_in"]["/rig/cam2/image_raw"] == 4 and summary["frames_in"]["/rig/cam0/image_raw"] == 3
    assert "yuv422" in capsys.readouterr().err
    assert summary["views_rendered"] == len(topics[f"{NS}/novel_view/image"]) >= 1


def test_a_bag_loop_is_counted_as_a_time_reset_and_outputs_follow_the_new_timeline(rig, model_dir, tmp_path):
    """The first scene recorded twice, the second time with header stamps 10 s back (log times go
    on): the first camera to jump restarts every buffer, and each camera counts its reset once."""
    messages, _ = rig
    first = messages[:18]
    shift, back = first[-1][1] - first[0][1] + 100_000_000, 10 * 10**9
    looped = []
    for topic, log_ns, msg in first:
        stamp = log_ns - back
        header = TYPESTORE.types["std_msgs/msg/Header"](
            stamp=TYPESTORE.types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
            frame_id=msg.header.frame_id)
        looped.append((topic, log_ns + shift, dataclasses.replace(msg, header=header)))
    bag = make_rig_bag.write_bag(tmp_path / "loop", first + looped)
    topics, summary = run_offline(bag, model_dir, tmp_path / "out")
    cameras = [f"/rig/cam{i}/image_raw" for i in range(6)]
    assert summary["time_resets"] == dict.fromkeys(cameras, 1)
    assert summary["out_of_order"] == dict.fromkeys(cameras, 0)
    new_timeline = [m for t, _, m in topics[f"{NS}/novel_view/image"] if t > first[-1][1]]
    assert new_timeline and all(m.header.stamp.sec * 10**9 < first[0][1] - back // 2 for m in new_timeline)


def test_missing_model_dir_is_a_one_line_error(rig, tmp_path):
    _, bag = rig
    result = subprocess.run([sys.executable, "-m", "ros2_rust_node.offline", "--bag", str(bag), "--model-dir",
                             str(tmp_path / "nope"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "rust_offline: error:" in result.stderr and "nope" in result.stderr
    assert not (tmp_path / "out").exists()


def test_make_rig_bag_command_line_writes_bgr8(rig, tmp_path, capsys):
    messages, _ = rig
    assert make_rig_bag.main(["--out", str(tmp_path / "bgr"), "--scenes", "1", "--size", "32", "--encoding", "bgr8"]) == 0
    topics = read_bag(tmp_path / "bgr")
    first, same = topics[REFERENCE][0][2], next(m for t, _, m in messages if t == REFERENCE)  # same seed, same scene
    assert first.encoding == "bgr8" and first.header.stamp == same.header.stamp
    assert np.array_equal(image_msg_to_rgb8(first), image_msg_to_rgb8(same))


def test_one_camera_renders_from_its_earlier_frames(rig, model_dir, tmp_path):
    """--camera-topics with one topic (buffer 4, a model of 5 inputs) gave an empty bag; now the
    reference's earlier frames fill the inputs."""
    _, bag = rig
    topics, summary = run_offline(bag, model_dir, tmp_path / "out", "--camera-topics", "/rig/cam3/image_raw")
    assert summary["reference"] == "/rig/cam3/image_raw" and summary["views_rendered"] >= 1
    assert len(topics[f"{NS}/novel_view/image"]) == summary["views_rendered"]


def test_a_reference_dropout_gives_no_duplicate_stamps(rig, model_dir, tmp_path):
    """The reference camera drops out for 4 s of a 10 Hz recording (the others go on): no novel view
    repeats a stamp (the stale scene representation is not re-rendered), and views resume after."""
    messages = list(rig_messages(scenes=4, size=32, rate_hz=10.0, seed=1))
    start = messages[0][1]
    stretched = []  # 4 scenes × 3 captures, each capture held for 0.5 s: 6 s at 10 Hz
    for k in range(60):
        for topic, _, msg in messages[(k // 5) * 6:(k // 5) * 6 + 6]:
            log_ns = start + k * 100_000_000
            if topic == REFERENCE and 10 <= k < 50:
                continue
            header = TYPESTORE.types["std_msgs/msg/Header"](stamp=TYPESTORE.types["builtin_interfaces/msg/Time"](
                sec=log_ns // 10**9, nanosec=log_ns % 10**9), frame_id=msg.header.frame_id)
            stretched.append((topic, log_ns, dataclasses.replace(msg, header=header)))
    bag = write_bag(tmp_path / "dropout", stretched)
    topics, summary = run_offline(bag, model_dir, tmp_path / "out")
    stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for _, _, m in topics[f"{NS}/novel_view/image"]]
    assert len(stamps) == len(set(stamps)) >= 4, stamps
    assert any(t > start + 5 * 10**9 for t, _, _ in topics[f"{NS}/novel_view/image"])  # back after the dropout


def test_a_node_configuration_replays_with_its_params_file(rig, model_dir, tmp_path):
    """config/node.yaml as a user edits it (relative camera topics, another reference camera, the
    latent poses off, another novel-view frame id): rust_offline --params-file writes what the node
    would publish with it, and a flag overrides the file."""
    _, bag = rig
    data = yaml.safe_load((ROOT / "config" / "node.yaml").read_text())
    params = data["rust_node"]["ros__parameters"]
    params.update(model_dir=str(model_dir), reference_camera="rig/cam2/image_raw", publish_latent_pose=False,
                  novel_view_frame_id="replayed_frame", render_size=16, render_rate=4.0)
    (tmp_path / "node.yaml").write_text(yaml.safe_dump(data))
    assert offline.main(["--bag", str(bag), "--out", str(tmp_path / "out"), "--quiet",
                         "--params-file", str(tmp_path / "node.yaml"), "--render-size", "24"]) == 0
    topics, summary = read_bag(tmp_path / "out"), json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["cameras"] == [f"/rig/cam{i}/image_raw" for i in range(6)]
    assert summary["reference"] == "/rig/cam2/image_raw"
    assert summary["parameters"]["render_size"] == 24 and summary["parameters"]["render_rate"] == 4.0
    assert not [t for t in topics if "/latent_pose/" in t]
    assert f"{NS}/relative_pose/rig_cam0" in topics and f"{NS}/relative_pose/rig_cam2" not in topics
    views = [m for _, _, m in topics[f"{NS}/novel_view/image"]]
    assert views and {(m.header.frame_id, m.width) for m in views} == {("replayed_frame", 24)}
    for _, _, msg in topics[f"{NS}/relative_pose/rig_cam0"]:
        assert msg.header.frame_id == "cam2_optical_frame"  # relative to the reference camera


def test_camera_info_in_the_bag_gives_the_novel_view_intrinsics(rig, model_dir, tmp_path):
    """As the node does with a live camera_info: the reference camera's K scaled to the render size
    (each camera_info logged just before its image, as drivers send them)."""
    messages, _ = rig
    info = [("/rig/cam0/camera_info", log_ns - 1000, TYPESTORE.types["sensor_msgs/msg/CameraInfo"](
        header=msg.header, height=32, width=32, distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array([40.0, 0, 16, 0, 40, 16, 0, 0, 1]), r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                                do_rectify=False)))
        for topic, log_ns, msg in messages if topic == REFERENCE]
    bag = write_bag(tmp_path / "with_info", sorted(messages + info, key=lambda m: m[1]))
    topics, _ = run_offline(bag, model_dir, tmp_path / "out", "--render-size", "24")
    infos = [m for _, _, m in topics[f"{NS}/novel_view/camera_info"]]
    assert infos and all(m.k.tolist() == [30.0, 0, 12, 0, 30, 12, 0, 0, 1] and m.distortion_model == "plumb_bob"
                         for m in infos)
