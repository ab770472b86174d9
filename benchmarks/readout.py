#!/usr/bin/env python3
"""What a trained RUST run learned (paper §4.2–4.3) → benchmarks/results/readout_<name>.json and
PNGs: latent-pose PCA and correlations (+ scatter, traversals), the EPE head (relative position,
and rotation on rig data), the segmentation head (mIoU, overlay figure). Steps whose outputs
already exist in the run are reused, so a cut-short run resumes.

Usage: python benchmarks/readout.py --run runs/table1/dome_learn_panorama/dome_rust --name dome [--head-steps 600]
       [--data DATASET_WITH_500_TEST_SCENES] [--latent-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Results  # noqa: E402

from rust_perception.training.checkpoint import latest_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def step(args: list[str], output: Path) -> None:
    if not output.is_file():
        subprocess.run([sys.executable, str(ROOT / "trainer" / args[0]), *args[1:]], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--name", required=True, help="suffix of the result files")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--data", type=Path, help="dataset whose test split the latent analysis uses (default: the run's; "
                        "the same generator settings with a larger test split give more distinct held-out scenes)")
    parser.add_argument("--head-steps", type=int, default=600)
    parser.add_argument("--latent-only", action="store_true",
                        help="rerun the latent analysis (even where the run holds one) and keep the heads' results of "
                        "the existing readout_<name>.json, which must be of this run at the same step (--head-steps "
                        "is not used)")
    args = parser.parse_args()
    run = args.run
    data = ["--data", str(args.data)] if args.data else []
    previous = RESULTS / f"readout_{args.name}.json"
    old = json.loads(previous.read_text()) if args.latent_only and previous.is_file() else {}
    if args.latent_only:
        if old.get("run") != str(run):
            parser.error(f"--latent-only keeps the heads of {previous.name}, which must hold the run {run}")
        head_step = old["epe"].get("base_step", old["latent"]["step"])  # heads record their model's step since 3816f87
        newest = latest_checkpoint(run / "checkpoints")
        if newest is None or newest["step"] != head_step:
            parser.error(f"the heads of {previous.name} read the model at step {head_step}, the run is at "
                         f"{None if newest is None else newest['step']}")
        (run / "latent" / "results.json").unlink(missing_ok=True)  # measure it here, now
    step(["analyze_latent.py", "--run", str(run), "--samples", str(args.samples), *data], run / "latent" / "results.json")
    latent = json.loads((run / "latent" / "results.json").read_text())
    figures = {"scatter": run / "latent" / "scatter.png", "traversal": run / "latent" / "traversal.png"}
    if args.latent_only:
        heads = {h: old[h] for h in ("epe", "segmentation")}
        kept = {"heads_machine": old.get("heads_machine", old.get("machine"))}  # where the kept heads were measured
    else:
        kept = {}
        for head in ("epe", "segmentation"):
            step(["train_heads.py", "--run", str(run), "--head", head, "--steps", str(args.head_steps)],
                 run / "heads" / f"{head}.json")
        heads = {h: json.loads((run / "heads" / f"{h}.json").read_text()) for h in ("epe", "segmentation")}
        figures["segmentation"] = run / "heads" / "segmentation.png"
    if latent.get("yaw_turn_reference"):  # only where one latent holds its own yaw (analyze_latent)
        figures["yaw_turn"] = run / "latent" / "yaw_turn.png"
    copied = {}
    for key, path in figures.items():
        target = RESULTS / f"readout_{args.name}_{key}.png"
        shutil.copyfile(path, target)
        copied[key] = target.name
    Results(f"readout_{args.name}.json", run=str(run), latent={k: v for k, v in latent.items() if k != "figures"},
            epe=heads["epe"], segmentation={k: v for k, v in heads["segmentation"].items() if k != "figure"},
            figures={**({"segmentation": old["figures"]["segmentation"]} if args.latent_only else {}), **copied},
            **kept).save()
    print(f"wrote {RESULTS / f'readout_{args.name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
