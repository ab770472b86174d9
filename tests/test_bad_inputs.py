"""Bad input as a user meets it, one table row per case: CLI arguments, YAML configs, dataset
directories, rosbag2 recordings, checkpoints and model directories each end with one line on
stderr and exit code 2 (no traceback), and nothing already on disk is changed, lost or added.
Images handed to the engine's Python API are refused with a clear EngineInputError.

Cases already covered elsewhere (test_cli, test_training, test_readout, test_rosbag_ingest,
test_runtime, test_offline) are not repeated here."""

import hashlib
import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from ros2_rust_node.make_rig_bag import rig_messages, topic
from rust_perception.data.generate import generate_dataset
from rust_perception.data.synthetic import SyntheticConfig
from rust_perception.runtime.engine import EngineInputError
from rust_perception.runtime.onnxruntime_backend import OnnxRuntimeEngine

SCRIPTS = {"train": "rust_perception.cli.train", "evaluate": "rust_perception.cli.evaluate",
           "rust_export": "rust_perception.cli.export", "train_heads": "rust_perception.cli.train_heads",
           "analyze_latent": "rust_perception.cli.analyze_latent", "make_dataset": "rust_perception.cli.make_dataset",
           "rust_offline": "ros2_rust_node.offline"}  # console script → module with its entry()
CAMERAS = [topic(c) for c in range(6)]
EMPTY = "/rig/cam6/image_raw"  # an Image topic with no messages
TRAIN_DOME = str(ROOT / "config" / "train_dome.yaml")
MODEL_TINY = ROOT / "config" / "model_tiny.yaml"


