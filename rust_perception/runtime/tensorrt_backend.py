"""TensorRT 10 backend: engines built from the exported ONNX graphs, cached as plans keyed by
everything a plan depends on (`trt_cache.py`), run through the name-based tensor API
(`execute_async_v3`) on device buffers allocated once per graph (`cuda.py`; no torch).

Under FP16 the pixel positional encoding (Mul → Sin/Cos, angles up to ~400 rad) and the layers
from it to the first query matrix multiply stay FP32 (precision constraints): at FP16 the top
octaves would be ~0.3 rad out of phase. Builds use and update a timing cache beside the plans.
Importing this module needs neither TensorRT nor a GPU; constructing the engine does, and says so
in one line. `prebuild MODEL_DIR` builds every plan ahead of launch."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import atomic_write, write_json
from .cuda import DEVICE_TO_HOST, HOST_TO_DEVICE, CudaRuntime
from .engine import Engine, EngineInputError
from .model_dir import PIXEL_PROFILE, ModelDirectory
from .trt_cache import BuildSettings, cache_dir, key_digest, plan_key, plan_path, prune

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
INSTALL = ("pip install 'tensorrt-cu12>=10,<11' on a PC, or JetPack 6's python3-libnvinfer on a Jetson "
           "(with a venv created with --system-site-packages)")
_LOGGER = None


def import_tensorrt():
    """The tensorrt module, refused unless it is the 10.x line this backend is written for."""
    try:
        import tensorrt as trt
    except ImportError:
        raise UserError(f"backend 'tensorrt' needs TensorRT 10: {INSTALL}") from None
    if not trt.__version__.startswith("10."):
        raise UserError(f"backend 'tensorrt' needs TensorRT 10.x, found {trt.__version__}: {INSTALL}")
    return trt


def trt_logger(trt):
    """One logger per process: TensorRT keeps the first one it is given for good."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def encoding_layers(trt, network) -> list:
    """The positional encoding's layers: every Sin/Cos, everything computing their arguments, and
    everything after them up to and including the first matrix multiply (the first query layer)."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    producer, consumers = {}, defaultdict(list)
    for layer in layers:
        for j in range(layer.num_outputs):
            producer[layer.get_output(j).name] = layer
        for j in range(layer.num_inputs):
            tensor = layer.get_input(j)
            if tensor is not None:
                consumers[tensor.name].append(layer)
    trig = []
    for layer in layers:
        if layer.type == trt.LayerType.UNARY:
            layer.__class__ = trt.IUnaryLayer  # the Python bindings hand out the base class
            if layer.op in (trt.UnaryOperation.SIN, trt.UnaryOperation.COS):
                trig.append(layer)
    region = {id(layer): layer for layer in trig}
    stack = list(trig)
    while stack:  # arguments, back to the network inputs and constants
        layer = stack.pop()
        for j in range(layer.num_inputs):
            tensor = layer.get_input(j)
            source = producer.get(tensor.name) if tensor is not None else None
            if source is not None and id(source) not in region:
                region[id(source)] = source
                stack.append(source)
    stack = list(trig)
    while stack:  # results, forward to the first matrix multiply on each path
        layer = stack.pop()
        for j in range(layer.num_outputs):
            for user in consumers[layer.get_output(j).name]:
                if id(user) not in region:
                    region[id(user)] = user
                    if user.type != trt.LayerType.MATRIX_MULTIPLY:
                        stack.append(user)
    return [layer for layer in layers if id(layer) in region]


def pin_fp32(trt, layers) -> list[str]:
    """Constrain the floating-point layers among `layers` to compute and output FP32; their names."""
    pinned = []
    for layer in layers:
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if layer.type in (trt.LayerType.SHAPE, trt.LayerType.CONSTANT) or not all(
                o.dtype in (trt.float32, trt.float16) for o in outputs):
            continue
        layer.precision = trt.float32
        for j in range(len(outputs)):
            layer.set_output_type(j, trt.float32)
        pinned.append(layer.name)
    return pinned


def build_plan(trt, onnx_path: Path, settings: BuildSettings, timing_cache: Path) -> bytes:
    """Parse one ONNX graph and build its serialized engine, reading and updating `timing_cache`."""
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    if settings.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        if settings.fp32_encoding and pin_fp32(trt, encoding_layers(trt, network)):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    if cache is None or not config.set_timing_cache(cache, False):
        log.warning("timing cache %s is unusable; starting a new one", timing_cache)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name == "uv":
            low, opt, high = settings.pixel_profile
            profile.set_shape("uv", (1, low, 2), (1, opt, 2), (1, high, 2))
        else:
            profile.set_shape(tensor.name, tuple(tensor.shape), tuple(tensor.shape), tuple(tensor.shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    with atomic_write(timing_cache) as handle:
        handle.write(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


@dataclass
class _Tensor:
    """One input or output: its dtype and buffers sized for the largest shape the profile allows."""

    name: str
    is_input: bool
    dtype: np.dtype
    device: int
    host: np.ndarray  # pinned, flat
    uploaded: np.ndarray | None = None  # the input value now on the device (SLSR, latent repeat per chunk)


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(self, model: ModelDirectory | str | Path, fp16: bool = True, cache: str | Path | None = None,
                 render_chunk: int = PIXEL_PROFILE[1], fp32_encoding: bool = True, cuda: CudaRuntime | None = None):
        super().__init__(model)
        self.trt = trt = import_tensorrt()
        self.cuda = cuda or CudaRuntime.load()
        self.device = self.cuda.device_info()
        self.settings = BuildSettings(fp16=fp16, fp32_encoding=fp32_encoding, pixel_profile=PIXEL_PROFILE,
                                      workspace_bytes=WORKSPACE_BYTES)
        self.cache = cache_dir(self.model.path, self.model.fingerprint, cache)
        self.runtime = trt.Runtime(trt_logger(trt))
        self.stream = self.cuda.stream()
        self.engines, self.contexts, self.tensors, self.plans = {}, {}, {}, {}
        for name in self.model.graphs:
            engine = self._engine(name)
            inputs = {n: list(engine.get_tensor_shape(n)) for n in map(engine.get_tensor_name, range(engine.num_io_tensors))
                      if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
            self.model.check_graph(name, self.plans[name], inputs)
            self.engines[name], self.contexts[name] = engine, engine.create_execution_context()
            self.tensors[name] = self._allocate(engine, self.contexts[name])
        self.render_chunk = min(render_chunk, PIXEL_PROFILE[2])

    # ------------------------------------------------------------------ plans
    def _engine(self, name: str):
        """Load the cached plan of graph `name`, building it when missing or unloadable."""
        key = plan_key(self.model.graphs[name].sha256, self.device.as_dict(), self.trt.__version__, self.settings)
        plan = self.plans[name] = plan_path(self.cache, name, key)
        engine = self._deserialize(plan) if plan.is_file() else None
        if engine is None:
            if plan.is_file():
                log.warning("cached TensorRT plan %s cannot be loaded; rebuilding it", plan)
            log.info("building TensorRT engine %s (one-off, minutes on a Jetson; cached in %s)", name, self.cache)
            started = time.perf_counter()
            data = build_plan(self.trt, self.model.graph_path(name), self.settings, self.timing_cache_path())
            with atomic_write(plan) as handle:
                handle.write(data)
            write_json(plan.with_suffix(".json"), key)
            log.info("built %s in %.1f s", plan.name, time.perf_counter() - started)
            engine = self._deserialize(plan)
            if engine is None:
                raise UserError(f"TensorRT cannot load the plan it just built ({plan})")
        else:
            os.utime(plan)  # most recently used: pruning keeps it
        prune(self.cache, name)
        return engine

    def _deserialize(self, plan: Path):
        try:
            return self.runtime.deserialize_cuda_engine(plan.read_bytes())
        except Exception as exc:  # TensorRT raises on some damaged plans and returns None on others
            log.warning("TensorRT failed to deserialize %s: %s", plan, exc)
            return None

    def timing_cache_path(self) -> Path:
        device = {"device": self.device.as_dict(), "tensorrt": self.trt.__version__}
        return self.cache / f"timing-{key_digest(device)}.cache"

    # ------------------------------------------------------------------ buffers
    def _allocate(self, engine, context) -> dict[str, _Tensor]:
        """Device and pinned host buffers for the largest shapes of the profile, bound once."""
        trt = self.trt
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        shapes = {}
        for n in inputs:
            shapes[n] = tuple(engine.get_tensor_profile_shape(n, 0)[2]) if -1 in tuple(engine.get_tensor_shape(n)) \
                else tuple(engine.get_tensor_shape(n))
            if not context.set_input_shape(n, shapes[n]):
                raise RuntimeError(f"TensorRT refused input {n} at its profile's largest shape {shapes[n]}")
        for n in names:
            if n not in shapes:
                shapes[n] = tuple(context.get_tensor_shape(n))
        tensors = {}
        for n in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(n)))
            count = int(np.prod(shapes[n]))
            tensor = _Tensor(n, n in inputs, dtype, self.cuda.malloc(count * dtype.itemsize),
                             self.cuda.host_array((count,), dtype))
            context.set_tensor_address(n, tensor.device)
            tensors[n] = tensor
        return tensors

    def close(self) -> None:
        """Free the device and pinned buffers (also done when the engine is garbage-collected)."""
        for tensors in getattr(self, "tensors", {}).values():
            for tensor in tensors.values():
                self.cuda.free(tensor.device)
                self.cuda.free_host(tensor.host)
        self.tensors = {}

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the CUDA library may be gone already
            pass

    # ------------------------------------------------------------------ running
    def _run(self, graph, feeds):
        engine, context, tensors = self.engines[graph], self.contexts[graph], self.tensors[graph]
        for name, value in feeds.items():
            tensor = tensors[name]
            value = np.ascontiguousarray(value)
            if not context.set_input_shape(name, value.shape):
                low, _, high = engine.get_tensor_profile_shape(name, 0)
                raise EngineInputError(f"{graph}: input {name!r} of shape {value.shape} is outside the TensorRT "
                                       f"engine's profile ({tuple(low)} to {tuple(high)})")
            if tensor.uploaded is not None and tensor.uploaded.shape == value.shape and np.array_equal(tensor.uploaded, value):
                continue  # already on the device
            host = tensor.host[: value.size].reshape(value.shape)
            host[...] = value  # casts to the engine's input dtype
            self.cuda.copy_async(tensor.device, host.ctypes.data, host.nbytes, HOST_TO_DEVICE, self.stream)
            tensor.uploaded = value.copy()
        if not context.execute_async_v3(self.stream):
            raise RuntimeError(f"TensorRT execution of {graph} failed")
        outputs = []
        for tensor in tensors.values():
            if tensor.is_input:
                continue
            shape = tuple(context.get_tensor_shape(tensor.name))
            if any(d < 0 for d in shape):
                raise RuntimeError(f"TensorRT left output {tensor.name} of {graph} with unresolved shape {shape}")
            host = tensor.host[: int(np.prod(shape))].reshape(shape)
            self.cuda.copy_async(host.ctypes.data, tensor.device, host.nbytes, DEVICE_TO_HOST, self.stream)
            outputs.append(host)
        self.cuda.synchronize(self.stream)
        return [o.astype(np.float32) for o in outputs]  # copies: the pinned buffers are reused

    def _render(self, slsr, latent, uv, chunk, graph="render"):
        return super()._render(slsr, latent, uv, min(chunk, self.render_chunk), graph)

