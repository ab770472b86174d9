"""Inference, ROS-free and torch-free unless the torch backend is chosen: the model-directory
contract (`model_dir.py`), one `Engine` interface (`engine.py`) over three backends in their own
modules (`torch_backend`, `onnxruntime_backend`, `tensorrt_backend`) behind `registry.py`. The node
only calls `create_engine`. Export, which needs torch, lives with training (`training/export.py`)."""

from .engine import Engine, EngineInputError
from .model_dir import ModelDirectory
from .registry import available_backends, create_engine

__all__ = ["Engine", "EngineInputError", "ModelDirectory", "available_backends", "create_engine"]