@pytest.fixture(scope="module")
def rig_bag(tmp_path_factory):
    """One street scene (3 captures × 6 cameras, 32 px) plus a std_msgs/String topic /status and
    an Image topic without messages."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS2_JAZZY)
    messages = list(rig_messages(scenes=1, size=32))
    status = [("/status", stamp, types.types["std_msgs/msg/String"](data="ok")) for _, stamp, _ in messages[::6]]
    bag = tmp_path_factory.mktemp("bag") / "rig"
    with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {name: writer.add_connection(name, msgtype, typestore=types) for name, msgtype in
                 [(t, "sensor_msgs/msg/Image") for t in [*CAMERAS, EMPTY]] + [("/status", "std_msgs/msg/String")]}
        for name, stamp, msg in sorted(messages + status, key=lambda m: m[1]):
            writer.write(conns[name], stamp, types.serialize_cdr(msg, msg.__msgtype__))
    return bag


@pytest.fixture(scope="module")
def dome64(tmp_path_factory):
    """A dataset of 64×64 images: the tiny model takes 32×32."""
    out = tmp_path_factory.mktemp("dome64") / "data"
    cfg = SyntheticConfig(kind="dome", scenes=2, views=8, size=64, seed=1, test_fraction=0.5, shard_scenes=1)
    generate_dataset(cfg, out, workers=1, progress=False)
    return out


class Workspace:
    """The inputs of one case: shared fixtures are read-only, `copy` gives a private one to break."""

    def __init__(self, tmp: Path, dome: Path, dome64: Path, run: Path, model: Path, bag: Path):
        self.tmp, self.dome, self.dome64, self.run, self.model, self.bag = tmp, dome, dome64, run, model, bag

    def copy(self, src: Path, name: str = "") -> Path:
        return Path(shutil.copytree(src, self.tmp / (name or src.name)))

    def out(self) -> str:
        return str(self.tmp / "out")

    def write(self, name: str, text: str) -> str:
        (self.tmp / name).write_text(text)
        return str(self.tmp / name)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def run_with_truncated_checkpoints(ws):
    run = ws.copy(ws.run)
    for path in (run / "checkpoints").glob("step_*.pt"):
        truncate(path)
    return run


def run_with_other_config(ws):
    run = ws.copy(ws.run)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("dim: 64", "dim: 32"))
    return run


def dataset_without(ws, name):
    data = ws.copy(ws.dome)
    next(data.glob(name)).unlink()
    return data


def dataset_with(ws, change):
    data = ws.copy(ws.dome)
    change(data / "manifest.json")
    return data


def model_with(ws, change):
    model = ws.copy(ws.model)
    change(model)
    return model


def bag_with(ws, change):
    bag = ws.copy(ws.bag)
    change(bag)
    return bag


def train(ws, *args):
    return "train", [*args, "--run", ws.out()]


def ingest(ws, bag, *topics, out=None):
    return "make_dataset", ["--from-rosbag", str(bag), "--topics", *(topics or CAMERAS), "--window", "0.3",
                               "--views", "18", "--size", "32", "--out", str(out or ws.out()), "--quiet"]


def offline(ws, *args, bag=None, model=None, out=None):
    return "rust_offline", ["--bag", str(bag or ws.bag), "--model-dir", str(model or ws.model),
                            "--out", str(out or ws.out()), "--quiet", *args]


CASES = [
    # --- command-line arguments: bad values and combinations
    ("train-set-without-equals", lambda ws: train(ws, "--config", TRAIN_DOME, "--set", "steps"),
     "must look like key=value"),
    ("train-set-unknown-key", lambda ws: train(ws, "--config", TRAIN_DOME, "--set", "stepz=3"), "unknown field stepz"),
    ("evaluate-scenes-zero", lambda ws: ("evaluate", ["--run", str(ws.run), "--scenes", "0"]),
     "--scenes must be >= 1"),
    ("evaluate-unknown-split", lambda ws: ("evaluate", ["--run", str(ws.run), "--split", "valid"]),
     "has no split 'valid'"),
    ("train-heads-zero-steps", lambda ws: ("train_heads", ["--run", str(ws.run), "--head", "epe", "--steps", "0"]),
     "--steps, --batch, --rays and --layers must be >= 1"),
    ("offline-zero-render-rate", lambda ws: offline(ws, "--render-rate", "0"), "must be > 0"),
    ("offline-reference-not-a-camera",
     lambda ws: offline(ws, "--camera-topics", CAMERAS[0], CAMERAS[1], "--reference-camera", CAMERAS[2]),
     f"reference_camera {CAMERAS[2]!r} is not one of camera_topics ({CAMERAS[0]}, {CAMERAS[1]})"),
    ("offline-unknown-motion", lambda ws: offline(ws, "--novel-view-motion", "sideways"),
     "argument --novel-view-motion: invalid choice: 'sideways'"),
    ("offline-params-file-unknown-motion",
     lambda ws: offline(ws, "--params-file", ws.write("p.yaml", "rust_node:\n  ros__parameters:\n    "
                                                                "novel_view_motion: sideways\n")),
     "novel_view_motion='sideways' is not allowed: it must be one of none, up, closer, rotate, forward, traversal"),
    ("offline-params-file-integer-rate",
     lambda ws: offline(ws, "--params-file", ws.write("p.yaml", "rust_node:\n  ros__parameters:\n    render_rate: 4\n")),
     "render_rate must be a float, got 4 (write 4.0"),
    ("offline-params-file-of-another-node",
     lambda ws: offline(ws, "--params-file", ws.write("p.yaml", "other_node:\n  ros__parameters:\n    threads: 1\n")),
     "has no parameters for rust_node"),
    ("offline-out-is-an-existing-bag", lambda ws: offline(ws, out=ws.copy(ws.bag, "earlier")), "exists already"),
    ("export-out-is-a-dataset", lambda ws: ("rust_export", ["--run", str(ws.run), "--out", str(ws.copy(ws.dome))]),
     "refusing to write into"),
    ("ingest-out-is-another-dataset", lambda ws: ingest(ws, ws.bag, out=ws.copy(ws.dome)), "holds a dataset made with bag=None"),
    # --- YAML configs: syntax, shape, unknown keys, wrong types
    ("train-yaml-syntax-error", lambda ws: train(ws, "--config", ws.write("t.yaml", "steps: [1, 2\n")),
     "is not valid YAML"),
    ("train-yaml-not-a-mapping", lambda ws: train(ws, "--config", ws.write("t.yaml", "- steps\n- 3\n")),
     "must hold a mapping"),
    ("train-yaml-unknown-key",
     lambda ws: train(ws, "--config", ws.write("t.yaml", f"dataset: {ws.dome}\nmodel: {MODEL_TINY}\nlearning_rate: 0.1\n")),
     "unknown field learning_rate"),
    ("train-model-yaml-wrong-type",
     lambda ws: train(ws, "--config", TRAIN_DOME, "--set", f"dataset={ws.dome}",
                      "--set", "model=" + ws.write("m.yaml", "variant: rust\ndim: wide\n")),
     "dim must be an integer"),
    ("train-yaml-model-not-a-mapping", lambda ws: train(ws, "--config", ws.write("t.yaml", f"dataset: {ws.dome}\n"
                                                                                          "model: 5\n")),
     "model must be a mapping, got 5"),
    ("make-dataset-yaml-syntax-error",
     lambda ws: ("make_dataset", ["--config", ws.write("d.yaml", "kind: [dome\n"), "--out", ws.out()]),
     "is not valid YAML"),
    # --- dataset directories
    ("train-manifest-missing",
     lambda ws: train(ws, "--config", TRAIN_DOME, "--set", f"dataset={dataset_without(ws, 'manifest.json')}"),
     "manifest.json is missing"),
    ("train-manifest-corrupt", lambda ws: train(ws, "--config", TRAIN_DOME, "--set", f"dataset={dataset_with(ws, truncate)}"),
     "manifest.json is corrupt"),
    ("train-shard-missing",
     lambda ws: train(ws, "--config", TRAIN_DOME, "--set", f"dataset={dataset_without(ws, 'train-00000.npy')}"),
     "make_dataset --verify"),
    ("verify-other-schema-version",
     lambda ws: ("make_dataset", ["--verify", str(dataset_with(ws, lambda m: edit_json(m, schema_version=99)))]),
     "has schema version 99"),
    ("analyze-latent-wrong-image-size", lambda ws: ("analyze_latent", ["--run", str(ws.run), "--data",
                                                                          str(ws.dome64), "--out", ws.out()]),
     "has 64px images; the model expects 32px"),
    # --- rosbag2 recordings, into make_dataset and rust_offline
    ("ingest-truncated-bag", lambda ws: ingest(ws, bag_with(ws, lambda b: truncate(next(b.glob("*.mcap"))))),
     "is not a readable rosbag2 recording"),
    ("ingest-empty-topic", lambda ws: ingest(ws, ws.bag, CAMERAS[0], EMPTY), f"topic {EMPTY}"),
    ("ingest-corrupt-bag-metadata",
     lambda ws: ingest(ws, bag_with(ws, lambda b: (b / "metadata.yaml").write_text("rosbag2: [\n"))),
     "is not a readable rosbag2 recording"),
    ("offline-truncated-bag", lambda ws: offline(ws, bag=bag_with(ws, lambda b: truncate(next(b.glob("*.mcap"))))),
     "cannot be read as a rosbag2"),
    ("offline-corrupt-bag-metadata",
     lambda ws: offline(ws, bag=bag_with(ws, lambda b: (b / "metadata.yaml").write_text("rosbag2: [\n"))),
     "cannot be read as a rosbag2"),
    ("offline-camera-of-wrong-type", lambda ws: offline(ws, "--camera-topics", CAMERAS[0], "/status"),
     "/status has type std_msgs/msg/String"),
    ("offline-empty-camera-topic", lambda ws: offline(ws, "--camera-topics", CAMERAS[0], EMPTY), EMPTY),
    # --- checkpoints
    ("evaluate-truncated-checkpoint",
     lambda ws: ("evaluate", ["--run", str(run_with_truncated_checkpoints(ws)), "--out", ws.out()]),
     "no usable checkpoint"),
    ("export-checkpoint-of-other-config",
     lambda ws: ("rust_export", ["--run", str(run_with_other_config(ws)), "--out", ws.out()]),
     "does not fit its config.yaml"),
    ("train-heads-checkpoint-of-other-config",
     lambda ws: ("train_heads", ["--run", str(run_with_other_config(ws)), "--head", "epe", "--steps", "1"]),
     "does not fit its config.yaml"),
    # --- exported model directories
    ("offline-model-metadata-truncated",
     lambda ws: offline(ws, model=model_with(ws, lambda m: truncate(m / "metadata.json"))), "metadata.json is corrupt"),
    ("offline-model-metadata-other-format",
     lambda ws: offline(ws, model=model_with(ws, lambda m: edit_json(m / "metadata.json", format=99))),
     "is not format"),
    ("offline-model-encoder-truncated",
     lambda ws: offline(ws, model=model_with(ws, lambda m: truncate(m / "encoder.onnx"))), "encoder.onnx is corrupt"),
    ("offline-model-dir-is-a-run", lambda ws: offline(ws, model=ws.run), "is not an exported model directory"),
]


def tree(*roots: Path) -> dict[str, str]:
    """Every file and directory under `roots` → its sha256 (or "dir")."""
    return {str(p): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*"))}


def console_script(name: str, args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """(exit code, stderr) of console script `name`, run in this process (a subprocess would
    re-import torch, seconds per case) exactly as its wrapper does: `sys.exit(entry())`."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    try:
        code = importlib.import_module(SCRIPTS[name]).entry()
    except SystemExit as exc:  # argparse's errors exit from the parser
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def shared(dome_dir, dome64, model_dir, rig_bag):
    """The read-only inputs: the tiny model's training run lies next to its export (conftest)."""
    return dome_dir, dome64, model_dir.parent / "run", model_dir, rig_bag


