"""The TensorRT paths on the CPU, through a fake `tensorrt` module and a fake CUDA runtime
(tests/fake_tensorrt.py): plan cache key and reuse, rebuild of an unloadable plan, cache fallback
for a read-only model directory, pruning, precision constraints on the real render graph,
dtype handling and buffer reuse, the TensorRT 10 pin; and the options ONNX Runtime's TensorRT
provider gets. On a machine with TensorRT and a GPU the real backend is compared with ONNX
Runtime (benchmarks/gpu_smoke.sh does the full check)."""

import importlib.util
import json
import os
import shutil
import sys
import time

import numpy as np
import pytest

import fake_tensorrt
from rust_perception.errors import UserError
from rust_perception.runtime import EngineInputError, ModelDirectory
from rust_perception.runtime import tensorrt_backend, trt_cache
from rust_perception.runtime.model_dir import PIXEL_PROFILE
from rust_perception.runtime.onnxruntime_backend import OnnxRuntimeEngine
from rust_perception.runtime.tensorrt_backend import TensorRTEngine, encoding_layers


@pytest.fixture
def trt(monkeypatch):
    module = fake_tensorrt.make_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    monkeypatch.setattr(tensorrt_backend, "_LOGGER", None)
    return module


@pytest.fixture
def model_copy(model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("tensorrt"))
    return tmp_path / "model"


