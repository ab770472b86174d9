#!/usr/bin/env python3
"""The paper's Table 1 at CPU scale → benchmarks/results/table1.json + table1.png + figures.

With equal budgets (steps, batch, pixels, widths) trains on dome data: RUST (no poses); SRT with
perfect poses; SRT with noisy input + target poses (σ = 0.1); UpSRT with perfect target poses;
UpSRT with noisy target poses — then RUST, SRT and UpSRT (perfect) on street-rig data, and
evaluates each on the same held-out scenes (PSNR / SSIM on right halves; RUST's Pose Estimator
sees the left halves; posed baselines get the true target poses at evaluation).

Resumable: finished runs are kept in the JSON and skipped, unfinished runs resume from their
checkpoints. Usage: python benchmarks/table1.py [--steps 600] [--batch 8] [--lr 2e-4] [--only dome|street]
[--model config/model_cpu.yaml] [--size 64] [--dome-data config/data_dome.yaml] [--street-data ...]
A different budget starts a fresh table (the JSON records the budget it was measured with).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Results  # noqa: E402

from rust_perception.config import load_config  # noqa: E402
from rust_perception.data.generate import generate_dataset  # noqa: E402
from rust_perception.data.synthetic import SyntheticConfig  # noqa: E402
from rust_perception.model.scene_model import count_parameters  # noqa: E402
from rust_perception.training.config import load_train_config  # noqa: E402
from rust_perception.training.figures import comparison_figure, render_full_targets  # noqa: E402
from rust_perception.training.steps import evaluate_batch, held_out_batches  # noqa: E402
from rust_perception.training.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "dome": [
        ("RUST", "rust", 0.0, 0.0),
        ("SRT perfect", "srt", 0.0, 0.0),
        ("UpSRT perfect", "upsrt", 0.0, 0.0),
        ("SRT noisy", "srt", 0.1, 0.1),
        ("UpSRT noisy", "upsrt", 0.0, 0.1),
    ],
    "street": [("RUST", "rust", 0.0, 0.0), ("SRT perfect", "srt", 0.0, 0.0), ("UpSRT perfect", "upsrt", 0.0, 0.0)],
}
PAPER = {"msn": {"RUST": 23.49, "SRT perfect": 24.40, "UpSRT perfect": 23.03, "SRT noisy": 18.65, "UpSRT noisy": 18.64},
         "street_view": {"RUST": 22.50, "SRT perfect": 22.72, "UpSRT perfect": 21.25}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rays", type=int, default=512, help="target pixels per target view and step")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--eval-scenes", type=int, default=100)
    parser.add_argument("--model", default="config/model_cpu.yaml", help="model YAML (widths), relative to the repository")
    parser.add_argument("--size", type=int, default=64, help="image size of data and model")
    parser.add_argument("--dome-data", default="config/data_dome.yaml", help="SyntheticConfig YAML of the dome data")
    parser.add_argument("--street-data", default="config/data_street.yaml", help="SyntheticConfig YAML of the street data")
    parser.add_argument("--only", choices=("dome", "street"))
    parser.add_argument("--jobs", type=int, default=1, help="models trained side by side (threads split evenly)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "table1", help="datasets and run directories")
    args = parser.parse_args()
    args.work = args.work / f"{Path(args.model).stem}_{args.size}px"  # budgets never share run directories
    budget = {"steps": args.steps, "batch_size": args.batch, "rays_per_target": args.rays, "lr": args.lr,
              "model": args.model, "size": args.size, "eval_scenes": args.eval_scenes,
              "data": {"dome": args.dome_data, "street": args.street_data}}
    results = Results("table1.json", budget=budget, paper_psnr=PAPER)
    previous = RESULTS / "table1.json"
    if previous.is_file():
        import json

        old = json.loads(previous.read_text())
        if old.get("budget") == budget:
            results.data.update({k: v for k, v in old.items() if k in ("dome", "street")})
    jobs = []
    for kind in [args.only] if args.only else ["dome", "street"]:
        data_yaml = getattr(args, f"{kind}_data")
        data_dir = args.work / f"{Path(data_yaml).stem}_{args.size}px"
        generate_dataset(load_config(SyntheticConfig, ROOT / data_yaml, [f"size={args.size}"]), data_dir)
        done = results.data.setdefault(kind, {})
        for name, variant, noise_in, noise_tgt in RUNS[kind]:
            if name in done:
                print(f"{kind} / {name}: done ({done[name]['psnr']:.2f} dB), skipped")
            else:
                jobs.append((kind, name, variant, noise_in, noise_tgt, data_dir))
    threads = max(1, (os.cpu_count() or 2) // args.jobs)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        futures = {pool.submit(train_and_evaluate, args, threads, *job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            kind, name = futures[future][:2]
            row = future.result()
            if row is None:
                print(f"{kind} / {name}: interrupted; rerun the same command to resume")
                continue
            results.data[kind][name] = row
            results.save()
            print(f"{kind} / {name}: {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}", flush=True)
    for kind in [args.only] if args.only else ["dome", "street"]:
        if len(results.data[kind]) == len(RUNS[kind]):
            figure(kind, args, results)
    chart(results)
    print(f"wrote {results.path}")
    return 0


def run_dir(args, kind: str, name: str) -> Path:
    return args.work / f"{kind}_{name.replace(' ', '_').lower()}"


def train_and_evaluate(args, threads: int, kind: str, name: str, variant: str, noise_in: float, noise_tgt: float,
                       data_dir: Path) -> dict | None:
    """One Table 1 cell, in its own process: train (resuming) and evaluate on the held-out scenes."""
    cfg = load_train_config(ROOT / "config" / f"train_{kind}.yaml", [
        f"dataset={data_dir}", f"model={ROOT / args.model}", f"model.image_size={args.size}", f"steps={args.steps}",
        f"batch_size={args.batch}", f"rays_per_target={args.rays}", f"lr={args.lr}", f"model.variant={variant}",
        f"input_pose_noise={noise_in}", f"target_pose_noise={noise_tgt}", f"eval_every={args.steps}", "eval_scenes=16",
        f"checkpoint_every={max(50, args.steps // 6)}", f"warmup_steps={min(200, args.steps // 10)}",
        f"threads={threads}", "workers=0",
    ])
    run = run_dir(args, kind, name)
    trainer = Trainer(cfg, run, progress=False)
    start = time.perf_counter()
    if trainer.train().get("interrupted"):
        return None
    scores = trainer.evaluate(args.eval_scenes, swap_poses=True)  # model + baselines on the same targets
    return {
        "variant": variant, "input_pose_noise": noise_in, "target_pose_noise": noise_tgt,
        **{k: v for k, v in scores.items() if k not in ("scenes", "targets")},
        "ssim": round(scores["ssim"], 4), "eval_targets": scores["targets"],
        "parameters": count_parameters(trainer.model), "train_seconds_this_session": round(time.perf_counter() - start),
        "threads": threads, "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
    }


def figure(kind: str, args, results: Results) -> None:
    """Inputs | target | every model's render, for the first 4 held-out scenes."""
    from rust_perception.data.store import MultiViewDataset
    from rust_perception.training.trainer import load_model

    renders, batch, scores = {}, None, {}
    for name, *_ in RUNS[kind]:
        cfg, model, _ = load_model(run_dir(args, kind, name))
        if batch is None:
            ds = MultiViewDataset(cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
            batch = next(held_out_batches(ds, 4))
        renders[name] = render_full_targets(model, batch)
        scores[name] = evaluate_batch(model, batch)[0][:, 0].tolist()
    comparison_figure(batch, renders, RESULTS / f"table1_{kind}.png", scores)


def chart(results: Results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rust_perception.io import save_figure

    kinds = [k for k in ("dome", "street") if results.data.get(k)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        rows = results.data[kind]
        names = list(rows)
        ax.bar(names, [rows[n]["psnr"] for n in names], yerr=[rows[n]["psnr_stderr"] for n in names],
               color=["tab:red" if n == "RUST" else "tab:blue" for n in names])
        lo = min(rows[n]["psnr"] for n in names)
        ax.set_ylim(max(0, lo - 2), max(rows[n]["psnr"] for n in names) + 1)
        ax.set_ylabel("PSNR (dB), right halves")
        ax.set_title(f"{kind}: {results.data['budget']['steps']} steps × batch {results.data['budget']['batch_size']}")
        ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    fig.tight_layout()
    save_figure(fig, RESULTS / "table1.png")


if __name__ == "__main__":
    sys.exit(main())
