"""rosbag2 ingestion: a generated street-rig recording (MCAP with mixed encodings and a
CompressedImage topic; sqlite3 with rgb8) → the dataset store → a tiny RUST model trains on it,
a posed model refuses it, and user errors are one line."""

import json

import numpy as np
import pytest

from rust_perception.cli import run
from rust_perception.cli.make_dataset import PROG, main
from rust_perception.data.rosbag import RosbagConfig, ingest_rosbag
from rust_perception.data.store import DatasetStore
from rust_perception.errors import DatasetError, UserError
from rust_perception.image_codec import fill_compressed_msg, fill_image_msg, image_msg_to_rgb8, resize_rgb
from rust_perception.training.trainer import Trainer
from ros2_rust_node.make_rig_bag import rig_messages, topic, write_bag

from conftest import run_cli
from test_training import tiny

SCENES, CAPTURES, CAMERAS = 4, 3, 6  # make_rig_bag: 3 rig positions (captures 0.1 s apart) of 6 cameras per scene
COMPRESSED = topic(5) + "/compressed"


def mixed(messages, types):
    """cam1 as bgr8, cam2 as rgba8, cam5 as PNG CompressedImage, and a non-image /status topic."""
    for name, stamp, msg in messages:
        rgb = image_msg_to_rgb8(msg)
        if name == topic(5):
            out = types["sensor_msgs/msg/CompressedImage"](header=msg.header, format="", data=np.zeros(0, np.uint8))
            name, msg = COMPRESSED, fill_compressed_msg(out, rgb, "png")
        elif name in (topic(1), topic(2)):
            rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], 2)
            encoding, array = ("bgr8", rgb[..., ::-1]) if name == topic(1) else ("rgba8", rgba)
            msg = fill_image_msg(types["sensor_msgs/msg/Image"](header=msg.header, height=0, width=0, encoding="",
                                                                is_bigendian=0, step=0, data=np.zeros(0, np.uint8)),
                                 array, encoding)
        yield name, stamp, msg
    yield "/status", stamp, types["std_msgs/msg/String"](data="done")


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """(frames[camera][capture] as rendered, {"mcap": bag, "sqlite3": bag}); one rendering for both."""
    from rosbags.typesys import Stores, get_typestore

    root = tmp_path_factory.mktemp("rig")
    types = get_typestore(Stores.ROS2_JAZZY).types
    messages = list(rig_messages(scenes=SCENES, size=32))
    frames = [[image_msg_to_rgb8(m) for name, _, m in messages if name == topic(c)] for c in range(CAMERAS)]
    bags = {"sqlite3": write_bag(root / "sqlite3", messages, "sqlite3"),
            "mcap": write_bag(root / "mcap", mixed(messages, types), "mcap")}
    return frames, bags


def topics(storage):
    return tuple(topic(c) for c in range(5)) + ((COMPRESSED,) if storage == "mcap" else (topic(5),))


def config(bag, storage, **kw):
    return RosbagConfig(bag=str(bag), topics=topics(storage), **{"window": 0.3, "views": 18, "size": 32,
                                                                   "test_fraction": 0.25, **kw})


@pytest.fixture(scope="module")
def mcap_data(rig, tmp_path_factory):
    return ingest_rosbag(config(rig[1]["mcap"], "mcap"), tmp_path_factory.mktemp("data") / "mcap", progress=False)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ingested_scenes_are_the_recorded_frames(rig, storage, mcap_data, tmp_path):
    frames, bags = rig
    out = mcap_data.root if storage == "mcap" else tmp_path / "data"
    store = ingest_rosbag(config(bags[storage], storage), out, progress=False)
    assert store.verify() == {"train": SCENES - 1, "test": 1} and store.views == CAPTURES * CAMERAS
    assert store.manifest["recording"] == {"messages": SCENES * CAPTURES * CAMERAS, "captures": SCENES * CAPTURES,
                                           "scenes": SCENES, "skipped_windows": 0,
                                           "bad_frames": dict.fromkeys(topics(storage), 0)}
    for index in range(SCENES):  # scene = one rig scene: view = capture × 6 + camera
        split, i = ("train", index) if index < SCENES - 1 else ("test", 0)
        scene = store.scene(split, i)
        for view in range(store.views):
            position, camera = divmod(view, CAMERAS)
            assert np.array_equal(scene["rgb"][view], frames[camera][index * CAPTURES + position])
        assert (scene["view_camera"] == np.tile(np.arange(CAMERAS), CAPTURES)).all()
        assert (scene["view_position"] == np.repeat(np.arange(CAPTURES), CAMERAS)).all()
        assert (scene["labels"] == 255).all()
        assert all(np.isnan(scene[f]).all() for f in ("cam2world", "intrinsics", "depth"))
    assert store.manifest["annotations"] == [] and not store.has("cam2world")
    # the same settings keep the dataset; other settings never overwrite it
    assert ingest_rosbag(config(bags[storage], storage), out, progress=False).verify() == store.verify()
    with pytest.raises(DatasetError, match="made with window=0.3, not 0.6"):
        ingest_rosbag(config(bags[storage], storage, window=0.6), out, progress=False)


