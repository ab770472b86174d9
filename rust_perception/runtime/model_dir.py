"""The model-directory contract: what `rust_export` writes and every engine, `prebuild` and the node
read. `ModelDirectory.load` parses and verifies metadata.json and the graph checksums once;
everything else reads its typed fields. Needs neither torch nor any inference library."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import UserError
from ..io import sha256_file

FORMAT = 2  # 2: view_pose; render/segment take both halves' latents (1, 2, D); crossed_halves
METADATA = "metadata.json"
WEIGHTS = "weights.pt"
# uv pixel counts one render/segment call may take: the exported graphs allow up to PIXELS_MAX;
# the TensorRT profiles (both TensorRT backends) cover PIXEL_PROFILE = (min, opt, max)
PIXELS_MAX = 1 << 20
PIXEL_PROFILE = (1, 4096, 16384)


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the directory: its file, input and output names and checksum."""

    name: str
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    sha256: str


@dataclass(frozen=True)
class ModelDirectory:
    """A verified model directory. `meta` is the raw metadata (read-only), kept for callers
    that show or forward it; code reads the typed fields."""

    path: Path
    meta: Mapping[str, Any]
    image_size: int
    num_inputs: int
    latent_dim: int
    dim: int
    tokens: int
    segmentation: bool
    epe: bool
    crossed_halves: bool  # whole frames render each half from the other half's latent
    classes: tuple[Mapping[str, Any], ...]
    latent_space: Mapping[str, Any] | None
    graphs: Mapping[str, GraphSpec]
    weights_sha256: str | None
    fingerprint: str  # sha256 of metadata.json: names this export (cache directories)

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> ModelDirectory:
        """Parse metadata.json; with `verify`, every graph file must exist and match its checksum."""
        path = Path(path)
        file = path / METADATA
        if not file.is_file():
            raise UserError(f"{path} is not an exported model directory: {METADATA} is missing "
                            f"(create it with: rust_export --run RUN --out {path})")
        raw = file.read_bytes()
        try:
            meta = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{file} is corrupt ({exc})") from None
        found = meta.get("format") if isinstance(meta, dict) else None
        if found != FORMAT:
            raise UserError(f"{file} is not format {FORMAT} model metadata (found format {found}); "
                            f"export the run again: rust_export --run RUN --out {path}")
        try:
            graphs = {name: GraphSpec(name, g["file"], tuple(g["inputs"]), tuple(g["outputs"]), g["sha256"])
                      for name, g in meta["graphs"].items()}
            model = cls(path=path, meta=MappingProxyType(meta), image_size=int(meta["image_size"]),
                        num_inputs=int(meta["num_inputs"]), latent_dim=int(meta["latent_dim"]), dim=int(meta["dim"]),
                        tokens=int(meta["tokens"]), segmentation=bool(meta["segmentation"]), epe=bool(meta["epe"]),
                        crossed_halves=bool(meta["crossed_halves"]),
                        classes=tuple(meta.get("classes") or ()), latent_space=meta.get("latent_space"),
                        graphs=MappingProxyType(graphs), weights_sha256=meta.get("weights_sha256"),
                        fingerprint=hashlib.sha256(raw).hexdigest())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{file} lacks or mistypes a field ({type(exc).__name__}: {exc}); "
                            f"re-export the model: rust_export --run RUN --out {path}") from None
        if verify:
            for spec in graphs.values():
                graph = path / spec.file
                if not graph.is_file():
                    raise UserError(f"model file {graph} is missing")
                if sha256_file(graph) != spec.sha256:
                    raise UserError(f"model file {graph} is corrupt or does not belong to {file} (checksum differs)")
        return model

    def graph_path(self, name: str) -> Path:
        return self.path / self.graphs[name].file

    def graph_inputs(self) -> dict[str, dict[str, list[int]]]:
        """Input shapes of every graph implied by the metadata (-1 = dynamic pixel count)."""
        n, s, d, t, dim = self.num_inputs, self.image_size, self.latent_dim, self.tokens, self.dim
        pixels = {"slsr": [1, t, dim], "latents": [1, 2, d], "uv": [1, -1, 2]}
        shapes = {"encoder": {"images": [1, n, 3, s, s]},
                  "pose": {"half_image": [1, 3, s, s // 2], "slsr": [1, t, dim]},
                  "view_pose": {"image": [1, 3, s, s], "slsr": [1, t, dim]},
                  "render": pixels, "segment": pixels,
                  "epe": {"slsr": [1, t, dim], "latent_1": [1, d], "latent_2": [1, d]}}
        return {k: v for k, v in shapes.items() if k in self.graphs}

    def check_graph(self, name: str, source: Path, inputs: dict[str, list]) -> None:
        """Refuse a graph (ONNX file or TensorRT plan) whose inputs disagree with the metadata."""
        expected = self.graph_inputs()[name]
        if list(inputs) != list(expected):
            raise UserError(f"model file {source} has inputs {list(inputs)}; {METADATA} expects {list(expected)}")
        for key, shape in expected.items():
            got = [d if isinstance(d, int) else -1 for d in inputs[key]]
            if len(got) != len(shape) or any(e != -1 and g != -1 and e != g for g, e in zip(got, shape)):
                raise UserError(f"model file {source}: input {key!r} has shape {got}, but {METADATA} implies {shape}")

    def verify_weights(self) -> Path:
        """weights.pt (the torch backend's file), checked against the metadata."""
        path = self.path / WEIGHTS
        if not path.is_file():
            raise UserError(f"model file {path} is missing")
        if sha256_file(path) != self.weights_sha256:
            raise UserError(f"model file {path} is corrupt or does not belong to {self.path / METADATA}")
        return path


def exported_from(path: Path) -> str | None:
    """The training-config sha256 of the model exported into `path`, if it holds one (no checks)."""
    try:
        return json.loads((Path(path) / METADATA).read_text()).get("training_config_sha256")
    except (OSError, ValueError, AttributeError):
        return None
