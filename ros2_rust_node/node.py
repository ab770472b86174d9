"""`rust_node`: the ROS 2 lifecycle node. rclpy glue only — parameters, QoS, subscriptions and
publishers; what it decides is `rust_perception.scene_memory.Pipeline`, its parameters are the
table in `rust_perception.node_config`, its outputs and their messages `outputs.py` — all shared
with `rust_offline`.

    ros2 run rust_perception rust_node --ros-args --params-file config/node.yaml

Lifecycle: parameters are declared in `__init__`; configure checks them, loads the engine and
creates publishers and subscriptions (an invalid value, or a missing or broken model, fails
configure with the reason); activate starts the inference worker; deactivate stops it; cleanup
releases the engine. `ros2 param set` is checked the same way.
A transition requested in a state that does not offer it answers success=false at once (rclpy
would raise out of the executor and never answer). Image callbacks only queue messages (a bounded
queue per camera); a thread of its own, started on activate and joined on deactivate, decodes
them, resizes them into the frame buffers and runs inference, so the executor keeps taking large
images off DDS while it works. (A worker timer under rclpy's MultiThreadedExecutor made the executor spin on the
busy timer, holding the GIL: inference calls of ~1 ms took up to 2 s and frame callbacks stalled
long enough for every camera to look silent.) Frames DDS reports lost in transport, and queued frames replaced
before the worker decoded them, are counted per camera. Bad input (undecodable, empty or unstamped frames,
timestamps jumping back, a camera silent by the clock, a camera topic nobody publishes or
publishes with another type) and failed inference steps are warned about (throttled), counted in
/diagnostics, whose level reflects the last `status_window` seconds, and survived.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections import deque

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data, qos_profile_system_default
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from rust_perception.errors import ConfigError, UserError
from rust_perception.image_codec import model_input
from rust_perception.node_config import SETTINGS, pipeline_config, validate
from rust_perception.scene_memory import Pipeline, RecentEvents

from .naming import camera_info_topic, camera_name
from .outputs import OUTPUTS, Adapter

# the usual cause of lost large images on one machine, and its fix (docs/node.md "Large images")
LOST_HINT = ("most images larger than the publisher's Fast DDS shared-memory segment (512 KiB by default) are "
             "dropped: start the camera drivers with FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 2.x) or "
             "FASTDDS_DEFAULT_PROFILES_FILE (3.x) set to <share>/rust_perception/config/fastdds_large_images.xml, "
             "or use input_qos reliable on both sides")
IMAGE_TYPES = {False: "sensor_msgs/msg/Image", True: "sensor_msgs/msg/CompressedImage"}  # by "/compressed"
QOS = {"sensor_data": qos_profile_sensor_data, "default": qos_profile_system_default,
       "reliable": QoSProfile(depth=10)}


@functools.cache
def message_class(name: str) -> type:
    """"sensor_msgs/msg/Image" → sensor_msgs.msg.Image."""
    package, kind, cls = name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), cls)


def new_message(msgtype: str, /, **fields):
    """The outputs' message maker (see outputs.py). Fields this ROS distro's class lacks are left
    out: Humble's Marker has no texture or mesh_file."""
    cls = message_class(msgtype)
    known = cls.get_fields_and_field_types()
    return cls(**{k: v for k, v in fields.items() if k in known})


