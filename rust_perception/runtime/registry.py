"""The backends behind one name each, imported only when chosen: choosing onnxruntime or
tensorrt never imports torch. `create_engine(model_dir, backend="auto")` loads and verifies the
model directory once and picks the best backend available (TensorRT on an NVIDIA GPU, else ONNX
Runtime, else torch), logging why."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

from ..errors import UserError
from .cuda import CudaRuntime
from .engine import Engine
from .model_dir import ModelDirectory

log = logging.getLogger(__name__)
# name → (module in this package, engine class), best first
BACKENDS = {"tensorrt": ("tensorrt_backend", "TensorRTEngine"),
            "onnxruntime": ("onnxruntime_backend", "OnnxRuntimeEngine"),
            "torch": ("torch_backend", "TorchEngine")}
CHOICES = ("auto", *BACKENDS)


def engine_class(backend: str) -> type[Engine]:
    module, cls = BACKENDS[backend]
    return getattr(importlib.import_module(f".{module}", __package__), cls)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _cuda_devices() -> int:
    try:
        return CudaRuntime.load().device_count()
    except UserError:
        return 0


def available_backends() -> list[str]:
    """Backends that can run here, best first."""
    found = []
    if _importable("tensorrt") and _cuda_devices() > 0:
        found.append("tensorrt")
    found += [name for name in ("onnxruntime", "torch") if _importable(name)]
    return found


def create_engine(model_dir: str | Path | ModelDirectory, backend: str = "auto", threads: int = 0, **options) -> Engine:
    """The engine for `backend` ("auto": the best available, logged). `threads` applies to the
    CPU backends; `options` go to the backend's constructor."""
    if backend not in CHOICES:
        raise UserError(f"backend={backend!r} is not allowed (choose from {', '.join(CHOICES)})")
    available = available_backends()
    if not available:
        raise UserError("no inference backend is installed: install onnxruntime (or onnxruntime-gpu), "
                        "TensorRT 10 or torch")
    if backend == "auto":
        backend = available[0]
        log.info("backend auto → %s (available here: %s)", backend, ", ".join(available))
    elif backend not in available:
        raise UserError(f"backend {backend!r} is not available here (available: {', '.join(available)})")
    model = model_dir if isinstance(model_dir, ModelDirectory) else ModelDirectory.load(model_dir)
    if backend != "tensorrt":
        options["threads"] = threads
    return engine_class(backend)(model, **options)
