"""The node's ROS-free behaviour: buffers, time sync, the view-selection policy, silent cameras,
timestamps jumping back, and the pipeline's schedule of outputs (with a real exported model, and
on a fake clock)."""

import numpy as np
import pytest

from rust_perception.errors import ConfigError
from rust_perception.runtime.onnxruntime_backend import OnnxRuntimeEngine
from rust_perception.scene_memory import CameraBuffer, Frame, Pipeline, PipelineConfig, RecentEvents, SceneMemory

CAMS = [f"cam{i}" for i in range(6)]


def frame(camera, stamp, size=32):
    return Frame(camera, stamp, np.full((size, size, 3), int(stamp * 10) % 256, np.uint8))


def test_buffer_drops_oldest_and_out_of_order_frames_and_counts_them():
    buf = CameraBuffer(capacity=3)
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        buf.add(frame("c", t))
    buf.add(frame("c", 0.35))  # older than the newest: ignored
    assert [f.stamp for f in buf.frames] == [0.2, 0.3, 0.4] and buf.evicted == 2 and buf.out_of_order == 1 and buf.received == 5
    assert buf.closest(0.31).stamp == 0.3


def test_view_selection_reference_first_then_synced_cameras_in_rig_order():
    memory = SceneMemory(CAMS, reference="cam2", num_inputs=5, sync_tolerance=0.02)
    for t in (0.0, 0.1):
        for i, cam in enumerate(CAMS):
            memory.add(frame(cam, t + 0.005 * i), t + 0.005 * i)
    views = memory.select_views()
    assert [v.camera for v in views] == ["cam2", "cam3", "cam4", "cam5", "cam0"]
    assert views[0].stamp == pytest.approx(0.11) and all(abs(v.stamp - 0.11) <= 0.02 for v in views)


def test_out_of_sync_and_silent_cameras_are_replaced_by_earlier_frames():
    memory = SceneMemory(CAMS[:3], reference="cam0", num_inputs=5, sync_tolerance=0.02, stale_after=0.5)
    for t in (0.0, 0.1, 0.2):
        memory.add(frame("cam0", t), t)
        memory.add(frame("cam1", t + 0.05), t + 0.05)  # always 50 ms late: never within tolerance
    memory.add(frame("cam2", 0.2), 0.2)
    views = memory.select_views()
    # reference newest, cam2 (synced), then the reference's earlier frames, then cam1's newest
    assert [(v.camera, v.stamp) for v in views] == [("cam0", 0.2), ("cam2", 0.2), ("cam0", 0.1), ("cam0", 0.0),
                                                    ("cam1", 0.25)]
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):  # cam2 goes silent
        memory.add(frame("cam0", t), t)
        memory.add(frame("cam1", t + 0.05), t + 0.05)
    assert "cam2" not in memory.live_cameras() and all(v.camera != "cam2" for v in memory.select_views())
    memory.add(frame("cam2", 0.81), 0.81)  # and recovers
    assert memory.select_views()[1].camera == "cam2"


def test_nothing_is_selected_while_the_reference_is_silent_or_frames_are_too_few():
    memory = SceneMemory(CAMS, reference="cam0", num_inputs=5, stale_after=0.5)
    memory.add(frame("cam0", 0.0), 0.0)
    assert memory.select_views() is None  # one frame cannot make five views
    for cam in CAMS[1:]:
        memory.add(frame(cam, 2.0), 2.0)
    assert memory.select_views() is None  # the reference is 2 s old: silent
    with pytest.raises(ValueError, match="reference camera 'cam9'"):
        SceneMemory(CAMS, reference="cam9", num_inputs=5)
    with pytest.raises(KeyError, match="unknown camera 'rear'"):
        memory.add(frame("rear", 0.0), 0.0)


