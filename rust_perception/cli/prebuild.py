"""`prebuild`: build and cache every TensorRT engine of a model directory ahead of launch (minutes
on a Jetson; a timing cache speeds up later builds), so the node's configure only loads plans.
Needs TensorRT 10 and an NVIDIA GPU; torch is not needed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import ArgumentParser, run

PROG = "prebuild"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", type=Path, help="exported model directory (from `rust_export`)")
    p.add_argument("--fp32", action="store_true", help="build FP32 engines (default: FP16, encoding kept FP32)")
    p.add_argument("--cache", type=Path, help="plan cache directory (default: MODEL_DIR/tensorrt, or the user "
                                              "cache when the model directory is read-only)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ..runtime.model_dir import ModelDirectory
    from ..runtime.tensorrt_backend import TensorRTEngine

    model = ModelDirectory.load(args.model_dir)
    started = time.perf_counter()
    engine = TensorRTEngine(model, fp16=not args.fp32, cache=args.cache)
    print(json.dumps({"cache": str(engine.cache), "plans": {name: plan.name for name, plan in engine.plans.items()},
                      "timing_cache": engine.timing_cache_path().name, "device": engine.device.as_dict(),
                      "tensorrt": engine.trt.__version__, "seconds": round(time.perf_counter() - started, 1)}))
    engine.close()
    return 0


def entry() -> int:
    return run(main, prog=PROG)