def test_cli_overlapping_windows_resized(rig, tmp_path):
    """Windows of 0.3 s every 0.2 s: 5 scenes of 3 captures overlapping by one, the last
    window (2 captures) skipped; test = the last 2 scenes in time; frames resized to 16 px."""
    frames, bags = rig
    result = run_cli("make_dataset.py", "--from-rosbag", str(bags["sqlite3"]), "--topics", *topics("sqlite3"),
                     "--window", "0.3", "--stride", "0.2", "--views", "18", "--size", "16", "--test-fraction", "0.4",
                     "--out", str(tmp_path / "data"), "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["scenes"] == {"train": 3, "test": 2} and summary["recording"]["skipped_windows"] == 1
    store = DatasetStore(tmp_path / "data")
    for split, i, first in (("train", 1, 2), ("test", 0, 6)):
        rgb = store.scene(split, i)["rgb"]
        for view in (0, 17):
            position, camera = divmod(view, CAMERAS)
            assert np.array_equal(rgb[view], resize_rgb(frames[camera][first + position], 16))


def test_rust_trains_on_a_recording_and_srt_refuses_it(mcap_data, tmp_path):
    result = Trainer(tiny(mcap_data.root, "steps=2", "eval_every=2", "checkpoint_every=2"), tmp_path / "rust",
                     progress=False).train()
    assert result["step"] == 2 and np.isfinite(result["eval"]["psnr"])
    losses = [r["loss"] for r in map(json.loads, (tmp_path / "rust" / "metrics.jsonl").read_text().splitlines())
              if "loss" in r]
    assert losses and np.isfinite(losses).all()
    for variant in ("srt", "upsrt"):
        with pytest.raises(UserError, match=f"no camera poses .*model.variant={variant} needs") as error:
            Trainer(tiny(mcap_data.root, "steps=2", f"model.variant={variant}"), tmp_path / variant, progress=False)
        assert "\n" not in str(error.value) and not (tmp_path / variant).exists()


def test_cli_errors_are_one_line(rig, tmp_path, capsys):
    bag = str(rig[1]["mcap"])
    (tmp_path / "empty").mkdir()
    out = ["--out", str(tmp_path / "data"), "--quiet"]
    cases = [
        (["--from-rosbag", "/nonexistent/bag", "--topics", "/a", "--window", "1"], "/nonexistent/bag does not exist"),
        (["--from-rosbag", str(tmp_path / "empty"), "--topics", "/a", "--window", "1"],
         "is not a readable rosbag2 recording"),
        (["--from-rosbag", bag, "--topics", topic(0), "/rig/cam9", "--window", "1"],
         f"topic /rig/cam9 is not in {bag} (its image topics: {topic(0)}, {topic(1)}, "),
        (["--from-rosbag", bag, "--topics", topic(0), "/status", "--window", "1"],
         "carries std_msgs/msg/String, not sensor_msgs/msg/Image or CompressedImage"),
        (["--from-rosbag", bag, "--topics", *topics("mcap"), "--window", "0.3", "--views", "24"],
         "a scene needs 4 synchronised captures of the 6 topics, but a 0.3 s window "
         "holds at most 3"),
        (["--from-rosbag", bag, "--topics", topic(0), topic(1), "--window", "1", "--views", "5"],
         "views=5 is not allowed (must be >= 2 and a multiple of the 2 topics"),
        (["--from-rosbag", bag, "--topics", topic(0)], "--from-rosbag needs --topics and --window"),
        (["--from-rosbag", bag, "--topics", topic(0), "--window", "1", "--kind", "dome"],
         "--kind is only for synthetic data"),
        (["--window", "1"], "--window is only for --from-rosbag"),
    ]
    for argv, message in cases:
        try:
            code = run(main, argv + out, prog=PROG)
        except SystemExit as exc:  # argparse-level errors exit from the parser
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith(f"{PROG}: error: "), err
        assert message in err, (message, err)
    assert not (tmp_path / "data").exists()


def test_damaged_frames_are_skipped_and_counted(rig, tmp_path):
    """One truncated frame (cam2, scene 1) and one message that is not CDR (cam4): the command
    completes, the manifest counts both, and scene 1 — no longer 3 whole captures — is left out."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_JAZZY)
    frames, _ = rig
    messages = list(rig_messages(scenes=SCENES, size=32))
    damaged = [m for m in messages if m[0] == topic(2)][CAPTURES + 1]
    bag = tmp_path / "damaged"
    with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {t: writer.add_connection(t, "sensor_msgs/msg/Image", typestore=typestore) for t in topics("sqlite3")}
        for name, log_ns, msg in messages:
            data = typestore.serialize_cdr(msg, msg.__msgtype__)
            if (name, log_ns) == damaged[:2]:
                msg.data = msg.data[: len(msg.data) // 2]  # truncated pixels
                data = typestore.serialize_cdr(msg, msg.__msgtype__)
            writer.write(conns[name], log_ns, data)
        writer.write(conns[topic(4)], messages[-1][1] + 1, b"\x00\x01\x00\x00garbage")
    result = run_cli("make_dataset.py", "--from-rosbag", str(bag), "--topics", *topics("sqlite3"), "--window", "0.3",
                     "--views", "18", "--size", "32", "--test-fraction", "0.25", "--out", str(tmp_path / "data"),
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"{topic(2)}: frame {CAPTURES + 1} skipped" in result.stderr
    store = DatasetStore(tmp_path / "data")
    assert store.verify() == {"train": SCENES - 2, "test": 1}
    recording = store.manifest["recording"]
    assert recording["bad_frames"] == {**dict.fromkeys(topics("sqlite3"), 0), topic(2): 1, topic(4): 1}
    assert recording["scenes"] == SCENES - 1 and recording["messages"] == SCENES * CAPTURES * CAMERAS + 1
    assert np.array_equal(store.scene("train", 1)["rgb"][0], frames[0][2 * CAPTURES])  # scene 2 follows scene 0
