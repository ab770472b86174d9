#!/usr/bin/env python3
"""Training throughput → benchmarks/results/train_speed.json: steps/s and peak memory (RSS) of
RUST and SRT at the cpu config, fp32 vs bf16 autocast, each in a fresh process so peaks are its
own. On CPUs without bf16 hardware (AVX2-only) bf16 is emulated and far slower: the ratio says
which way `precision: auto` should go on this machine.

Usage: python benchmarks/bench_train.py [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def one(variant: str, precision: str, steps: int, dataset: str) -> dict:
    """Runs inside a fresh process: time `steps` training steps (after a warm-up step if > 1)."""
    from rust_perception.model.scene_model import count_parameters
    from rust_perception.training.config import load_train_config
    from rust_perception.training.trainer import Trainer

    cfg = load_train_config(ROOT / "config" / "train_dome.yaml", [
        f"dataset={dataset}", f"model.variant={variant}", f"precision={precision}", "workers=0", "eval_scenes=0"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        batch = next(iter(trainer._loader()))
        if steps > 1:  # warm-up (skipped for the single step of emulated bf16, which takes minutes)
            trainer.train_step(batch)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch)
        seconds = (time.perf_counter() - start) / steps
    return {"variant": variant, "precision": precision, "seconds_per_step": round(seconds, 3),
            "steps_per_s": round(1 / seconds, 3), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "parameters": count_parameters(trainer.model), "batch_size": cfg.batch_size,
            "rays_per_step": cfg.batch_size * cfg.num_targets * cfg.rays_per_target}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--dataset", default=str(ROOT / "runs" / "bench_train_data"))
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(*args.child, args.steps, args.dataset)))
        return 0
    from rust_perception.data.generate import generate_dataset
    from rust_perception.data.synthetic import SyntheticConfig
    from rust_perception.precision import bf16_is_fast

    generate_dataset(SyntheticConfig(kind="dome", scenes=40, views=10), args.dataset, progress=False)
    results = Results("train_speed.json", config="config/train_dome.yaml + config/model_cpu.yaml",
                      bf16_probe_says_fast=bf16_is_fast("cpu"))
    for variant in ("rust", "srt"):
        for precision in ("fp32", "bf16"):
            steps = args.steps if precision == "fp32" or bf16_is_fast("cpu") else 1  # emulated bf16 is very slow
            out = subprocess.run([sys.executable, __file__, "--child", variant, precision, "--steps", str(steps),
                                  "--dataset", args.dataset], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results.add(**row)
            print(row, flush=True)
    rows = {(r["variant"], r["precision"]): r for r in results.data["results"]}
    results.set(bf16_speedup={v: round(rows[(v, "fp32")]["seconds_per_step"] / rows[(v, "bf16")]["seconds_per_step"], 3)
                              for v in ("rust", "srt")})
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
