"""Export and engines: torch vs ONNX Runtime parity for every graph, chunked rendering, metadata
round trip and mismatch detection, and one-line errors for bad files and bad inputs."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from rust_perception.errors import UserError
from rust_perception.io import sha256_file
from rust_perception.runtime import EngineInputError, ModelDirectory, available_backends, create_engine
from rust_perception.runtime.model_dir import METADATA
from rust_perception.runtime.onnxruntime_backend import OnnxRuntimeEngine
from rust_perception.runtime.torch_backend import TorchEngine
from rust_perception.training.export import export_model



@pytest.fixture(scope="module")
def engines(model_dir):
    return TorchEngine(model_dir), OnnxRuntimeEngine(model_dir)


def views(n=5, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_every_graph_agrees_between_torch_and_onnxruntime(engines):
    torch_engine, ort_engine = engines
    inputs = views()
    slsr = torch_engine.encode(inputs)
    assert np.abs(slsr - ort_engine.encode(inputs)).max() <= 1e-4
    latent = torch_engine.estimate_pose(slsr, inputs[1])
    assert np.abs(latent - ort_engine.estimate_pose(slsr, inputs[1])).max() <= 1e-4
    assert np.abs(latent - torch_engine.estimate_pose(slsr, inputs[1], half="right")).max() > 0  # halves differ
    for chunk in (1, 33, 512, 4096):
        assert np.abs(torch_engine.render(slsr, latent, chunk=chunk) - ort_engine.render(slsr, latent, chunk=chunk)).max() <= 1e-4
    logits_t = torch_engine._render(slsr, latent, torch_engine.pixel_grid(64), 4096, graph="segment")
    logits_o = ort_engine._render(slsr, latent, ort_engine.pixel_grid(64), 700, graph="segment")
    assert np.abs(logits_t - logits_o).max() <= 1e-4
    other = torch_engine.estimate_pose(slsr, inputs[3])
    a, b = torch_engine.relative_pose(slsr, latent, other), ort_engine.relative_pose(slsr, latent, other)
    assert np.abs(a["position"] - b["position"]).max() <= 1e-4 and a["rotation"] is None  # dome: position only


def test_chunked_render_equals_one_pass_and_sizes(engines):
    _, engine = engines
    inputs = views(seed=1)
    slsr = engine.encode(inputs)
    latent = engine.estimate_pose(slsr, inputs[0])
    one = engine.render(slsr, latent, chunk=10**6)
    assert one.shape == (32 * 32, 3) and np.abs(one - engine.render(slsr, latent, chunk=17)).max() <= 1e-6
    assert engine.render_image(slsr, latent).shape == (32, 32, 3)
    assert engine.render_image(slsr, latent, size=64).dtype == np.uint8
    seg = engine.segment(slsr, latent, size=48)
    assert seg.shape == (48, 48) and seg.max() < len(engine.meta["classes"])


def test_crossed_model_renders_each_half_from_the_other_halfs_latent(engines, model_dir):
    """The fixture is trained with the loss on unseen halves: a whole frame takes its left pixels
    from the right half's latent and its right pixels from the left half's, in every backend
    (the graph picks, not the runtime), and as the one torch SceneModel renders it."""
    import torch

    from rust_perception.model.scene_model import pixel_grid
    from rust_perception.training.trainer import load_model

    torch_engine, ort_engine = engines
    inputs = views(seed=2)
    slsr = ort_engine.encode(inputs)
    latents = ort_engine.view_latents(slsr, inputs[1])
    assert latents.shape == (2, 8) and np.abs(latents[0] - ort_engine.estimate_pose(slsr, inputs[1])).max() <= 1e-5
    assert np.abs(latents[1] - ort_engine.estimate_pose(slsr, inputs[1], half="right")).max() <= 1e-5
    assert np.abs(latents - torch_engine.view_latents(slsr, inputs[1])).max() <= 1e-4
    whole = ort_engine.render(slsr, latents)
    assert np.abs(whole - torch_engine.render(slsr, latents)).max() <= 1e-4
    right = ort_engine.pixel_grid()[:, 0] >= 16
    assert np.abs(whole[right] - ort_engine.render(slsr, latents[0])[right]).max() <= 1e-6
    assert np.abs(whole[~right] - ort_engine.render(slsr, latents[1])[~right]).max() <= 1e-6
    assert np.abs(whole - ort_engine.render(slsr, latents[0])).max() > 1e-3  # the crossing changes the left half
    _, model, _ = load_model(model_dir.parent / "run")
    images = torch.from_numpy(np.stack(inputs)).permute(0, 3, 1, 2).float()[None] / 255.0
    with torch.no_grad():
        reference = model.encode(images)
        query = model.query_input(pixel_grid(32, 32)[None, None], model.view_latents(reference, images[:, 1:2]))
        expected = model.render(reference, query)[0, 0].clamp(0, 1).numpy()
    assert np.abs(whole - expected).max() <= 1e-4


def test_a_model_trained_on_whole_targets_renders_every_pixel_from_the_left_halfs_latent(street_model_dir):
    """The paper's model (loss on whole targets): its view_pose graph repeats the left half's latent,
    and a second row, whatever it holds, changes nothing."""
    engine = OnnxRuntimeEngine(street_model_dir)
    assert not engine.model.crossed_halves
    inputs = views(seed=3)
    slsr = engine.encode(inputs)
    calls = []
    run = engine._run
    engine._run = lambda graph, feeds: (calls.append(graph), run(graph, feeds))[1]
    latents = engine.view_latents(slsr, inputs[1])
    assert calls == ["view_pose"] and np.array_equal(latents[0], latents[1])
    assert np.abs(latents[0] - engine.estimate_pose(slsr, inputs[1])).max() <= 1e-5
    other = engine.estimate_pose(slsr, inputs[2])
    assert np.abs(engine.render(slsr, np.stack([latents[0], other])) - engine.render(slsr, latents[0])).max() == 0


def test_metadata_round_trip_and_auto_backend(model_dir):
    model = ModelDirectory.load(model_dir)
    meta = model.meta
    assert meta == json.loads((model_dir / METADATA).read_text())
    assert (model.image_size, model.num_inputs, model.latent_dim, model.tokens) == (32, 5, 8, meta["tokens"])
    assert model.graphs["render"].inputs == ("slsr", "latents", "uv") and model.segmentation and model.epe
    assert model.crossed_halves and meta["crossed_halves"]
    assert meta["image_size"] == 32 and meta["num_inputs"] == 5 and meta["latent_dim"] == 8
    assert [c["name"] for c in meta["classes"]][:2] == ["sky", "ground"] and meta["segmentation"] and meta["epe"]
    assert len(meta["latent_space"]["pca"]["components"]) == 8 and len(meta["training_config_sha256"]) == 64
    assert set(meta["graphs"]) == {"encoder", "pose", "view_pose", "render", "segment", "epe"} and meta["opset"] == 18
    run = model_dir.parent / "run"  # what export read: the metadata must carry the run's values, not defaults
    saved = json.loads((run / "latent_space.json").read_text())
    assert meta["latent_space"]["pca"]["components"] == saved["pca"]["components"]
    assert meta["training_config_sha256"] == sha256_file(run / "config.yaml")
    assert meta["dim"] == yaml.safe_load((run / "config.yaml").read_text())["model"]["dim"]
    assert available_backends()[-1] == "torch"
    engine = create_engine(model, "auto")
    assert engine.name == available_backends()[0] and engine.model is model  # loaded and verified once


def test_bad_model_files_and_metadata_mismatch_are_named(model_dir, tmp_path):
    broken = tmp_path / "m"
    shutil.copytree(model_dir, broken)
    (broken / "render.onnx").write_bytes(b"not onnx")
    with pytest.raises(UserError, match=r"render.onnx is corrupt"):
        OnnxRuntimeEngine(broken)
    (broken / "render.onnx").unlink()
    with pytest.raises(UserError, match=r"render.onnx is missing"):
        OnnxRuntimeEngine(broken)
    with pytest.raises(UserError, match=r"metadata.json is missing"):
        TorchEngine(tmp_path)
    mismatch = tmp_path / "mismatch"
    shutil.copytree(model_dir, mismatch)
    meta = json.loads((mismatch / METADATA).read_text())
    meta["image_size"] = 64  # graphs were exported for 32×32
    (mismatch / METADATA).write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"encoder.onnx: input 'images' has shape \[1, 5, 3, 32, 32\], but "):
        OnnxRuntimeEngine(mismatch)
    (mismatch / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="weights.pt is corrupt"):
        TorchEngine(mismatch)
    with pytest.raises(UserError, match="backend='cuda' is not allowed"):
        create_engine(model_dir, "cuda")


def test_wrong_inputs_name_the_expected_shape(engines):
    _, engine = engines
    with pytest.raises(EngineInputError, match=r"got 4 views; the model takes exactly 5"):
        engine.encode(views(4))
    with pytest.raises(EngineInputError, match=r"view 2 has shape \(64, 64, 3\).*expected \(32, 32, 3\) uint8"):
        engine.encode(views(2) + views(1, size=64) + views(2))
    slsr = engine.encode(views())
    with pytest.raises(EngineInputError, match=r"latent has shape \(3,\); expected \(8,\) or \(2, 8\)"):
        engine.render(slsr, np.zeros(3))
    with pytest.raises(EngineInputError, match=r"latent has shape \(3, 8\); expected \(8,\) or \(2, 8\)"):
        engine.segment(slsr, np.zeros((3, 8)))
    with pytest.raises(EngineInputError, match=r"slsr has shape \(10, 64\); expected \(80, 64\)"):
        engine.estimate_pose(np.zeros((10, 64)), views(1)[0])
    with pytest.raises(EngineInputError, match=r"uv has shape \(5,\)"):
        engine.render(slsr, np.zeros(8), uv=np.zeros(5))


def test_posed_runs_are_not_exported(dome_dir, tmp_path):
    from rust_perception.training.trainer import Trainer
    from test_training import tiny

    Trainer(tiny(dome_dir, "steps=1", "eval_every=1", "model.variant=upsrt"), tmp_path / "run", progress=False).train()
    with pytest.raises(UserError, match="only rust models are exported"):
        export_model(tmp_path / "run", tmp_path / "out")


TORCH_FREE = r"""
import json, sys
sys.modules["torch"] = None  # `import torch` (and any torch.*) now raises ImportError
import numpy as np
from rust_perception.runtime import available_backends, create_engine
from rust_perception.runtime import tensorrt_backend  # importable without torch (and without TensorRT)
from rust_perception.errors import UserError
engine = create_engine(sys.argv[1], "auto")
rng = np.random.default_rng(0)
views = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(5)]
slsr = engine.encode(views)
latent = engine.estimate_pose(slsr, views[1])
try:
    create_engine(sys.argv[1], "torch")
    torch_refused = ""
