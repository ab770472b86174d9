"""`rust_node`: the ROS 2 lifecycle node. rclpy glue only — parameters, QoS, subscriptions,
publishers and message conversion; everything it decides is `rust_perception.scene_memory.Pipeline`.

    ros2 run rust_perception rust_node --ros-args --params-file config/node.yaml

Lifecycle: parameters are declared in `__init__`; configure loads the engine and creates
publishers and subscriptions (a missing or broken model fails configure with the reason);
activate starts the inference worker; deactivate stops it; cleanup releases the engine.
A transition requested in a state that does not offer it answers success=false at once (rclpy
would raise out of the executor and never answer). Image callbacks only decode into bounded
per-camera buffers; inference runs in a thread of its own, started on activate and joined on
deactivate. (A worker timer under rclpy's MultiThreadedExecutor made the executor spin on the
busy timer, holding the GIL: inference calls of ~1 ms took up to 2 s and frame callbacks stalled
long enough for every camera to look silent.) Bad input (undecodable, empty or unstamped frames,
timestamps jumping back, a camera silent by the clock, a camera topic nobody publishes or
publishes with another type) and failed inference steps are warned about (throttled), counted in
/diagnostics, whose level reflects the last `status_window` seconds, and survived.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data, qos_profile_system_default
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from visualization_msgs.msg import Marker, MarkerArray

from rust_perception.errors import UserError
from rust_perception.image_codec import compressed_to_rgb8, fill_image_msg, image_msg_to_rgb8, resize_rgb
from rust_perception.scene_memory import Pipeline, PipelineConfig, RecentEvents

from .markers import camera_markers, quaternion
from .naming import camera_info_topic, camera_name, optical_frame, reference_camera, stamp_to_seconds

IMAGE_TYPES = {False: "sensor_msgs/msg/Image", True: "sensor_msgs/msg/CompressedImage"}  # by "/compressed"
QOS = {"sensor_data": qos_profile_sensor_data, "default": qos_profile_system_default,
       "reliable": QoSProfile(depth=10)}

# name → (default, description); the types come from the defaults
PARAMETERS = {
    "camera_topics": (["cam0/image_raw"], "image topics of the rig (sensor_msgs/Image or, ending in /compressed, "
                                          "CompressedImage), relative to the node's namespace"),
    "reference_camera": ("", "topic of the reference camera: the first input view, and the frame relative poses "
                             "are given in (default: the first camera topic)"),
    "model_dir": ("", "model directory written by trainer/export.py"),
    "backend": ("auto", "auto | tensorrt | onnxruntime | torch"),
    "threads": (0, "CPU threads of the engine (0: its default)"),
    "slsr_period": (0.5, "seconds between re-encodes of the scene representation"),
    "render_rate": (2.0, "novel views per second"),
    "render_size": (0, "novel-view size in pixels (0: the model's image size)"),
    "pose_rate": (2.0, "latent poses, relative poses and segmentation per second"),
    "novel_view_motion": ("none", "none | up | closer | rotate | forward | traversal: where the novel view looks "
                                  "from, relative to the reference camera, in the latent pose space"),
    "novel_view_camera": ("", "topic of the camera whose latent pose the novel view starts from (default: the "
                              "reference camera); `ros2 param set` switches it live"),
    "novel_view_amount": (1.0, "standard deviations moved along the latent component of novel_view_motion"),
    "sync_tolerance": (0.05, "seconds: frames of other cameras this close to the reference frame count as synchronous"),
    "stale_after": (1.0, "seconds without frames after which a camera counts as silent"),
    "buffer_size": (4, "frames kept per camera (the oldest is evicted)"),
    "publish_segmentation": (True, "publish segmentation (needs a model with a segmentation head)"),
    "publish_relative_pose": (True, "publish relative poses (needs a model with an EPE head)"),
    "publish_latent_pose": (True, "publish each camera's latent pose"),
    "novel_view_frame_id": ("rust_novel_view_optical_frame", "frame id of the novel view"),
    "input_qos": ("sensor_data", "QoS of image subscriptions: sensor_data | default | reliable"),
    "output_qos": ("default", "QoS of publishers: default | reliable | sensor_data"),
    "worker_period": (0.005, "seconds between inference worker ticks (a coarse tick makes outputs late)"),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages"),
    "status_window": (5.0, "seconds of bad frames and failed inference steps that keep /diagnostics at WARN"),
    "input_timeout": (3.0, "seconds after activate after which a camera topic that delivered nothing is logged "
                           "with the reason (no publisher, or another message type)"),
    "publish_tf": (False, "broadcast relative poses as TF <camera>_estimated frames under the reference's optical "
                          "frame (needs tf2_ros; never fights URDF extrinsics, which use other frame names)"),
}


class RustNode(LifecycleNode):
    def __init__(self, name: str = "rust_node", **kwargs):
        super().__init__(name, **kwargs)
        for key, (default, description) in PARAMETERS.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=description))
        self.engine = self.pipeline = None
        self.subs, self.pubs, self.timers_ = [], {}, []
        self.worker: threading.Thread | None = None
        self.stop_worker = threading.Event()
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.bad_frames: dict[str, int] = {}
        self.worker_errors = 0
        self.camera_info: dict[str, CameraInfo] = {}
        self.frame_ids: dict[str, str] = {}  # topic → its images' latest header.frame_id
        self.published: dict[str, int] = {}
        self.image_subs: dict[str, object] = {}  # camera topic → its subscription (resolved name, graph queries)
        self.input_reported: dict[str, str] = {}  # camera topic → the input problem last logged
        self.activated_at = 0.0
        self.answer_wrong_state_transitions()
        self.input_group = MutuallyExclusiveCallbackGroup()  # each camera's frames in arrival order

    def p(self, key):
        return self.get_parameter(key).value

    def answer_wrong_state_transitions(self) -> None:
        """rclpy's change_state service raises RCLError for a transition the current state does not
        offer, out of the executor, and never answers (the client waits for its timeout): answer
        success=false at once, and say why in the log."""
        service = self._service_change_state
        handle = service.callback

        def change_state(request, response):
            available = {t[0]: t[1] for t in self._state_machine.available_transitions}
            if not request.transition.label and request.transition.id not in available:
                state = self._state_machine.current_state[1]
                self.get_logger().warning(f"lifecycle transition {request.transition.id} refused in state {state!r} "
                                          f"(available: {', '.join(available.values()) or 'none'})")
                response.success = False
                return response
            return handle(request, response)

        service.callback = change_state

    def on_set_parameters(self, params) -> SetParametersResult:
        """`novel_view_camera` switches live (`ros2 param set`), once, not polled by the worker;
        a topic that is not one of camera_topics is refused with the reason."""
        for param in params:
            if param.name == "novel_view_camera":
                if param.value and param.value not in self.p("camera_topics"):
                    return SetParametersResult(successful=False,
                                               reason=f"{param.value!r} is not one of camera_topics")
                if self.pipeline is not None:
                    self.pipeline.cfg.novel_view_camera = param.value
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from rust_perception.runtime import create_engine

        topics = list(self.p("camera_topics"))
        reference = reference_camera(topics, self.p("reference_camera"))
        if reference not in topics:
            self.get_logger().error(f"reference_camera {reference!r} is not one of camera_topics {topics}")
            return TransitionCallbackReturn.FAILURE
        if self.p("novel_view_camera") not in ("", *topics):
            self.get_logger().error(f"novel_view_camera {self.p('novel_view_camera')!r} is not one of camera_topics {topics}")
            return TransitionCallbackReturn.FAILURE
        try:
            self.engine = create_engine(self.p("model_dir"), self.p("backend"), threads=self.p("threads"))
        except (UserError, OSError) as exc:
            self.get_logger().error(f"cannot load the model: {exc}")
            return TransitionCallbackReturn.FAILURE
        cfg = PipelineConfig(cameras=topics, reference_camera=reference, slsr_period=self.p("slsr_period"),
                             render_rate=self.p("render_rate"), render_size=self.p("render_size"),
                             pose_rate=self.p("pose_rate"), novel_view_motion=self.p("novel_view_motion"),
                             novel_view_amount=self.p("novel_view_amount"),
                             novel_view_camera=self.p("novel_view_camera"), sync_tolerance=self.p("sync_tolerance"),
                             stale_after=self.p("stale_after"), buffer_size=self.p("buffer_size"),
                             publish_segmentation=self.p("publish_segmentation") and self.engine.meta["segmentation"],
                             publish_relative_pose=self.p("publish_relative_pose") and self.engine.meta["epe"])
        self.pipeline = Pipeline(self.engine, cfg)
        self.silent = set(topics)  # warned about when a camera that sent goes silent
        self.recent_bad, self.recent_errors = RecentEvents(self.p("status_window")), RecentEvents(self.p("status_window"))
        self.get_logger().info(f"engine {self.engine.name} ({self.p('backend')}), model {self.p('model_dir')}, "
                               f"{len(topics)} cameras, reference {reference}")
        inputs = self.engine.meta["num_inputs"]
        if len(topics) < inputs:
            self.get_logger().info(f"{len(topics)} camera(s) for a model of {inputs} input views: earlier frames of "
                                   f"the reference camera fill the inputs (its buffer holds "
                                   f"{max(inputs, self.p('buffer_size'))} frames)")
        if self.p("publish_segmentation") and not self.engine.meta["segmentation"]:
            self.get_logger().warning("the model has no segmentation head: segmentation topics are not published")
        if self.p("publish_relative_pose") and not self.engine.meta["epe"]:
            self.get_logger().warning("the model has no EPE head: relative-pose topics are not published")
        out_qos = QOS[self.p("output_qos")]
        pub = lambda kind, topic: self.create_lifecycle_publisher(kind, topic, out_qos)  # noqa: E731
        self.pubs = {"novel": pub(Image, "~/novel_view/image"), "novel_info": pub(CameraInfo, "~/novel_view/camera_info"),
                     "diagnostics": pub(DiagnosticArray, "/diagnostics")}
        for topic in topics:
            name = camera_name(topic)
            if self.p("publish_latent_pose"):
                self.pubs[f"latent/{topic}"] = pub(JointState, f"~/latent_pose/{name}")
            if cfg.publish_relative_pose and topic != reference:
                self.pubs[f"relative/{topic}"] = pub(PoseWithCovarianceStamped, f"~/relative_pose/{name}")
            if cfg.publish_segmentation:
                self.pubs[f"seg/{topic}"] = pub(Image, f"~/segmentation/{name}/image")
                self.pubs[f"segcolor/{topic}"] = pub(Image, f"~/segmentation/{name}/color")
            compressed = topic.endswith("/compressed")
            self.image_subs[topic] = self.create_subscription(
                CompressedImage if compressed else Image, topic, lambda msg, t=topic: self.on_image(t, msg),
                QOS[self.p("input_qos")], callback_group=self.input_group)
            self.subs.append(self.image_subs[topic])
            self.subs.append(self.create_subscription(
                CameraInfo, camera_info_topic(topic), lambda msg, t=topic: self.camera_info.__setitem__(t, msg),
                QOS[self.p("input_qos")], callback_group=self.input_group))
        if cfg.publish_relative_pose:
            self.pubs["markers"] = pub(MarkerArray, "~/camera_poses")
        self.palette = np.array([c["color"] for c in self.engine.meta["classes"]] or [[0, 0, 0]], np.uint8)
        self.tf = None
        if self.p("publish_tf"):
            try:
                from tf2_ros import TransformBroadcaster

                self.tf = TransformBroadcaster(self)
            except ImportError:
                self.get_logger().warning("publish_tf is set but tf2_ros is not importable: no TF is broadcast")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.activated_at, self.input_reported = time.monotonic(), {}
        self.timers_ = [self.create_timer(self.p("diagnostics_period"), self.publish_diagnostics)]
        self.stop_worker.clear()
        self.worker = threading.Thread(target=self.run_worker, name="rust_inference", daemon=True)
        self.worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.halt()
        return super().on_deactivate(state)

    def halt(self) -> None:
        """Stop the worker (waiting for the step in flight) and the diagnostics timer."""
        self.stop_worker.set()
        if self.worker is not None:
            self.worker.join()
        self.worker = None
        for timer in self.timers_:
            self.destroy_timer(timer)
        self.timers_ = []

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for sub in self.subs:
            self.destroy_subscription(sub)
        for publisher in self.pubs.values():
            self.destroy_lifecycle_publisher(publisher)
        self.subs, self.pubs, self.engine, self.pipeline, self.frame_ids = [], {}, None, None, {}
        self.image_subs = {}
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.halt()
        return self.on_cleanup(state) if self.pipeline is not None else TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ input
    def on_image(self, topic: str, msg) -> None:
        """Decode, fit to the model's size, buffer. Bad frames are counted and warned about."""
        pipeline = self.pipeline
        if pipeline is None or self.worker is None:
            return
        stamp, now = stamp_to_seconds(msg.header.stamp), time.monotonic()
        try:  # anything a corrupt message raises: count it, skip it, go on
            if stamp == 0.0:  # it could be neither synchronised nor put on the outputs
                raise ValueError("header stamp is zero: the driver does not stamp its images")
            rgb = compressed_to_rgb8(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb8(msg)
            if rgb.shape[0] == 0 or rgb.shape[1] == 0:
                raise ValueError("image is empty (0 pixels)")
            rgb = resize_rgb(rgb, self.engine.size)
        except Exception as exc:  # noqa: BLE001
            self.bad_frames[topic] = self.bad_frames.get(topic, 0) + 1
            self.recent_bad.add(topic, now)
            self.get_logger().warning(f"{topic}: frame skipped ({exc})", throttle_duration_sec=5.0)
            return
        if msg.header.frame_id:
            self.frame_ids[topic] = msg.header.frame_id
        result = pipeline.add_frame(topic, stamp, rgb, now)  # SceneMemory locks only its buffers
        if result == "time_reset":
            self.get_logger().warning(f"{topic}: timestamp jumped back more than stale_after "
                                      f"({pipeline.cfg.stale_after} s; a bag loop, sim-time reset or driver "
                                      f"restart?): buffers restarted on the new timeline", throttle_duration_sec=5.0)
        elif result == "out_of_order":
            self.get_logger().warning(f"{topic}: frame older than the newest dropped (timestamps jumping back)",
                                      throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ inference and output
    def _subscribed(self, key: str) -> bool:
        publisher = self.pubs.get(key)
        return publisher is not None and publisher.get_subscription_count() > 0

    def run_worker(self) -> None:
        """The inference thread: a step every `worker_period` seconds until deactivated."""
        period = self.p("worker_period")
        while not self.stop_worker.wait(period):
            self.work()

    def work(self) -> None:
        """One worker tick. An exception escaping would end the worker thread, so a failing
        inference step is logged (throttled), counted, and the next tick tries again."""
        try:
            self._work()
        except Exception as exc:  # noqa: BLE001
            self.worker_errors += 1
            self.recent_errors.add("worker", time.monotonic())
            self.get_logger().error(f"inference step failed, skipped ({type(exc).__name__}: {exc})",
                                    throttle_duration_sec=5.0)

    def _work(self) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        cfg, topics = pipeline.cfg, pipeline.cfg.cameras  # skip outputs nobody listens to
        cfg.render = self._subscribed("novel")
        cfg.publish_segmentation = self.engine.meta["segmentation"] and self.p("publish_segmentation") and any(
            self._subscribed(f"seg/{t}") or self._subscribed(f"segcolor/{t}") for t in topics)
        cfg.publish_relative_pose = self.engine.meta["epe"] and self.p("publish_relative_pose") and (any(
            self._subscribed(f"relative/{t}") for t in topics) or self._subscribed("markers"))
        out = pipeline.step(time.monotonic())  # inference runs outside any lock the image callbacks take
        if out.stamp == 0.0:
            return
        stamp = rclpy.time.Time(seconds=out.stamp).to_msg()
        frame_stamp = lambda topic: rclpy.time.Time(seconds=out.frame_stamps[topic]).to_msg()  # noqa: E731
        reference_frame = optical_frame(self.frame_ids, cfg.reference_camera)
        if out.novel_view is not None:
            image = fill_image_msg(Image(), out.novel_view, "rgb8")
            image.header.stamp, image.header.frame_id = stamp, self.p("novel_view_frame_id")
            self._publish("novel", image)
            self._publish("novel_info", self.novel_camera_info(image))
        for topic, latent in out.latent_poses.items():  # stamped with the frame it was estimated from
            if f"latent/{topic}" in self.pubs:
                msg = JointState(name=[f"z{i}" for i in range(len(latent))], position=[float(v) for v in latent])
                msg.header.stamp, msg.header.frame_id = frame_stamp(topic), optical_frame(self.frame_ids, topic)
                self._publish(f"latent/{topic}", msg)
        for topic, rel in out.relative_poses.items():
            msg = PoseWithCovarianceStamped()
            msg.header.stamp, msg.header.frame_id = frame_stamp(topic), reference_frame
            p = msg.pose.pose
            p.position.x, p.position.y, p.position.z = (float(v) for v in rel["position"])
            p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = quaternion(rel["rotation"])
            self._publish(f"relative/{topic}", msg)
            if self.tf is not None:
                self.broadcast(msg, f"{camera_name(topic)}_estimated")
        if out.relative_poses and self._subscribed("markers"):
            self._publish("markers", self.camera_marker_array(out, frame_stamp(cfg.reference_camera), reference_frame))
        for topic, labels in out.segmentation.items():
            frame = optical_frame(self.frame_ids, topic)
            for key, array, encoding in ((f"seg/{topic}", labels, "mono8"),
                                         (f"segcolor/{topic}", self.palette[np.minimum(labels, len(self.palette) - 1)], "rgb8")):
                msg = fill_image_msg(Image(), array, encoding)
                msg.header.stamp, msg.header.frame_id = frame_stamp(topic), frame
                self._publish(key, msg)

    def camera_marker_array(self, out, stamp, frame_id: str) -> MarkerArray:
        """Arrows and names of the cameras at their estimated poses, in the reference camera's
        frame; they expire after two pose periods, so cameras that stop being estimated vanish."""
        seconds = 2.0 / self.pipeline.cfg.pose_rate
        lifetime = Duration(sec=int(seconds), nanosec=int(seconds % 1 * 1e9))
        markers = []
        for m in camera_markers(out.relative_poses, self.pipeline.cfg.cameras, self.pipeline.cfg.reference_camera):
            marker = Marker(ns=m["ns"], id=m["id"], type=m["type"], action=Marker.ADD, text=m["text"], lifetime=lifetime)
            marker.header.stamp, marker.header.frame_id = stamp, frame_id
            pose = marker.pose
            pose.position.x, pose.position.y, pose.position.z = m["position"]
            pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = m["orientation"]
            marker.scale.x, marker.scale.y, marker.scale.z = m["scale"]
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = m["color"]
            markers.append(marker)
        return MarkerArray(markers=markers)

    def broadcast(self, pose: PoseWithCovarianceStamped, child: str) -> None:
        from geometry_msgs.msg import TransformStamped

        t = TransformStamped(header=pose.header, child_frame_id=child)
        p = pose.pose.pose
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = p.position.x, p.position.y, p.position.z
        t.transform.rotation = p.orientation
        self.tf.sendTransform(t)

    def _publish(self, key: str, msg) -> None:
        self.pubs[key].publish(msg)
        self.published[key] = self.published.get(key, 0) + 1

    def novel_camera_info(self, image: Image) -> CameraInfo:
        """The intrinsics of the camera the view starts from (novel_view_camera, else the
        reference) scaled to the render size when it publishes camera_info; otherwise K = 0 (ROS:
        uncalibrated) — RUST itself never knows intrinsics."""
        info = CameraInfo(header=image.header, width=image.width, height=image.height)
        ref = self.camera_info.get(self.pipeline.novel_camera())
        if ref is not None and ref.width and ref.height:
            s = min(ref.width, ref.height)  # the model sees the centre square
            scale = image.width / s
            k = np.array(ref.k, float).reshape(3, 3)
            k[0, 2] -= (ref.width - s) / 2
            k[1, 2] -= (ref.height - s) / 2
            k[:2] *= scale
            info.k = [float(v) for v in k.ravel()]
            info.distortion_model = ref.distortion_model
        return info

    def input_problems(self, stats: dict, now: float) -> dict[str, str]:
        """Camera topics that delivered nothing `input_timeout` s after activate → why, from the ROS
        graph: no publisher (beside the image topics that do exist), or another message type.
        Each is logged once by name (again if the reason changes)."""
        if now - self.activated_at < self.p("input_timeout"):
            return {}
        problems = {}
        for topic, sub in self.image_subs.items():
            if stats[topic]["received"] or self.bad_frames.get(topic):
                continue
            name, wanted = sub.topic_name, IMAGE_TYPES[topic.endswith("/compressed")]
            types = sorted({info.topic_type for info in self.get_publishers_info_by_topic(name)})
            if not types:
                own = self.get_fully_qualified_name() + "/"
                images = sorted(t for t, kinds in self.get_topic_names_and_types()
                                if set(kinds) & set(IMAGE_TYPES.values()) and not t.startswith(own)
                                and self.count_publishers(t))
                problems[topic] = (f"camera topic {name} has no publisher; image topics that exist: "
                                   f"{', '.join(images) or 'none'}")
            elif wanted not in types:
                hint = "a CompressedImage topic must end in /compressed" if wanted == IMAGE_TYPES[False] else \
                    "a topic ending in /compressed is subscribed to as CompressedImage"
                problems[topic] = (f"camera topic {name} is published as {', '.join(types)}, but subscribed to as "
                                   f"{wanted} ({hint})")
            else:
                problems[topic] = f"camera topic {name} has a publisher, but no frame arrived (QoS mismatch?)"
        for topic, problem in problems.items():
            if self.input_reported.get(topic) != problem:
                log = self.get_logger().error if topic == self.pipeline.cfg.reference_camera else self.get_logger().warning
                log(f"{problem} after {self.p('input_timeout')} s")
        self.input_reported = problems
        return problems

    def diagnostic_status(self) -> DiagnosticStatus:
        """The node's /diagnostics entry, its level and message from what holds now (silence by
        the clock, input problems) and over the last `status_window` s (bad frames, failed
        inference steps); also warns when a camera that was sending goes silent."""
        now, cfg, memory = time.monotonic(), self.pipeline.cfg, self.pipeline.memory
        stats, latency = memory.stats(), self.pipeline.latency.summary()
        live = memory.live_cameras(now)
        values = [KeyValue(key="backend", value=self.engine.name),
                  KeyValue(key="worker_errors", value=str(self.worker_errors))]
        values += [KeyValue(key=f"latency_ms/{k}", value=f"{v['mean_ms']:.1f} (max {v['max_ms']:.1f})") for k, v in latency.items()]
        silent = [t for t in cfg.cameras if t not in live]
        for topic, s in stats.items():
            values.append(KeyValue(key=f"frames/{topic.lstrip('/')}", value=f"received {s['received']}, evicted {s['evicted']}, "
                                                                 f"out of order {s['out_of_order']}, "
                                                                 f"time resets {s['time_resets']}, "
                                                                 f"bad {self.bad_frames.get(topic, 0)}"))
        values += [KeyValue(key="published/" + "/".join(part.strip("/") for part in k.split("/", 1)), value=str(v))
                   for k, v in sorted(self.published.items())]
        status = DiagnosticStatus(name=f"{self.get_name()}: RUST", hardware_id=self.engine.name, values=values)
        problems, window = self.input_problems(stats, now), self.p("status_window")
        reasons, level = [], DiagnosticStatus.OK

        def why(topic):
            since = memory.silent_for(topic, now)
            return problems.get(topic) or ("no frame yet" if since is None else f"no frame for {since:.1f} s")

        if cfg.reference_camera in silent:
            level = DiagnosticStatus.ERROR
            reasons.append(f"no outputs: reference camera {cfg.reference_camera} silent ({why(cfg.reference_camera)})")
        if others := [t for t in silent if t != cfg.reference_camera]:
            level = max(level, DiagnosticStatus.WARN)
            reasons.append("silent cameras: " + ", ".join(f"{t} ({problems[t]})" if t in problems else t for t in others))
        if bad := self.recent_bad.counts(now):
            level = max(level, DiagnosticStatus.WARN)
            reasons.append(f"bad frames in the last {window:g} s: " + ", ".join(f"{t} {n}" for t, n in sorted(bad.items())))
        if errors := self.recent_errors.counts(now).get("worker"):
            level = max(level, DiagnosticStatus.WARN)
            reasons.append(f"{errors} failed inference steps in the last {window:g} s")
        status.level, status.message = level, "; ".join(reasons) or "ok"
        if gone := sorted(set(silent) - self.silent):
            self.get_logger().warning(f"silent (no frame for {self.pipeline.cfg.stale_after} s; left out until it "
                                      f"sends again): {', '.join(gone)}", throttle_duration_sec=5.0)
        self.silent = set(silent)
        return status

    def publish_diagnostics(self) -> None:
        if self.pipeline is None:
            return
        msg = DiagnosticArray(status=[self.diagnostic_status()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._publish("diagnostics", msg)


def main(args=None) -> int:
    rclpy.init(args=args)
    node = RustNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C, or SIGTERM (rclpy's handler shut down)
        pass
    finally:
        node.halt()  # no step publishes on a destroyed publisher
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    main()