@pytest.mark.parametrize("setup,message", [pytest.param(setup, message, id=name) for name, setup, message in CASES])
def test_bad_input_is_one_line_and_changes_nothing(shared, tmp_path, monkeypatch, capsys, setup, message):
    before_shared = tree(*shared)
    name, args = setup(Workspace(tmp_path, *shared))
    before = tree(tmp_path)
    code, stderr = console_script(name, args, monkeypatch, capsys)
    assert code == 2, stderr
    *warnings, error = stderr.splitlines() or [""]  # warnings may come first: the error is one last line
    assert error.startswith(f"{name}: error: ") and message in error, stderr
    assert not any(": error: " in line for line in warnings), stderr
    assert tree(tmp_path) == before, "the failed command changed or added files"
    assert tree(*shared) == before_shared


@pytest.fixture(scope="module")
def engine(model_dir):
    return OnnxRuntimeEngine(model_dir)


@pytest.mark.parametrize("image,message", [
    (np.zeros((32, 32), np.uint8), r"view 1 has shape \(32, 32\) and dtype uint8"),
    (np.zeros((32, 32, 4), np.uint8), r"view 1 has shape \(32, 32, 4\)"),
    (np.zeros((32, 32, 3), np.uint16), r"dtype uint16; expected \(32, 32, 3\) uint8"),
    (np.full((3, 32, 32), np.nan, np.float32), "view 1 has non-finite values"),
    (np.full((3, 32, 32), 255.0, np.float32), r"view 1 has values outside \[0, 1\]"),
], ids=["grayscale", "rgba", "uint16", "nan", "float-0-255"])
def test_bad_images_into_the_engine_are_named(engine, image, message):
    views = [np.zeros((32, 32, 3), np.uint8)] * 5
    with pytest.raises(EngineInputError, match=message):
        engine.encode(views[:1] + [image] + views[2:])
