#!/usr/bin/env python3
"""Held-out PSNR over training steps → benchmarks/results/learning_curve_<variant>.json (+ a PNG
of every curve measured so far). Tells how long a budget must be before models leave the early
"mean image" plateau — the question that decides Table 1's budget on CPUs.

Usage: python benchmarks/learning_curve.py --variant rust --steps 1200 [--threads 1] [--lr 5e-4]
(run one per variant side by side with --threads 1 to share 2 cores evenly).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Results  # noqa: E402

from rust_perception.config import load_config  # noqa: E402
from rust_perception.data.generate import generate_dataset  # noqa: E402
from rust_perception.data.synthetic import SyntheticConfig  # noqa: E402
from rust_perception.training.config import load_train_config  # noqa: E402
from rust_perception.training.trainer import METRICS_FILE, Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rust_perception.io import atomic_write

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for path in sorted(RESULTS.glob("learning_curve_*.json")):
        d = json.loads(path.read_text())
        points = d["results"]
        if points:
            ax.plot([p["step"] for p in points], [p["psnr"] for p in points], marker="o", ms=3,
                    label=f"{d['variant']} {Path(d.get('data', 'data_dome')).stem} {d.get('size', 64)}px {Path(d['model']).stem} (lr {d['lr']}, batch {d['batch_size']})")
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out PSNR (dB), right halves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(RESULTS / "learning_curve.png") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=("rust", "srt", "upsrt"), default="rust")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-scenes", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--data", default="config/data_dome.yaml", help="SyntheticConfig YAML of the dome data")
    parser.add_argument("--size", type=int, default=64, help="image size (overrides the data YAML's)")
    parser.add_argument("--model", default="config/model_cpu.yaml", help="model YAML (relative to the repository)")
    parser.add_argument("--rays", type=int, default=512, help="target pixels per target view and step")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "learning_curve")
    args = parser.parse_args()
    data_cfg = load_config(SyntheticConfig, ROOT / args.data, [f"size={args.size}"])
    default = (args.data, args.size, args.model) == ("config/data_dome.yaml", 64, "config/model_cpu.yaml")
    data_name = Path(args.data).stem
    data = args.work / (data_name if args.size == 64 else f"{data_name}_{args.size}px")
    generate_dataset(data_cfg, data, progress=False)
    tag = args.variant if default else f"{args.variant}_{data_name}_{args.size}px_{Path(args.model).stem}"
    run = args.work / tag
    cfg = load_train_config(ROOT / "config" / "train_dome.yaml", [
        f"dataset={data}", f"model={ROOT / args.model}", f"model.image_size={args.size}",
        f"rays_per_target={args.rays}", f"steps={args.steps}", f"batch_size={args.batch}", f"lr={args.lr}",
        f"model.variant={args.variant}", f"eval_every={args.eval_every}", f"eval_scenes={args.eval_scenes}",
        f"checkpoint_every={args.eval_every}", f"threads={args.threads}", "workers=0"])
    results = Results(f"learning_curve_{tag}.json", variant=args.variant, lr=args.lr, size=args.size,
                      batch_size=args.batch, steps=args.steps, rays_per_target=cfg.rays_per_target,
                      eval_scenes=args.eval_scenes, model=args.model, data=args.data)

    class Recording(Trainer):
        def evaluate(self, scenes=None):
            metrics = super().evaluate(scenes)
            results.add(step=self.step, psnr=round(metrics["psnr"], 3), ssim=round(metrics["ssim"], 4))
            plot()
            return metrics

    Recording(cfg, run, progress=False).train()
    train = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    results.set(train_psnr=[{"step": r["step"], "psnr": round(r["psnr"], 3)} for r in train if "loss" in r])
    plot()
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
