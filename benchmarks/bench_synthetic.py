#!/usr/bin/env python3
"""Synthetic data generation speed → benchmarks/results/synthetic.json.

Measures end-to-end dataset writing (render + shard files + checksums, all cores) in views/s
for both kinds at 64×64 and 128×128, then the issue's target: 1000 dome scenes × 10 views at
64×64 in under 2 minutes (≥ 100 views/s). Usage: python benchmarks/bench_synthetic.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results  # noqa: E402

from rust_perception.data.generate import generate_dataset  # noqa: E402
from rust_perception.data.synthetic import SyntheticConfig  # noqa: E402


def measure(cfg: SyntheticConfig, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate_dataset(cfg, Path(tmp) / "d", workers=workers, progress=False)
        seconds = time.perf_counter() - start
    views = cfg.scenes * cfg.views
    return {"kind": cfg.kind, "size": cfg.size, "scenes": cfg.scenes, "views_per_scene": cfg.views,
            "workers": workers, "seconds": round(seconds, 2), "views_per_s": round(views / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer scenes, skip the 1000-scene run")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    results = Results("synthetic.json", target={"views_per_s_at_64": 100, "full_run": "1000 scenes x 10 views < 120 s"})
    for kind, views in (("dome", 10), ("street", 18)):
        for size, scenes in ((64, 200), (128, 50)):
            cfg = SyntheticConfig(kind=kind, scenes=max(8, int(scenes * scale)), views=views, size=size)
            row = measure(cfg, workers=0)
            results.add(**row)
            print(row, flush=True)
    if not args.quick:
        cfg = SyntheticConfig(kind="dome", scenes=1000, views=10, size=64)
        row = measure(cfg, workers=0)
        row["meets_target"] = row["seconds"] < 120
        results.set(full_run=row)
        print("full run:", row, flush=True)
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