except UserError as exc:
    torch_refused = str(exc)
print(json.dumps({"backend": engine.name, "available": available_backends(), "rgb": engine.render(slsr, latent).tolist(),
                  "torch_refused": torch_refused, "torch_modules": [m for m in sys.modules if m.startswith("torch") and sys.modules[m] is not None]}))
"""


def test_onnxruntime_path_runs_with_torch_unimportable(model_dir, engines):
    """A Jetson with ONNX Runtime (or TensorRT) and no torch: the runtime imports, picks ONNX
    Runtime, and renders what it renders with torch present."""
    from conftest import ROOT

    result = subprocess.run([sys.executable, "-c", TORCH_FREE, str(model_dir)], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["backend"] == "onnxruntime" and out["available"] == ["onnxruntime"] and out["torch_modules"] == []
    assert out["torch_refused"] == "backend 'torch' is not available here (available: onnxruntime)"
    _, ort_engine = engines
    slsr = ort_engine.encode(views())
    expected = ort_engine.render(slsr, ort_engine.estimate_pose(slsr, views()[1]))
    assert np.abs(np.array(out["rgb"]) - expected).max() <= 1e-6


def test_runtime_modules_import_no_cycle_and_torch_only_in_its_backend():
    """Import graph of rust_perception.runtime (module- and function-level imports): acyclic, and
    only the torch backend reaches torch or the training code."""
    import ast
    from pathlib import Path

    import rust_perception.runtime as runtime

    root = Path(runtime.__file__).parent
    graph = {}
    for path in root.glob("*.py"):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets |= {node.module} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                targets.add(f"..{node.module}")
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[path.stem] = targets
    graph["registry"] |= {module for module, _ in __import__("rust_perception.runtime.registry",
                                                             fromlist=["BACKENDS"]).BACKENDS.values()}
    for name, targets in graph.items():
        heavy = {t for t in targets if t.split(".")[0] == "torch" or t.startswith(("..model", "..training"))}
        assert not heavy or name == "torch_backend", f"{name} imports {heavy}"
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join(trail + [node])}"
        state[node] = "open"
        for target in graph.get(node, ()):
            if target in graph:
                visit(target, trail + [node])
        state[node] = "done"

    for node in graph:
        visit(node, [])
