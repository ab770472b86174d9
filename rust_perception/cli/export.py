"""`rust_export`: a trained RUST run → a model directory the node and every engine load (ONNX graphs
for encoder, Pose Estimator, renderer [+ segmentation] and EPE, weights.pt, metadata.json),
checked with onnx.checker."""

from __future__ import annotations

import json
from pathlib import Path

from . import ArgumentParser, run

PROG = "rust_export"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run directory of a rust model")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ..training.export import export_model

    meta = export_model(args.run, args.out)
    print(json.dumps({"out": str(args.out), "graphs": sorted(meta["graphs"]), "image_size": meta["image_size"],
                      "segmentation": meta["segmentation"], "epe": meta["epe"],
                      "latent_space": meta["latent_space"] is not None}))
    return 0


def entry() -> int:
    return run(main, prog=PROG)
