"""ONNX Runtime backend: the best execution providers present (TensorRT → CUDA → CPU).

The TensorRT provider gets explicit options (its defaults are FP32, no caches, and a rebuild
whenever a render chunk leaves the pixel counts seen so far): FP16, an engine and a timing cache
in the TensorRT cache directory (`trt_cache.py`) and a fixed optimisation profile for the dynamic
pixel input. It cannot pin single layers to FP32, so the graphs holding the pixel positional
encoding (render, segment: ~400 rad angles, out of phase at FP16) run FP32 there; backend
`tensorrt` runs them FP16 with the encoding pinned."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from ..errors import UserError
from .engine import Engine
from .model_dir import PIXEL_PROFILE, ModelDirectory
from .trt_cache import cache_dir

log = logging.getLogger(__name__)
PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
WORKSPACE_BYTES = 1 << 30
OPTIMIZATION = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def tensorrt_provider_options(model: ModelDirectory, graph: str, directory: Path, fp16: bool = True) -> dict[str, str]:
    """Options of ONNX Runtime's TensorRT provider for one graph of `model`."""
    pixels = "uv" in model.graph_inputs()[graph]
    options = {"trt_fp16_enable": str(fp16 and not pixels), "trt_max_workspace_size": str(WORKSPACE_BYTES),
               "trt_engine_cache_enable": "True", "trt_engine_cache_path": str(directory),
               "trt_engine_cache_prefix": f"{graph}_{model.graphs[graph].sha256[:16]}",
               "trt_timing_cache_enable": "True", "trt_timing_cache_path": str(directory)}
    if pixels:
        for key, count in zip(("min", "opt", "max"), PIXEL_PROFILE):
            options[f"trt_profile_{key}_shapes"] = f"uv:1x{count}x2"
    return options


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, model: ModelDirectory | str | Path, threads: int = 0, optimization: str = "all",
                 fp16: bool = True, cache: str | Path | None = None):
        super().__init__(model)
        available = ort.get_available_providers()
        self.providers = [p for p in PREFERRED if p in available]
        options = ort.SessionOptions()
        options.graph_optimization_level = OPTIMIZATION[optimization]
        if threads:
            options.intra_op_num_threads = threads
        # no busy-waiting between ops: a robot's CPU is shared with other nodes, and spinning
        # threads collapse throughput as soon as cores are oversubscribed
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        trt_dir = None
        if "TensorrtExecutionProvider" in self.providers:
            trt_dir = _ort_cache_dir(self.model, cache)
        self.sessions = {}
        for name in self.model.graphs:
            path = self.model.graph_path(name)
            providers = [(p, tensorrt_provider_options(self.model, name, trt_dir, fp16))
                         if p == "TensorrtExecutionProvider" else p for p in self.providers]
            try:
                session = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:
                raise UserError(f"model file {path} cannot be loaded by ONNX Runtime ({str(exc).splitlines()[0][:200]})") from None
            self.model.check_graph(name, path, {i.name: i.shape for i in session.get_inputs()})
            self.sessions[name] = session
        log.info("onnxruntime engine: providers %s%s", self.providers, f" (TensorRT caches in {trt_dir})" if trt_dir else "")

    def _run(self, graph, feeds):
        return self.sessions[graph].run(None, feeds)


def _ort_cache_dir(model: ModelDirectory, override: str | Path | None) -> Path:
    """ONNX Runtime names its engines by graph and GPU architecture, not by its own or TensorRT's
    version: one subfolder per ONNX Runtime version keeps an upgrade from loading stale engines."""
    directory = cache_dir(model.path, model.fingerprint, override) / f"onnxruntime-{ort.__version__}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
