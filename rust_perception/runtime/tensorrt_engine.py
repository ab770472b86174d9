"""TensorRT 10 backend: FP16 engines built from the exported ONNX graphs, cached per device,
TensorRT version and graph checksum (a re-export into the same model directory never reuses a stale
engine), run on torch CUDA tensors as device buffers (name-based tensor API,
`execute_async_v3`). Importing this module never needs TensorRT or a GPU; constructing the
engine does, and says so in one line.

The equivalent command line for one graph (what this builds, e.g. on a Jetson; segment.onnx
takes the same uv shapes):
    trtexec --onnx=render.onnx --fp16 --saveEngine=render.plan \
            --minShapes=uv:1x1x2 --optShapes=uv:1x4096x2 --maxShapes=uv:1x16384x2
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import atomic_write
from .engine import Engine, check_graph_against_metadata

log = logging.getLogger(__name__)
# uv pixel-count range of the render graph's optimisation profile: (min, opt, max)
RENDER_PIXELS = (1, 4096, 16384)


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise UserError("backend 'tensorrt' needs the TensorRT Python package (pip install tensorrt, or JetPack "
                        "on a Jetson)") from None
    import torch

    if not torch.cuda.is_available():
        raise UserError("backend 'tensorrt' needs an NVIDIA GPU with CUDA; none is visible to torch")
    return trt, torch


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(self, model_dir: str | Path, fp16: bool = True, cache_dir: str | Path | None = None,
                 render_chunk: int = RENDER_PIXELS[1]):
        super().__init__(model_dir)
        trt, torch = _import_tensorrt()
        self.trt, self.torch = trt, torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        device = torch.cuda.get_device_name().replace(" ", "_")
        cache = Path(cache_dir or self.model_dir / "tensorrt") / f"{device}_trt{trt.__version__}_{'fp16' if fp16 else 'fp32'}"
        self.engines, self.contexts = {}, {}
        for name, g in self.meta["graphs"].items():
            plan = cache / f"{name}_{g['sha256'][:16]}.plan"
            if not plan.is_file():
                log.info("building TensorRT engine %s (one-off; cached in %s)", name, cache)
                with atomic_write(plan) as handle:
                    handle.write(self._build(self.model_dir / g["file"], fp16))
            engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
            if engine is None:
                raise UserError(f"cached TensorRT engine {plan} cannot be loaded (delete it to rebuild)")
            inputs = {n: list(engine.get_tensor_shape(n)) for n in map(engine.get_tensor_name, range(engine.num_io_tensors))
                      if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
            check_graph_against_metadata(name, plan, inputs, self.meta)
            self.engines[name], self.contexts[name] = engine, engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.render_chunk = min(render_chunk, RENDER_PIXELS[2])

    def _build(self, onnx_path: Path, fp16: bool) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise UserError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = list(tensor.shape)
            if tensor.name == "uv":
                lo, opt, hi = RENDER_PIXELS
                profile.set_shape("uv", (1, lo, 2), (1, opt, 2), (1, hi, 2))
            else:
                profile.set_shape(tensor.name, shape, shape, shape)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise UserError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
        return bytes(serialized)

    def _run(self, graph, feeds):
        trt, torch = self.trt, self.torch
        engine, context = self.engines[graph], self.contexts[graph]
        keep = []
        for name, value in feeds.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).cuda()
            keep.append(tensor)
            context.set_input_shape(name, tuple(tensor.shape))
            context.set_tensor_address(name, tensor.data_ptr())
        outputs = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                out = torch.empty(tuple(context.get_tensor_shape(name)), dtype=torch.float32, device="cuda")
                context.set_tensor_address(name, out.data_ptr())
                outputs.append(out)
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution of {graph} failed")
        self.stream.synchronize()
        return [o.cpu().numpy() for o in outputs]

    def _render(self, slsr, latent, uv, chunk, graph="render"):
        return super()._render(slsr, latent, uv, min(chunk, self.render_chunk), graph)
