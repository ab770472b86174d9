"""In-process check of rust_node's handling of bad input and failing inference, run by
tests/test_node_live.py inside `unshare -n`: the node's own callbacks are called directly, with
synthetic stamps, so nothing depends on timing. Writes what it saw to the JSON file given as the
second argument (its log goes to stderr, which the test reads); the test makes the assertions.
The worker thread's tick is set to an hour (`IDLE_WORKER`), so only the check's calls run steps.

The caller sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from ros2_rust_node.node import RustNode
from rust_perception.image_codec import fill_image_msg

CAMS = ["cam0/image_raw", "cam1/image_raw"]
IDLE_WORKER = Parameter("worker_period", value=3600.0)


def image(stamp: float, size: int = 32) -> Image:
    msg = fill_image_msg(Image(), np.full((size, size, 3), 128, np.uint8), "rgb8")
    msg.header.stamp = Time(sec=int(stamp), nanosec=round(stamp % 1 * 1e9))
    return msg


def receive(node: RustNode, topic: str, msg: Image) -> None:
    """A frame as the node gets it: the subscription callback, then the worker's decoding."""
    node.on_image(topic, msg)
    node.decode_pending()


def level(status) -> int:
    return int.from_bytes(status.level, "little") if isinstance(status.level, bytes) else int(status.level)


def one_camera(model_dir: str) -> dict:
    """One absolute camera topic for a model of 5 inputs, buffer_size 4; a 1 s status window."""
    node = RustNode("one_camera", parameter_overrides=[
        Parameter("model_dir", value=model_dir), Parameter("camera_topics", value=["/solo/image_raw"]),
        Parameter("backend", value="onnxruntime"), Parameter("buffer_size", value=4),
        Parameter("status_window", value=1.0), IDLE_WORKER])
    out = {"configure": node.trigger_configure().name, "activate": node.trigger_activate().name}
    start = time.time()
    for k in range(5):
        receive(node, "/solo/image_raw", image(start + 0.1 * k))
    step = node.pipeline.step(time.monotonic())
    out["encoded"], out["novel_view"] = step.encoded, step.novel_view is not None
    receive(node, "/solo/image_raw", image(0.0))  # one bad frame (unstamped)
    status = node.diagnostic_status()
    out["keys"] = [kv.key for kv in status.values]
    out["after_bad"] = [level(status), status.message]
    for k in range(12):  # 1.2 s of good frames
        receive(node, "/solo/image_raw", image(start + 0.5 + 0.1 * k))
        time.sleep(0.1)
    status = node.diagnostic_status()
    out["later"] = [level(status), status.message]
    node.destroy_node()
    return out


def refused_configures(model_dir: str) -> dict:
    """Invalid values given at start (a params file, -p; no set-parameters callback sees them):
    configure fails with the reason in the log."""
    out = {}
    for name, bad in (("bad_motion", Parameter("novel_view_motion", value="sideways")),
                      ("bad_reference", Parameter("reference_camera", value="cam9/image_raw"))):
        node = RustNode(name, parameter_overrides=[Parameter("model_dir", value=model_dir),
                                                   Parameter("camera_topics", value=CAMS), bad])
        out[name] = node.trigger_configure().name
        node.destroy_node()
    return out


def main(model_dir: str, out_path: str) -> int:
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST", "refusing to start DDS beyond localhost"
    rclpy.init()
    node = RustNode(parameter_overrides=[Parameter("model_dir", value=model_dir), Parameter("camera_topics", value=CAMS),
                                         Parameter("backend", value="onnxruntime"), Parameter("stale_after", value=0.5), IDLE_WORKER])
    report = {"configure": node.trigger_configure().name, "activate": node.trigger_activate().name}
    for t in (100.0, 100.1, 100.2):
        for cam in CAMS:
            receive(node, cam, image(t))
    node.work()
    node.diagnostic_status()  # as the diagnostics timer does: both cameras sending

    def boom(now):
        raise RuntimeError("injected inference failure")

    node.pipeline.step = boom  # an unexpected exception from inference, three ticks in a row
    for _ in range(3):
        node.work()
    del node.pipeline.step
    time.sleep(0.6)
    for cam in CAMS:  # silence is measured by the clock: the cameras go on sending
        receive(node, cam, image(100.22))
    node.work()  # and the next tick, a re-encode due, works again
    report["worker_errors"] = node.worker_errors
    report["encodes"] = node.pipeline.latency.summary()["encode"]["n"]

    # image callbacks never wait for inference: hold the next encode until a timer releases it
    release, encode = threading.Event(), node.engine.encode
    node.engine.encode = lambda views: release.wait(10) and encode(views)
    time.sleep(0.6)
    for cam in CAMS:
        receive(node, cam, image(100.24))
    worker = threading.Thread(target=node.work)
    worker.start()
    time.sleep(0.2)  # the worker is inside the encode now
    threading.Timer(2.0, release.set).start()
    start = time.perf_counter()
    node.on_image(CAMS[0], image(100.25))  # the callback alone: it only queues
    report["callback_ms_during_inference"] = (time.perf_counter() - start) * 1000
    worker.join()
    del node.engine.encode

    receive(node, CAMS[1], image(0.0))  # a zero stamp
    time.sleep(5.1)  # past the throttle of the bad-frame warning, so the second reason is logged too
    receive(node, CAMS[1], image(100.3, size=0))  # 0×0
    for t in (100.3, 100.4, 100.5, 100.6, 100.7, 100.8):  # cam1 goes silent
        receive(node, CAMS[0], image(t))
    report["silent_status"] = node.diagnostic_status().message
    receive(node, CAMS[0], image(100.75))  # a late frame: dropped
    receive(node, CAMS[0], image(3.0))  # a bag loop: a new timeline
    receive(node, CAMS[1], image(3.0))
    status = node.diagnostic_status()
    report["level"] = level(status)
    report["message"] = status.message
    report["values"] = {kv.key: kv.value for kv in status.values}
    report["live_after_reset"] = node.pipeline.memory.live_cameras()
    node.destroy_node()
    report["one_camera"] = one_camera(model_dir)
    report["refused_configures"] = refused_configures(model_dir)
    rclpy.shutdown()
    Path(out_path).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
