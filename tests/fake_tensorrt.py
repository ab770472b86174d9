"""Fake `tensorrt` and CUDA runtime for the TensorRT backend's CPU tests.

The fake parser turns a real exported ONNX graph into layers (so precision constraints are
checked on the real render graph's structure); a "plan" is JSON naming the graph's inputs and
outputs; an execution context computes every output as the sum of its inputs (read from the fake
device buffers at the addresses bound to it) in the engine's dtype, so data movement and dtype
handling are checked end to end. The fake CUDA device memory is host memory."""

from __future__ import annotations

import ctypes
import json
import types
from enum import Enum

import numpy as np
import onnx

from rust_perception.runtime.cuda import DeviceInfo


class LayerType(Enum):
    UNARY = "unary"
    MATRIX_MULTIPLY = "matmul"
    SHAPE = "shape"
    CONSTANT = "constant"
    ELEMENTWISE = "elementwise"
    OTHER = "other"


class UnaryOperation(Enum):
    SIN = "sin"
    COS = "cos"
    OTHER = "other"


class TensorIOMode(Enum):
    INPUT = "input"
    OUTPUT = "output"


class BuilderFlag(Enum):
    FP16 = "fp16"
    OBEY_PRECISION_CONSTRAINTS = "obey"


class MemoryPoolType(Enum):
    WORKSPACE = "workspace"


class Tensor:
    def __init__(self, name, dtype="float32", shape=()):
        self.name, self.dtype, self.shape = name, dtype, shape


class ILayer:
    def __init__(self, name, kind, op, inputs, outputs):
        self.name, self.type, self._op = name, kind, op
        self._inputs, self._outputs = inputs, outputs
        self.precision, self.output_types = None, {}

    num_inputs = property(lambda self: len(self._inputs))
    num_outputs = property(lambda self: len(self._outputs))

    def get_input(self, i):
        return self._inputs[i]

    def get_output(self, i):
        return self._outputs[i]

    def set_output_type(self, i, dtype):
        self.output_types[i] = dtype


class IUnaryLayer(ILayer):
    op = property(lambda self: self._op)


KINDS = {"Sin": (LayerType.UNARY, UnaryOperation.SIN), "Cos": (LayerType.UNARY, UnaryOperation.COS),
         "Neg": (LayerType.UNARY, UnaryOperation.OTHER), "MatMul": (LayerType.MATRIX_MULTIPLY, None),
         "Gemm": (LayerType.MATRIX_MULTIPLY, None), "Shape": (LayerType.SHAPE, None),
         "Constant": (LayerType.CONSTANT, None), "Mul": (LayerType.ELEMENTWISE, None),
         "Add": (LayerType.ELEMENTWISE, None), "Sub": (LayerType.ELEMENTWISE, None), "Div": (LayerType.ELEMENTWISE, None)}


def _dims(value_info) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim]


class Network:
    def __init__(self):
        self.layers, self.inputs, self.outputs = [], [], []

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))

    def get_layer(self, i):
        return self.layers[i]

    def get_input(self, i):
        return self.inputs[i]


class OnnxParser:
    def __init__(self, network, logger):
        self.network = network

    num_errors = 0

    def parse(self, data: bytes) -> bool:
        graph = onnx.load_from_string(data).graph
        net = self.network
        tensors = {}
        for value in graph.input:
            tensors[value.name] = Tensor(value.name, "float32", tuple(_dims(value)))
            net.inputs.append(tensors[value.name])
        net.outputs = [(value.name, _dims(value)) for value in graph.output]
        for node in graph.node:
            kind, op = KINDS.get(node.op_type, (LayerType.OTHER, None))
            inputs = [tensors.setdefault(n, Tensor(n)) for n in node.input if n]
            outputs = [tensors.setdefault(n, Tensor(n, "int32" if kind == LayerType.SHAPE else "float32"))
                       for n in node.output]
            net.layers.append(ILayer(f"{node.op_type}:{node.name}", kind, op, inputs, outputs))
        return True


class TimingCache:
    def __init__(self, data: bytes):
        self.data = data

    def serialize(self):
        return self.data + b"+"


class Config:
    def __init__(self):
        self.flags, self.pool, self.profiles, self.timing = set(), {}, [], None

    def set_flag(self, flag):
        self.flags.add(flag)

    def set_memory_pool_limit(self, pool, size):
        self.pool[pool] = size

    def create_timing_cache(self, data):
        return TimingCache(bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        self.timing = cache
        return True

    def get_timing_cache(self):
        return self.timing

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)


class Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, low, opt, high):
        self.shapes[name] = (tuple(low), tuple(opt), tuple(high))


class Builder:
    def __init__(self, logger):
        pass

    def create_network(self, flags):
        return Network()

    def create_builder_config(self):
        return Config()

    def create_optimization_profile(self):
        return Profile()

    def build_serialized_network(self, network, config):
        STATE["builds"].append({"network": network, "config": config})
        dtype = "float16" if BuilderFlag.FP16 in config.flags else "float32"
        profile = config.profiles[0].shapes
        spec = {"inputs": {t.name: list(t.shape) for t in network.inputs}, "outputs": dict(network.outputs),
                "profiles": {k: [list(s) for s in v] for k, v in profile.items()}, "dtype": dtype}
        return b"PLAN" + json.dumps(spec).encode()


class Logger:
    WARNING = "warning"

    def __init__(self, level):
        STATE["loggers"] += 1


class Runtime:
    def __init__(self, logger):
        pass

    def deserialize_cuda_engine(self, data):
        return Engine(json.loads(data[4:])) if data.startswith(b"PLAN") else None


class Engine:
    def __init__(self, spec):
        self.spec = spec
        self.names = list(spec["inputs"]) + list(spec["outputs"])

    num_io_tensors = property(lambda self: len(self.names))

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name in self.spec["inputs"] else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name):
        return list(self.spec["inputs"].get(name) or self.spec["outputs"][name])

    def get_tensor_dtype(self, name):
        return self.spec["dtype"]

    def get_tensor_profile_shape(self, name, profile):
        return [tuple(s) for s in self.spec["profiles"][name]]

    def create_execution_context(self):
        return Context(self)


class Context:
    def __init__(self, engine):
        self.engine, self.shapes, self.addresses = engine, {}, {}

    def set_input_shape(self, name, shape):
        low, _, high = self.engine.get_tensor_profile_shape(name, 0)
        if len(shape) != len(low) or any(s < lo or s > hi for s, lo, hi in zip(shape, low, high)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self.engine.spec["inputs"]:
            return self.shapes[name]
        pixels = self.shapes.get("uv", (1, -1))[1]
        return tuple(pixels if d == -1 else d for d in self.engine.spec["outputs"][name])

    def set_tensor_address(self, name, address):
        self.addresses[name] = address

    def execute_async_v3(self, stream):
        dtype = np.dtype(self.engine.spec["dtype"])
        total = sum(float(_view(self.addresses[n], int(np.prod(s)), dtype).astype(np.float64).sum())
                    for n, s in self.shapes.items())
        for name in self.engine.spec["outputs"]:
            shape = self.get_tensor_shape(name)
            _view(self.addresses[name], int(np.prod(shape)), dtype)[:] = total
        STATE["executions"] += 1
        return True


def _view(address, count, dtype):
    return np.frombuffer((ctypes.c_byte * (count * dtype.itemsize)).from_address(address), dtype=dtype)


STATE: dict = {}


def make_tensorrt(version: str = "10.3.0") -> types.ModuleType:
    """A fresh fake `tensorrt` module (and reset counters)."""
    STATE.update(builds=[], loggers=0, executions=0)
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    for obj in (LayerType, UnaryOperation, TensorIOMode, BuilderFlag, MemoryPoolType, IUnaryLayer, Logger, Runtime,
                Builder, OnnxParser):
        setattr(module, obj.__name__, obj)
    module.float32, module.float16 = "float32", "float16"
    module.nptype = np.dtype
    return module


class FakeCuda:
    """CudaRuntime's interface over host memory; counts host→device copies."""

    def __init__(self, compute_capability="8.7", sm_count=16):
        self.info = DeviceInfo("Orin", compute_capability, sm_count, 12060, 12060)
        self.buffers, self.uploads, self.freed = {}, [], 0

    def device_info(self):
        return self.info

    def malloc(self, nbytes):
        buffer = np.zeros(max(nbytes, 1), np.uint8)
        self.buffers[buffer.ctypes.data] = buffer
        return buffer.ctypes.data

    def free(self, ptr):
        self.buffers.pop(ptr)
        self.freed += 1

    def host_array(self, shape, dtype):
        return np.zeros(shape, dtype)

    def free_host(self, array):
        pass

    def stream(self):
        return 7

    def copy_async(self, dst, src, nbytes, kind, stream):
        if kind == 1:
            self.uploads.append(nbytes)
        ctypes.memmove(dst, src, nbytes)

    def synchronize(self, stream):
        pass