class RustNode(LifecycleNode):
    def __init__(self, name: str = "rust_node", **kwargs):
        super().__init__(name, **kwargs)
        for key, setting in SETTINGS.items():
            self.declare_parameter(key, setting.default, ParameterDescriptor(
                description=setting.description, additional_constraints=setting.constraints))
        self.engine = self.pipeline = self.adapter = None
        self.subs, self.pubs, self.timers_ = [], {}, []
        self.worker: threading.Thread | None = None
        self.stop_worker = threading.Event()
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.bad_frames: dict[str, int] = {}
        self.pending: dict[str, deque] = {}  # camera topic → (message, arrival) not decoded yet, oldest first
        self.undecoded: dict[str, int] = {}  # camera topic → messages replaced before the worker decoded them
        self.lost: dict[str, int] = {}  # camera topic → messages DDS reports lost in transport
        self.worker_errors = 0
        self.published: dict[tuple[str, str], int] = {}
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
        """`ros2 param set`: each value is checked as configure checks it, and refused with the
        reason. While configured, the settings the table marks `live` apply at once; the others
        are refused, as they are only read at configure (accepting them would change nothing)."""
        changes = {param.name: param.value for param in params if param.name in SETTINGS}
        pipeline = self.pipeline
        try:
            validate({"camera_topics": self.p("camera_topics"), **changes})
            if pipeline is not None:
                if fixed := [name for name, value in changes.items() if not SETTINGS[name].live and value != self.p(name)]:
                    raise ConfigError(f"{', '.join(fixed)}: read at configure only (deactivate, clean up, set it, "
                                      "configure again)")
                if "novel_view_motion" in changes:
                    pipeline.check_motion(changes["novel_view_motion"])
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        for name, value in changes.items():
            if pipeline is not None and SETTINGS[name].pipeline and SETTINGS[name].live:
                setattr(pipeline.cfg, name, value)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from rust_perception.runtime import create_engine

        try:
            values = validate({name: self.p(name) for name in SETTINGS})
            cfg = pipeline_config(values)
        except ConfigError as exc:
            self.get_logger().error(f"configure refused: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:
            engine = create_engine(values["model_dir"], values["backend"], threads=values["threads"])
        except (UserError, OSError) as exc:
            self.get_logger().error(f"cannot load the model: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:  # what depends on the model: the motion needs its latent basis, the outputs its heads
            pipeline, adapter = Pipeline(engine, cfg), Adapter(new_message, cfg, values, engine.meta)
        except ConfigError as exc:
            self.get_logger().error(f"configure refused: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.engine, self.pipeline, self.adapter = engine, pipeline, adapter
        topics, reference = cfg.camera_topics, cfg.reference_camera
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
        self.pubs = {key: self.create_lifecycle_publisher(message_class(OUTPUTS[key[0]].msgtype), topic,
                                                          QOS[values["output_qos"]])
                     for key, topic in adapter.topics.items()}
        self.pending = {t: deque(maxlen=values["buffer_size"]) for t in topics}
        self.recent_lost = RecentEvents(self.p("status_window"))
        for topic in topics:
            compressed = topic.endswith("/compressed")
            self.image_subs[topic] = self.create_subscription(
                CompressedImage if compressed else Image, topic, lambda msg, t=topic: self.on_image(t, msg),
                QOS[self.p("input_qos")], callback_group=self.input_group,
                event_callbacks=SubscriptionEventCallbacks(message_lost=lambda info, t=topic: self.on_lost(t, info)))
            self.subs.append(self.image_subs[topic])
            self.subs.append(self.create_subscription(
                CameraInfo, camera_info_topic(topic), lambda msg, t=topic: adapter.camera_info.__setitem__(t, msg),
                QOS[self.p("input_qos")], callback_group=self.input_group))
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
        self.subs, self.pubs, self.engine, self.pipeline, self.adapter = [], {}, None, None, None
        self.image_subs, self.pending = {}, {}
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.halt()
        return self.on_cleanup(state) if self.pipeline is not None else TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ input
    def on_image(self, topic: str, msg) -> None:
        """Queue the message with its arrival time for the worker to decode: the executor thread
        only takes messages, so large images (640×480 and up) do not back up in DDS's queue.
        Unstamped and empty frames are refused here already."""
        if self.pipeline is None or self.worker is None:
            return
        now = time.monotonic()
        if not (msg.header.stamp.sec or msg.header.stamp.nanosec):  # neither synchronisable nor stampable
            return self.bad_frame(topic, now, "header stamp is zero: the driver does not stamp its images")
        if not msg.data:
            return self.bad_frame(topic, now, "image is empty (0 pixels)")
        queue = self.pending[topic]
        if len(queue) == queue.maxlen:
            self.undecoded[topic] = self.undecoded.get(topic, 0) + 1
        queue.append((msg, now))

    def on_lost(self, topic: str, info) -> None:
        """DDS's sample-lost event: frames that never arrived (e.g. fragments of a large image
        dropped on the way), counted and shown in /diagnostics."""
        self.lost[topic] = info.total_count
        for _ in range(info.total_count_change):
            self.recent_lost.add(topic, time.monotonic())

    def bad_frame(self, topic: str, now: float, reason: str) -> None:
        self.bad_frames[topic] = self.bad_frames.get(topic, 0) + 1
        self.recent_bad.add(topic, now)
        self.get_logger().warning(f"{topic}: frame skipped ({reason})", throttle_duration_sec=5.0)

    def decode_pending(self) -> None:
        """Decode, fit to the model's size and buffer the queued frames, in arrival order (worker
        thread). Bad frames are counted and warned about."""
        for topic, queue in self.pending.items():
            while queue:
                msg, arrived = queue.popleft()
                self.add_frame(topic, msg, arrived)

    def add_frame(self, topic: str, msg, arrived: float) -> None:
        pipeline, adapter = self.pipeline, self.adapter
        try:  # anything a corrupt message raises: count it, skip it, go on
            rgb = model_input(msg, isinstance(msg, CompressedImage), self.engine.size)
        except Exception as exc:  # noqa: BLE001
            return self.bad_frame(topic, arrived, str(exc))
        stamp = adapter.remember(topic, msg.header)
        result = pipeline.add_frame(topic, stamp, rgb, arrived)
        if result == "time_reset":
            self.get_logger().warning(f"{topic}: timestamp jumped back more than stale_after "
                                      f"({pipeline.cfg.stale_after} s; a bag loop, sim-time reset or driver "
                                      f"restart?): buffers restarted on the new timeline", throttle_duration_sec=5.0)
        elif result == "out_of_order":
            self.get_logger().warning(f"{topic}: frame older than the newest dropped (timestamps jumping back)",
                                      throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ inference and output
    def _subscribed(self, key: str, camera: str = "") -> bool:
        publisher = self.pubs.get((key, camera))
        return publisher is not None and publisher.get_subscription_count() > 0

    def _any_subscribed(self, *keys: str) -> bool:
        return any(self._subscribed(*k) for k in self.pubs if k[0] in keys)

    def _wanted(self, key: str, camera: str) -> bool:
        """Whether to build an output's message: someone subscribes, or it becomes TF."""
        return self._subscribed(key, camera) or key == "relative_pose" and self.tf is not None

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
        pipeline, adapter = self.pipeline, self.adapter
        if pipeline is None:
            return
        cfg = pipeline.cfg  # outputs nobody listens to are not computed
        cfg.render = self._any_subscribed("novel_view", "novel_view_info")
        cfg.publish_segmentation = self._any_subscribed("segmentation", "segmentation_color")
        cfg.publish_relative_pose = self.tf is not None or self._any_subscribed("relative_pose", "camera_poses")
        self.decode_pending()
        out = pipeline.step(time.monotonic())
        if out.stamp == 0.0:
            return
        for key, camera, msg in adapter.messages(out, self._wanted):
            self._publish((key, camera), msg)
            if key == "relative_pose" and self.tf is not None:
                self.broadcast(msg, f"{camera_name(camera)}_estimated")

    def broadcast(self, pose, child: str) -> None:
        from geometry_msgs.msg import TransformStamped

        t = TransformStamped(header=pose.header, child_frame_id=child)
        p = pose.pose.pose
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = p.position.x, p.position.y, p.position.z
        t.transform.rotation = p.orientation
        self.tf.sendTransform(t)

    def _publish(self, key: tuple[str, str], msg) -> None:
        self.pubs[key].publish(msg)
        self.published[key] = self.published.get(key, 0) + 1

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
        silent = [t for t in cfg.camera_topics if t not in live]
        for topic, s in stats.items():
            values.append(KeyValue(key=f"frames/{topic.lstrip('/')}", value=f"received {s['received']}, evicted {s['evicted']}, "
                                                                 f"out of order {s['out_of_order']}, "
                                                                 f"time resets {s['time_resets']}, "
                                                                 f"bad {self.bad_frames.get(topic, 0)}, "
                                                                 f"replaced before decoding {self.undecoded.get(topic, 0)}, "
                                                                 f"lost in transport {self.lost.get(topic, 0)}"))
        values += [KeyValue(key="/".join(["published", key, camera.strip("/")]).rstrip("/"), value=str(v))
                   for (key, camera), v in sorted(self.published.items())]
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
        if lost := self.recent_lost.counts(now):
            level = max(level, DiagnosticStatus.WARN)
            reasons.append(f"frames lost in transport in the last {window:g} s: "
                           + ", ".join(f"{t} {n}" for t, n in sorted(lost.items()))
                           + f" ({LOST_HINT})")
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
        self._publish(("diagnostics", ""), msg)


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
