"""Torch backend: runs the graph modules (`model/graphs.py`) on weights.pt, fp32 or bf16
autocast — the reference the exported graphs are compared against. The only backend that needs torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.graphs import build_torch_graphs
from .engine import Engine
from .model_dir import ModelDirectory


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model: ModelDirectory | str | Path, bf16: bool = False, threads: int = 0):
        super().__init__(model)
        if threads:
            torch.set_num_threads(threads)
        weights = torch.load(self.model.verify_weights(), map_location="cpu", weights_only=True)
        self.graphs = build_torch_graphs(weights)
        self.bf16 = bf16

    def _run(self, graph, feeds):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.graphs[graph](*[torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
        out = out if isinstance(out, tuple) else (out,)
        return [o.float().numpy() for o in out]
