#!/usr/bin/env python3
"""How the segmentation head should start and weigh its classes → benchmarks/results/segmentation_heads.json.

Trains the head on one frozen RUST run with each of `VARIANTS` (random weights or the RGB
decoder's; plain cross-entropy or class weights ∝ frequency^-0.5), the same steps and pixels,
and scores each on the same held-out right halves beside the majority-class baseline. Each
variant works in its own directory (the run's config and a link to its checkpoints), so the
run's own head is never touched; a variant whose head already scored at this step count is
read back (same model step, head steps and settings), so a cut-short comparison resumes. Usage:
    python benchmarks/segmentation_heads.py --run runs/table1/dome_learn_panorama/dome_rust [--steps 1000] [--variants …]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results  # noqa: E402

from rust_perception.model.heads import HeadConfig  # noqa: E402
from rust_perception.training.heads import HEADS_DIR, train_head  # noqa: E402
from rust_perception.training.trainer import CONFIG_FILE, load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: (from_decoder, balance)
    "scratch": (False, 0.0),
    "from_decoder": (True, 0.0),
    "balanced": (False, 0.5),
    "from_decoder_balanced": (True, 0.5),
}


def variant_dir(work: Path, run: Path, name: str) -> Path:
    """WORK/<name>: the run's config and its checkpoints (linked), heads of its own."""
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / CONFIG_FILE, out / CONFIG_FILE)
    link = out / "checkpoints"
    if not link.exists():
        link.symlink_to((run / "checkpoints").resolve(), target_is_directory=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "segmentation_heads")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    results = Results("segmentation_heads.json", run=str(args.run), steps=args.steps,
                      default={"from_decoder": HeadConfig.from_decoder, "balance": HeadConfig.balance})
    base_step = load_model(args.run)[2]
    for name in args.variants:
        from_decoder, balance = VARIANTS[name]
        run = variant_dir(args.work, args.run, name)
        scored = run / HEADS_DIR / "segmentation.json"
        metrics = json.loads(scored.read_text()) if scored.is_file() else None
        wanted = {"from_decoder": from_decoder, "balance": balance}
        if not (metrics and metrics.get("base_step") == base_step and metrics["steps"] == args.steps
                and all(metrics["config"].get(k) == v for k, v in wanted.items())):
            print(f"training the {name} segmentation head ({args.steps} steps)", flush=True)
            metrics = train_head(run, "segmentation", steps=args.steps, **wanted)
        results.add(variant=name, **wanted, **{k: metrics[k] for k in
                    ("steps", "scenes", "miou", "pixel_accuracy", "iou", "majority_class_miou",
                     "majority_class_pixel_accuracy")})
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
