#!/usr/bin/env python3
"""CPU side of the GPU smoke test: a small dome dataset and a tiny RUST model with EPE and
segmentation heads, exported, under runs/gpu_smoke/ (gitignored; pass it to the GPU machine as a
carried path). About a minute on 2 cores; rerunning reuses what is there.

    PYTHONPATH=. python benchmarks/prepare_gpu_smoke.py   # then: bash benchmarks/gpu_smoke.sh
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / "runs" / "gpu_smoke"


def main() -> int:
    from rust_perception.data.generate import generate_dataset
    from rust_perception.data.synthetic import SyntheticConfig
    from rust_perception.training.config import load_train_config
    from rust_perception.training.export import export_model
    from rust_perception.training.heads import train_head
    from rust_perception.training.trainer import Trainer

    data, run, model = WORK / "data", WORK / "run", WORK / "model"
    if not (data / "manifest.json").is_file():
        generate_dataset(SyntheticConfig(kind="dome", scenes=12, views=10, size=32), data, progress=False)
    if not (model / "metadata.json").is_file():
        cfg = load_train_config(ROOT / "config" / "train_dome.yaml",
                                [f"dataset={data}", "model=model_tiny.yaml", "steps=4", "batch_size=2", "eval_every=4",
                                 "eval_scenes=1", "checkpoint_every=4", "workers=0"])
        Trainer(cfg, run, progress=False).train()
        for head in ("epe", "segmentation"):
            train_head(run, head, steps=2, batch_size=1, rays=16, progress=False)
        export_model(run, model)
    print(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