def views(n=5, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_plans_are_keyed_cached_reused_and_rebuilt_when_unloadable(trt, model_copy):
    cuda = fake_tensorrt.FakeCuda()
    engine = TensorRTEngine(model_copy, cuda=cuda)
    graphs = set(ModelDirectory.load(model_copy).graphs)
    assert len(fake_tensorrt.STATE["builds"]) == len(graphs) and engine.cache == model_copy / "tensorrt"
    plans = {p.name.split("-")[0]: p for p in engine.cache.glob("*.plan")}
    assert set(plans) == graphs
    key = json.loads(plans["render"].with_suffix(".json").read_text())
    assert key["device"]["compute_capability"] == "8.7" and key["device"]["sm_count"] == 16
    assert key["device"]["cuda_runtime"] == 12060 and key["tensorrt"] == "10.3.0"
    assert key["settings"] == {"fp16": True, "fp32_encoding": True, "pixel_profile": list(PIXEL_PROFILE),
                               "workspace_bytes": tensorrt_backend.WORKSPACE_BYTES}
    assert key["graph_sha256"] == ModelDirectory.load(model_copy).graphs["render"].sha256
    assert {"builder_version", "package_version"} <= set(key)
    assert list(engine.cache.glob("timing-*.cache")), "builds write a timing cache"
    engine.close()

    TensorRTEngine(model_copy, cuda=cuda).close()  # same key: every plan reused
    assert len(fake_tensorrt.STATE["builds"]) == len(graphs)
    assert fake_tensorrt.STATE["loggers"] == 1  # one trt.Logger per process

    plans["pose"].write_bytes(b"garbage")  # e.g. a plan from another TensorRT build
    TensorRTEngine(model_copy, cuda=cuda).close()
    assert len(fake_tensorrt.STATE["builds"]) == len(graphs) + 1 and plans["pose"].read_bytes().startswith(b"PLAN")

    other = fake_tensorrt.FakeCuda(compute_capability="8.7", sm_count=8)  # a smaller Orin: same name
    TensorRTEngine(model_copy, cuda=other).close()
    assert len(fake_tensorrt.STATE["builds"]) == 2 * len(graphs) + 1
    TensorRTEngine(model_copy, cuda=cuda, fp16=False).close()  # builder settings are part of the key
    assert len(fake_tensorrt.STATE["builds"]) == 3 * len(graphs) + 1
    assert len(list(engine.cache.glob("render-*.plan"))) == 3


def test_old_plans_are_pruned(tmp_path):
    for i in range(5):
        plan = tmp_path / f"render-{i}.plan"
        plan.write_bytes(b"x")
        plan.with_suffix(".json").write_text("{}")
        os.utime(plan, (time.time() - 100 + i, time.time() - 100 + i))
    (tmp_path / "pose-0.plan").write_bytes(b"x")
    removed = trt_cache.prune(tmp_path, "render", keep=3)
    assert sorted(p.name for p in removed) == ["render-0.plan", "render-1.plan"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose-0.plan"] + [
        f"render-{i}.{ext}" for i in (2, 3, 4) for ext in ("json", "plan")]


def test_cache_falls_back_to_the_user_cache_when_the_model_directory_is_not_writable(trt, model_copy, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (model_copy / "tensorrt").write_text("in the way")  # MODEL_DIR/tensorrt cannot become a directory
    engine = TensorRTEngine(model_copy, cuda=fake_tensorrt.FakeCuda())
    model = ModelDirectory.load(model_copy)
    assert engine.cache == tmp_path / "xdg" / "rust_perception" / "tensorrt" / model.fingerprint[:20]
    assert len(list(engine.cache.glob("*.plan"))) == len(model.graphs)
    monkeypatch.setattr(trt_cache.os, "access", lambda path, mode: not str(path).startswith(str(model_copy)))
    (model_copy / "tensorrt").unlink()  # a directory that exists but is read-only (as for a non-root user)
    assert trt_cache.cache_dir(model_copy, model.fingerprint) == engine.cache


def test_precision_constraints_pin_the_encoding_and_first_query_layer(trt, model_copy):
    TensorRTEngine(model_copy, cuda=fake_tensorrt.FakeCuda()).close()
    builds = {b["network"].inputs[0].name: b for b in fake_tensorrt.STATE["builds"]}
    render = next(b for b in fake_tensorrt.STATE["builds"] if "uv" in [t.name for t in b["network"].inputs])
    layers = render["network"].layers
    pinned = [layer for layer in layers if layer.precision == "float32"]
    kinds = [layer.name.split(":")[0] for layer in pinned]
    trig = [layer for layer in layers if layer.name.startswith(("Sin:", "Cos:"))]
    assert trig and all(layer.precision == "float32" and layer.output_types == {0: "float32"} for layer in trig)
    assert "Mul" in kinds  # the angles: pixel coordinates × frequencies
    matmuls = [layer for layer in layers if layer.type == trt.LayerType.MATRIX_MULTIPLY]
    assert len(matmuls) > 3 and [m for m in matmuls if m.precision == "float32"] == [matmuls[0]]  # first query layer only
    assert trt.BuilderFlag.FP16 in render["config"].flags
    assert trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS in render["config"].flags
    assert render["config"].profiles[0].shapes["uv"] == ((1, 1, 2), (1, 4096, 2), (1, 16384, 2))
    encoder = builds["images"]  # the unposed encoder has no sinusoidal code: nothing to pin
    assert not encoding_layers(trt, encoder["network"])
    assert trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS not in encoder["config"].flags


def test_runs_with_engine_dtypes_bound_buffers_and_checked_shapes(trt, model_copy):
    cuda = fake_tensorrt.FakeCuda()
    engine = TensorRTEngine(model_copy, cuda=cuda)  # fake FP16 engines take and give float16 tensors
    slsr = np.linspace(0, 1, engine.model.tokens * engine.model.dim, dtype=np.float32).reshape(engine.model.tokens, -1)
    latent = np.full(engine.model.latent_dim, 0.1, np.float32)
    uv = engine.pixel_grid()
    cuda.uploads.clear()
    rgb = engine.render(slsr, latent, uv, chunk=100)  # 11 chunks
    assert rgb.dtype == np.float32 and rgb.shape == (32 * 32, 3)
    expected = [float(slsr.astype(np.float16).astype(np.float64).sum() + 2 * latent.astype(np.float16).astype(np.float64).sum()
                      + uv[s : s + 100].astype(np.float16).astype(np.float64).sum()) for s in range(0, len(uv), 100)]
    chunks = np.repeat(np.array(expected, np.float16).astype(np.float32), [min(100, len(uv) - s) for s in range(0, len(uv), 100)])
    assert np.array_equal(rgb[:, 0], chunks)
    assert len(cuda.uploads) == 2 + 11  # SLSR and latents (both halves: one latent twice) once, the pixel coordinates per chunk
    assert np.isfinite(engine.render(slsr, latent, np.zeros((20000, 2), np.float32))).all()  # 16384 + 3616
    with pytest.raises(EngineInputError, match=r"outside the TensorRT engine's profile \(\(1, 1, 2\) to \(1, 16384, 2\)\)"):
        engine._run("render", {"slsr": slsr[None], "latents": np.stack([latent, latent])[None],
                               "uv": np.zeros((1, 20000, 2), np.float32)})
    images = engine.encode(views())
    assert images.dtype == np.float32
    engine.close()
    assert not cuda.buffers  # every device buffer freed


def test_tensorrt_other_than_10_is_refused_with_the_install_line(model_copy, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_tensorrt("11.0.0"))
    with pytest.raises(UserError, match=r"needs TensorRT 10.x, found 11.0.0: pip install 'tensorrt-cu12>=10,<11'"):
        TensorRTEngine(model_copy, cuda=fake_tensorrt.FakeCuda())


def test_onnxruntime_tensorrt_provider_gets_fp16_caches_and_pixel_profile(model_copy, monkeypatch):
    import onnxruntime as ort

    from rust_perception.runtime import onnxruntime_backend

    seen = {}
    real = ort.InferenceSession

    def session(path, options, providers):
        seen[os.path.basename(path)] = providers
        return real(path, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(onnxruntime_backend.ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnxruntime_backend.ort, "InferenceSession", session)
    engine = OnnxRuntimeEngine(model_copy)
    assert engine.providers == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    name, render = seen["render.onnx"][0]
    assert name == "TensorrtExecutionProvider" and seen["render.onnx"][1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cache = model_copy / "tensorrt" / f"onnxruntime-{ort.__version__}"
    assert render["trt_engine_cache_enable"] == "True" and render["trt_engine_cache_path"] == str(cache)
    assert render["trt_timing_cache_enable"] == "True" and render["trt_timing_cache_path"] == str(cache)
    assert (render["trt_profile_min_shapes"], render["trt_profile_opt_shapes"], render["trt_profile_max_shapes"]) == (
        "uv:1x1x2", "uv:1x4096x2", "uv:1x16384x2")
    assert render["trt_fp16_enable"] == "False"  # the provider cannot pin the pixel encoding to FP32
    encoder = seen["encoder.onnx"][0][1]
    assert encoder["trt_fp16_enable"] == "True" and "trt_profile_min_shapes" not in encoder
    assert render["trt_engine_cache_prefix"] != encoder["trt_engine_cache_prefix"] and cache.is_dir()


def test_real_tensorrt_matches_onnxruntime_where_present(model_copy):
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("TensorRT is not installed here (no NVIDIA GPU on this machine); benchmarks/gpu_smoke.sh checks it")
    from rust_perception.runtime.registry import available_backends

    if "tensorrt" not in available_backends():
        pytest.skip("TensorRT is installed but no CUDA device is visible")
    engine, reference = TensorRTEngine(model_copy), OnnxRuntimeEngine(model_copy)
    slsr = reference.encode(views())
    latent = reference.view_latents(slsr, views()[0])  # both halves' (a crossed model): the in-graph choice too
    assert np.abs(engine.render(slsr, latent) - reference.render(slsr, latent)).max() < 2e-2  # fp16