def test_pipeline_schedules_encodes_poses_segmentation_and_renders(model_dir):
    engine = OnnxRuntimeEngine(model_dir)
    cfg = PipelineConfig(camera_topics=CAMS, reference_camera="cam0", slsr_period=1.0, render_rate=2.0, pose_rate=1.0,
                         novel_view_motion="traversal", render_size=48)
    pipeline = Pipeline(engine, cfg)
    assert not pipeline.step(0.0).encoded  # no frames yet
    rng = np.random.default_rng(0)
    for t in (0.0, 0.1):
        for cam in CAMS:
            pipeline.add_frame(cam, t, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), t)
    first = pipeline.step(0.1)
    assert first.encoded and first.novel_view.shape == (48, 48, 3) and set(first.latent_poses) == set(CAMS)
    assert set(first.relative_poses) == set(CAMS) - {"cam0"} and first.relative_poses["cam1"]["position"].shape == (3,)
    assert first.segmentation["cam3"].shape == (32, 32) and first.stamp == 0.1
    second = pipeline.step(0.4)  # nothing due yet
    assert not second.encoded and second.novel_view is None and not second.latent_poses
    third = pipeline.step(0.65)  # a render is due (2 Hz), the rest is not
    assert third.novel_view is not None and not third.encoded and not third.latent_poses
    assert not np.array_equal(third.novel_view, first.novel_view)  # the traversal moved the latent
    stats = pipeline.latency.summary()
    assert stats["encode"]["n"] == 1 and stats["render"]["n"] == 2 and stats["pose"]["mean_ms"] > 0


def test_a_large_jump_back_restarts_the_timeline_and_a_small_one_is_dropped():
    buf = CameraBuffer(capacity=3, reset_after=1.0)
    for t in (10.0, 10.1, 10.2):
        assert buf.add(frame("c", t)) == "added"
    assert buf.add(frame("c", 9.5)) == "out_of_order"  # 0.7 s back: a late frame, dropped
    assert buf.add(frame("c", 0.0)) == "time_reset"  # 10.2 s back: a bag loop, a sim-time reset
    assert [f.stamp for f in buf.frames] == [0.0] and buf.time_resets == 1 and buf.out_of_order == 1
    assert buf.add(frame("c", 0.1)) == "added" and buf.received == 5


def test_after_a_time_reset_all_cameras_follow_the_new_timeline():
    """Every camera of a looping bag jumps back: the first to do so must not be left looking stale
    next to the others' old-timeline frames, nor a camera that stopped hold the clock forever."""
    memory = SceneMemory(CAMS[:3], reference="cam0", num_inputs=3, stale_after=0.5)
    for t in (20.0, 20.1):
        for cam in CAMS[:3]:
            memory.add(frame(cam, t), t)
    assert memory.add(frame("cam0", 0.0), 20.2) == "time_reset"  # stamps jump back, the clock goes on
    assert memory.latest_stamp() == 0.0 and memory.live_cameras() == ["cam0"]  # old frames forgotten
    assert memory.add(frame("cam1", 0.01), 20.21) == "added"  # its buffer already restarted
    memory.add(frame("cam0", 0.1), 20.3)
    assert [(v.camera, v.stamp) for v in memory.select_views()] == [("cam0", 0.1), ("cam0", 0.0), ("cam1", 0.01)]
    # each camera's old timeline ended once: a looped bag counts one reset per camera, not one in all
    assert [s["time_resets"] for s in memory.stats().values()] == [1, 1, 1]
    assert memory.live_cameras() == ["cam0", "cam1"]  # cam2 never came back: silent, not blocking


class FakeEngine:
    meta = {"num_inputs": 2, "epe": False, "segmentation": False}

    def encode(self, images):
        return np.zeros(4)

    def view_latents(self, slsr, image):
        return np.zeros((2, 8))

    def render_image(self, slsr, latents, size):
        return np.zeros((8, 8, 3), np.uint8)


