"""One inference interface over three backends.

`Engine` does the checking and the image/pixel bookkeeping once; a backend only implements
`_run(graph, feeds) -> outputs` over the graphs of a model directory (`export.py`):
- `TorchEngine`: the graph modules in torch (weights.pt), fp32 or bf16 autocast;
- `OnnxRuntimeEngine`: ONNX Runtime with the best execution providers present
  (TensorRT → CUDA → CPU);
- `TensorRTEngine` (`tensorrt_engine.py`): serialized TensorRT engines built from the ONNX files.
`create_engine(model_dir, backend="auto")` picks the best available and logs why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..io import sha256_file
from .export import FORMAT, METADATA, WEIGHTS, graph_inputs

log = logging.getLogger(__name__)
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")


class EngineInputError(UserError):
    """An input of the wrong shape or type; the message names the expected shape."""


def load_metadata(model_dir: str | Path, check_files: bool = True) -> dict[str, Any]:
    """metadata.json of a model directory, checked against the files it lists."""
    model_dir = Path(model_dir)
    path = model_dir / METADATA
    if not path.is_file():
        raise UserError(f"{model_dir} is not an exported model directory: {METADATA} is missing "
                        f"(create it with trainer/export.py --run RUN --out {model_dir})")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is corrupt ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not format {FORMAT} model metadata")
    if check_files:
        files = {name: g["file"] for name, g in meta["graphs"].items()}
        for name, file in files.items():
            graph = model_dir / file
            if not graph.is_file():
                raise UserError(f"model file {graph} is missing")
            if sha256_file(graph) != meta["graphs"][name]["sha256"]:
                raise UserError(f"model file {graph} is corrupt or does not belong to {path} (checksum differs)")
    return meta


class Engine:
    """Single-scene inference. Images are (H, W, 3) uint8 RGB or (3, H, W) float in [0, 1]."""

    name = "base"

    def __init__(self, model_dir: str | Path):
        self.model_dir = Path(model_dir)
        self.meta = load_metadata(self.model_dir)
        self.size = int(self.meta["image_size"])

    # ------------------------------------------------------------------ backend hook
    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    # ------------------------------------------------------------------ input checks
    def _image(self, image: np.ndarray, what: str) -> np.ndarray:
        """→ (3, H, W) float32 in [0, 1]."""
        a = np.asarray(image)
        s = self.size
        if a.shape == (s, s, 3) and a.dtype == np.uint8:
            return np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32) / 255.0
        if a.shape == (3, s, s) and a.dtype.kind == "f":
            if not np.isfinite(a).all():
                raise EngineInputError(f"{what} has non-finite values (NaN or inf); expected floats in [0, 1]")
            if a.min() < 0 or a.max() > 1:
                raise EngineInputError(f"{what} has values outside [0, 1] ({a.min():g} to {a.max():g}); "
                                       "float images are RGB in [0, 1] (or pass uint8)")
            return a.astype(np.float32)
        raise EngineInputError(f"{what} has shape {a.shape} and dtype {a.dtype}; expected ({s}, {s}, 3) uint8 RGB "
                               f"or (3, {s}, {s}) float in [0, 1] (the model's image size is {s})")

    def _slsr(self, slsr: np.ndarray) -> np.ndarray:
        expected = (1, self.meta["tokens"], self.meta["dim"])
        a = np.asarray(slsr, np.float32).reshape((1, *np.shape(slsr))) if np.ndim(slsr) == 2 else np.asarray(slsr, np.float32)
        if a.shape != expected:
            raise EngineInputError(f"slsr has shape {np.shape(slsr)}; expected {expected[1:]} from encode()")
        return a

    def _latent(self, latent: np.ndarray, what: str = "latent") -> np.ndarray:
        a = np.asarray(latent, np.float32).reshape(-1)
        if a.shape != (self.meta["latent_dim"],):
            raise EngineInputError(f"{what} has shape {np.shape(latent)}; expected ({self.meta['latent_dim']},)")
        return a[None]

    def pixel_grid(self, size: int | None = None) -> np.ndarray:
        """(size², 2) pixel coordinates of a size×size render in model-pixel units (size may
        differ from the model's: the decoder takes continuous pixel positions)."""
        size = size or self.size
        c = (np.arange(size, dtype=np.float32) + 0.5) * (self.size / size) - 0.5
        v, u = np.meshgrid(c, c, indexing="ij")
        return np.stack([u.ravel(), v.ravel()], -1)

    # ------------------------------------------------------------------ the interface
    def encode(self, images) -> np.ndarray:
        """num_inputs views (first = reference) → SLSR (T, dim)."""
        n = self.meta["num_inputs"]
        if len(images) != n:
            raise EngineInputError(f"encode got {len(images)} views; the model takes exactly {n} "
                                   f"(each ({self.size}, {self.size}, 3) uint8)")
        stack = np.stack([self._image(img, f"view {i}") for i, img in enumerate(images)])[None]
        return self._run("encoder", {"images": stack})[0][0]

    def estimate_pose(self, slsr: np.ndarray, image, half: str = "left") -> np.ndarray:
        """Latent pose (D,) of `image` from its left (default) or right half."""
        if half not in ("left", "right"):
            raise EngineInputError(f"half={half!r}; expected 'left' or 'right'")
        img = self._image(image, "image")
        w = self.size // 2
        part = img[:, :, :w] if half == "left" else img[:, :, w:]
        return self._run("pose", {"half_image": np.ascontiguousarray(part)[None], "slsr": self._slsr(slsr)})[0][0]

    def _render(self, slsr, latent, uv, chunk: int, graph: str = "render") -> np.ndarray:
        uv = np.asarray(uv, np.float32)
        if uv.ndim != 2 or uv.shape[1] != 2 or len(uv) == 0:
            raise EngineInputError(f"uv has shape {uv.shape}; expected (R ≥ 1, 2) pixel coordinates")
        feeds = {"slsr": self._slsr(slsr), "latent": self._latent(latent)}
        return np.concatenate([self._run(graph, {**feeds, "uv": uv[s : s + chunk][None]})[0][0]
                               for s in range(0, len(uv), chunk)])

    def render(self, slsr: np.ndarray, latent: np.ndarray, uv: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
        """RGB (R, 3) in [0, 1] at pixel coordinates uv (default: every pixel, row-major)."""
        return self._render(slsr, latent, self.pixel_grid() if uv is None else uv, chunk)

    def render_image(self, slsr: np.ndarray, latent: np.ndarray, size: int | None = None, chunk: int = 4096) -> np.ndarray:
        """A size×size (default: model size) view as (H, W, 3) uint8."""
        size = size or self.size
        rgb = self.render(slsr, latent, self.pixel_grid(size), chunk)
        return (rgb.reshape(size, size, 3) * 255.0 + 0.5).astype(np.uint8)

    def segment(self, slsr: np.ndarray, latent: np.ndarray, size: int | None = None, chunk: int = 4096) -> np.ndarray:
        """Class ids (H, W) uint8 of a size×size view (needs a segmentation head)."""
        if not self.meta["segmentation"]:
            raise UserError(f"{self.model_dir} has no segmentation head (train_heads.py --head segmentation, then export)")
        size = size or self.size
        logits = self._render(slsr, latent, self.pixel_grid(size), chunk, graph="segment")
        return logits.argmax(-1).reshape(size, size).astype(np.uint8)

    def relative_pose(self, slsr: np.ndarray, latent_1: np.ndarray, latent_2: np.ndarray) -> dict[str, np.ndarray | None]:
        """View 2's pose in view 1's optical frame: position (3,) metres and rotation (3, 3) or None."""
        if not self.meta["epe"]:
            raise UserError(f"{self.model_dir} has no EPE head (train_heads.py --head epe, then export)")
        out = self._run("epe", {"slsr": self._slsr(slsr), "latent_1": self._latent(latent_1, "latent_1"),
                                "latent_2": self._latent(latent_2, "latent_2")})[0][0]
        rotation = None
        if out.shape[0] == 9:
            a = out[3:6] / np.linalg.norm(out[3:6])
            b = out[6:9] - (a @ out[6:9]) * a
            b /= np.linalg.norm(b)
            rotation = np.stack([a, b, np.cross(a, b)], axis=-1)
        return {"position": out[:3], "rotation": rotation}


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model_dir: str | Path, bf16: bool = False, threads: int = 0):
        super().__init__(model_dir)
        import torch

        from .export import build_torch_graphs

        if threads:
            torch.set_num_threads(threads)
        path = self.model_dir / WEIGHTS
        if not path.is_file():
            raise UserError(f"model file {path} is missing")
        if sha256_file(path) != self.meta.get("weights_sha256"):
            raise UserError(f"model file {path} is corrupt or does not belong to {self.model_dir / METADATA}")
        weights = torch.load(path, map_location="cpu", weights_only=True)
        self.graphs = build_torch_graphs(weights)
        self.bf16 = bf16
        self._torch = torch

    def _run(self, graph, feeds):
        torch = self._torch
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.graphs[graph](*[torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
        out = out if isinstance(out, tuple) else (out,)
        return [o.float().numpy() for o in out]


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")

    def __init__(self, model_dir: str | Path, threads: int = 0, optimization: str = "all"):
        super().__init__(model_dir)
        import onnxruntime as ort

        available = ort.get_available_providers()
        self.providers = [p for p in self.PREFERRED if p in available]
        options = ort.SessionOptions()
        options.graph_optimization_level = {"none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                                            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
        if threads:
            options.intra_op_num_threads = threads
        # no busy-waiting between ops: a robot's CPU is shared with other nodes, and spinning
        # threads collapse throughput as soon as cores are oversubscribed
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {}
        for name, g in self.meta["graphs"].items():
            path = self.model_dir / g["file"]
            try:
                session = ort.InferenceSession(str(path), options, providers=self.providers)
            except Exception as exc:
                raise UserError(f"model file {path} cannot be loaded by ONNX Runtime ({str(exc).splitlines()[0][:200]})") from None
            check_graph_against_metadata(name, path, {i.name: i.shape for i in session.get_inputs()}, self.meta)
            self.sessions[name] = session
        log.info("onnxruntime engine: providers %s", self.providers)

    def _run(self, graph, feeds):
        return self.sessions[graph].run(None, feeds)


def check_graph_against_metadata(name: str, path: Path, inputs: dict[str, list], meta: dict) -> None:
    """A graph whose inputs disagree with the metadata (another model's file) is refused."""
    expected = graph_inputs(meta)[name]
    if list(inputs) != list(expected):
        raise UserError(f"model file {path} has inputs {list(inputs)}; {METADATA} expects {list(expected)}")
    for key, shape in expected.items():
        got = [d if isinstance(d, int) else -1 for d in inputs[key]]
        if len(got) != len(shape) or any(e != -1 and g != -1 and e != g for g, e in zip(got, shape)):
            raise UserError(f"model file {path}: input {key!r} has shape {got}, but {METADATA} implies {shape}")


def available_backends() -> list[str]:
    """Backends that can run here, best first."""
    import importlib.util

    found = []
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda and importlib.util.find_spec("tensorrt") is not None:
        found.append("tensorrt")
    if importlib.util.find_spec("onnxruntime") is not None:
        found.append("onnxruntime")
    found.append("torch")
    return found


def create_engine(model_dir: str | Path, backend: str = "auto", threads: int = 0, **options) -> Engine:
    """The engine for `backend`; "auto" takes the best available (TensorRT on an NVIDIA GPU,
    else ONNX Runtime, else torch) and logs the choice."""
    if backend not in BACKENDS:
        raise UserError(f"backend={backend!r} is not allowed (choose from {', '.join(BACKENDS)})")
    available = available_backends()
    if backend == "auto":
        backend = available[0]
        log.info("backend auto → %s (available here: %s)", backend, ", ".join(available))
    elif backend not in available:
        raise UserError(f"backend {backend!r} is not available here (available: {', '.join(available)})")
    if backend == "tensorrt":
        from .tensorrt_engine import TensorRTEngine

        return TensorRTEngine(model_dir, **options)
    if backend == "onnxruntime":
        return OnnxRuntimeEngine(model_dir, threads=threads, **options)
    return TorchEngine(model_dir, threads=threads, **options)