def test_output_rates_hold_on_a_fixed_grid_however_late_the_worker_ticks():
    """A 10 Hz request ticked every 7 ms: rescheduling from the tick (now + period) would give a
    render every 105 ms, 9.5 Hz; the fixed grid gives 10 per simulated second."""
    pipeline = Pipeline(FakeEngine(), PipelineConfig(camera_topics=["cam0"], reference_camera="cam0", slsr_period=0.2,
                                                    render_rate=10.0, pose_rate=2.0))
    renders, poses = [], []
    for k in range(10 * 1000 // 7):  # 10 simulated seconds
        now = k * 0.007
        pipeline.add_frame("cam0", now, np.zeros((8, 8, 3), np.uint8), now)
        out = pipeline.step(now)
        renders += [now] * (out.novel_view is not None)
        poses += [now] * bool(out.latent_poses)
    per_second = np.bincount(np.floor(np.array(renders)).astype(int))
    assert per_second.tolist() == [10] * 10, per_second
    assert len(poses) == 20 and pipeline.latency.summary()["encode"]["n"] == 50
    # the novel view's latent is estimated at most once per SLSR, not at each of the 100 renders
    assert pipeline.latency.summary()["pose"]["n"] <= 20 + 50
    # a step stalled for a second is followed by one render, not a burst of ten
    late = []
    for k in range(10):
        pipeline.add_frame("cam0", 12.0 + k * 0.007, np.zeros((8, 8, 3), np.uint8), 12.0 + k * 0.007)
        late.append(pipeline.step(12.0 + k * 0.007).novel_view is not None)
    assert late == [True] + [False] * 9


def test_the_novel_view_starts_from_novel_view_camera_else_from_the_reference():
    """Each camera's frames hold its own value, which the fake pose estimator returns as the latent
    and the fake renderer paints: the render shows whose latent pose it started from."""

    class PaintingEngine(FakeEngine):
        def view_latents(self, slsr, image):  # rows differ: the left half's is published, both are rendered from
            return np.stack([np.full(8, image[0, 0, 0]), np.full(8, image[0, 0, 0] + 1)])

        def render_image(self, slsr, latents, size):
            assert np.shape(latents) == (2, 8)
            return np.full((8, 8, 3), latents[0, 0], np.uint8)

    cfg = PipelineConfig(camera_topics=["cam0", "cam1", "cam2"], reference_camera="cam0", render_rate=1.0, pose_rate=0.01)
    pipeline = Pipeline(PaintingEngine(), cfg)
    def send(now):
        for k, camera in enumerate(cfg.camera_topics):
            pipeline.add_frame(camera, now, np.full((8, 8, 3), 10 * (k + 1), np.uint8), now)

    send(0.0)
    assert pipeline.step(0.0).novel_view[0, 0, 0] == 10  # default: the reference camera
    for camera, value, now in (("cam1", 20, 1), ("cam2", 30, 2), ("", 10, 3)):
        cfg.novel_view_camera = camera
        send(now)
        out = pipeline.step(now)
        assert not out.latent_poses and out.novel_view[0, 0, 0] == value, camera  # from the encoded views
    cfg.novel_view_camera = "cam2"
    send(100.0)
    out = pipeline.step(100.0)  # poses due: the one just estimated is used
    assert "cam2" in out.latent_poses and out.novel_view[0, 0, 0] == 30
    assert all(out.latent_poses[c][0] == 10 * (k + 1) for k, c in enumerate(cfg.camera_topics))  # the left half's


def test_a_motion_the_model_cannot_make_is_refused_with_the_reason():
    """Rendering the view unmoved instead (as before) looked like a working motion."""
    with pytest.raises(ConfigError, match="'traversal' needs the model's latent basis .* run analyze_latent"):
        Pipeline(FakeEngine(), PipelineConfig(camera_topics=["cam0"], novel_view_motion="traversal"))
    pca = {"mean": [0.0] * 8, "components": np.eye(8).tolist(), "std": [1.0] * 8, "explained": [0.125] * 8}
    meta = {**FakeEngine.meta, "latent_space": {"pca": pca, "meanings": {"yaw": {"component": 0, "r": 0.9, "sign": 1}}}}
    engine = type("WithBasis", (FakeEngine,), {"meta": meta})()
    with pytest.raises(ConfigError, match="'up': analyze_latent found no latent component of this model that "
                                          "correlates with 'height' \\(found: yaw\\)"):
        Pipeline(engine, PipelineConfig(camera_topics=["cam0"], novel_view_motion="up"))
    pipeline = Pipeline(engine, PipelineConfig(camera_topics=["cam0"], novel_view_motion="rotate"))
    assert pipeline.novel_latent(np.zeros(8))[0] == 1.0  # one standard deviation along the yaw component
    halves = pipeline.novel_latent(np.array([np.zeros(8), np.ones(8)]))  # both halves' latents move alike
    assert halves.shape == (2, 8) and halves[0, 0] == 1.0 and halves[1, 0] == 2.0 and halves[1, 1] == 1.0


def test_cameras_that_stopped_are_silent_by_the_clock_and_outputs_stop():
    """All cameras stop at once: their newest stamps still agree with each other, but the clock
    moves on — they are silent after stale_after, and the SLSR is not rendered again under its old
    stamp once a re-encode was due (it was, for 8 s, before)."""
    pipeline = Pipeline(FakeEngine(), PipelineConfig(camera_topics=["cam0", "cam1"], reference_camera="cam0",
                                                    slsr_period=0.5, render_rate=2.0, pose_rate=2.0, stale_after=1.0))
    stamps = []
    for k in range(41):  # 2 s of frames at 10 Hz (the last at 1.9 s, encoded at 2.0), then 8 s of nothing
        now = k * 0.05
        if now < 2.0 and k % 2 == 0:
            for camera in ("cam0", "cam1"):
                pipeline.add_frame(camera, now, np.zeros((8, 8, 3), np.uint8), now)
        out = pipeline.step(now)
        stamps += [out.stamp] * (out.novel_view is not None)
    for k in range(41, 200):  # the worker ticking at 20 Hz
        out = pipeline.step(k * 0.05)
        assert out.novel_view is None and not out.latent_poses, k * 0.05
    assert out.stamp == 0.0  # no SLSR left to publish anything from
    assert len(stamps) == len(set(stamps)) >= 3  # never one stamp twice
    assert pipeline.memory.live_cameras(10.0) == [] and pipeline.memory.live_cameras() == ["cam0", "cam1"]
    assert pipeline.memory.silent_for("cam1", 10.0) == pytest.approx(8.1)
    pipeline.add_frame("cam0", 10.0, np.zeros((8, 8, 3), np.uint8), 10.0)  # the reference is back
    assert pipeline.step(10.0).novel_view is not None


def test_a_reference_dropout_gives_no_novel_view_under_an_old_stamp():
    """The reference camera stops for 4 s while the others go on; offline (bag time = the clock)."""
    pipeline = Pipeline(FakeEngine(), PipelineConfig(camera_topics=["cam0", "cam1", "cam2"], reference_camera="cam0",
                                                    render_rate=2.0, slsr_period=0.5))
    stamps = []
    for k in range(100):  # 10 s at 10 Hz; cam0 silent from 3 s to 7 s
        now = k * 0.1
        for camera in ("cam0", "cam1", "cam2"):
            if camera != "cam0" or not 3.0 <= now < 7.0:
                pipeline.add_frame(camera, now, np.zeros((8, 8, 3), np.uint8), now)
            out = pipeline.step(now)
            stamps += [out.stamp] * (out.novel_view is not None)
    assert len(stamps) == len(set(stamps)) and len(stamps) >= 12, stamps
    assert not [s for s in stamps if 3.0 <= s < 7.0]


def test_one_camera_fills_the_model_inputs_with_its_earlier_frames():
    """One camera, buffer_size 4, a model of 5 inputs: the reference keeps 5 frames, so views
    are selected (temporal views) instead of never."""
    pipeline = Pipeline(FakeEngine(), PipelineConfig(camera_topics=["cam0"], reference_camera="cam0", buffer_size=4))
    pipeline.engine = type("Five", (FakeEngine,), {"meta": {**FakeEngine.meta, "num_inputs": 5}})()
    pipeline.memory = SceneMemory(["cam0"], "cam0", num_inputs=5, capacity=4)
    for k in range(5):
        pipeline.add_frame("cam0", k * 0.1, np.zeros((8, 8, 3), np.uint8), k * 0.1)
    assert [f.stamp for f in pipeline.memory.select_views(0.4)] == [0.4, 0.30000000000000004, 0.2, 0.1, 0.0]
    assert pipeline.step(0.4).novel_view is not None


def test_recent_events_forget_what_is_older_than_the_window():
    events = RecentEvents(window=5.0)
    events.add("cam1", 0.0)
    events.add("cam1", 3.0)
    events.add("cam2", 4.0)
    assert events.counts(4.0) == {"cam1": 2, "cam2": 1}
    assert events.counts(8.5) == {"cam2": 1} and events.counts(9.5) == {}
