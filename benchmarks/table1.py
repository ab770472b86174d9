#!/usr/bin/env python3
"""The paper's Table 1 (left and right) in the CPU learning regime → benchmarks/results/table1.json
+ table1.png + table1_<group>.png.

Every row is a train.py run of the learning regime's config (config/train_learn.yaml: the regime
where SRT with perfect poses uses geometry, docs/learning.md) with the row's overrides (`ROWS`),
on dome data whose backdrop shows yaw (config/data_dome_learn_panorama.yaml; on the plain data
RUST's latent holds none, so the latent-space claims cannot be tested there):
the five dome settings of Table 1 left (RUST; SRT with perfect poses; SRT with noisy input and
target poses, σ = 0.1; UpSRT with perfect target poses; UpSRT with noisy target poses), RUST /
SRT / UpSRT on the street rig, and the RUST ablations of Table 1 right at a shorter budget
(`--ablation-steps`; the RUST reference of that group is the dome RUST run's evaluation at the
same step, taken at the same constant learning rate); and, not a Table 1 row but trained right
after the dome rows, RUST on the same dome data with textures
(config/data_dome_learn_panorama_textured.yaml), the model of Table 2's textured variant
(benchmarks/table2.py), where COLMAP has texture to match. The posed baselines are evaluated with
perfect target poses (the paper: poses are perturbed only in training). Each row's scores are its
run's last evaluation (200 held-out scenes × 3 targets, right halves, pooled PSNR beside the mean
of per-target PSNRs, object-pixel PSNR, SSIM) with the constant-colour and background-oracle
baselines on the same pixels; the paper's claims are stated as met or not.

Several sessions: runs train in the background (`--jobs` at a time, the cores split between
them), resume from their checkpoints, and keep their newest checkpoint, config and log in
benchmarks/results/table1_runs/<data>/<row>/ (committed, overwritten in place), so a fresh clone
continues the budget. Results are written every minute. With the learning benchmark's config
and dome data (--dome-data config/data_dome_learn.yaml) the dome RUST and SRT-perfect rows start
from its committed runs (benchmarks/results/learning_runs/), which are those models. Usage:
    python benchmarks/table1.py [--groups dome textured ablation street] [--jobs 2] [--threads N] [--collect]
`--collect` trains nothing: it records what the runs have logged and draws the figures of
finished groups.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Results, keep, restore  # noqa: E402

from rust_perception.config import load_config  # noqa: E402
from rust_perception.data.generate import generate_dataset  # noqa: E402
from rust_perception.data.synthetic import SyntheticConfig  # noqa: E402
from rust_perception.training.config import load_train_config  # noqa: E402
from rust_perception.training.trainer import METRICS_FILE, lr_factor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEPT = RESULTS / "table1_runs"
LEARNING = ("config/train_learn.yaml", "config/data_dome_learn.yaml")  # learning.py's regime

RUST = ("model.variant=rust", "model.pose_supervision=unseen")  # the loss on unseen halves (docs/learning.md)


@dataclass(frozen=True)
class Row:
    group: str  # dome | street | ablation (dome data, --ablation-steps) | textured (--textured-data)
    name: str
    overrides: tuple[str, ...] = ()
    paper: float | None = None  # PSNR in the paper's Table 1 (MSN; Street View for street rows)
    learning_run: str | None = None  # the learning benchmark's run of the same model, if the regime is its
    evaluate_only: str | None = None  # "pose_half=right": the dome RUST run evaluated another way
    reference: bool = False  # the dome RUST run's evaluation at the ablation budget


ROWS = (
    Row("dome", "RUST", RUST, 23.49, learning_run="rust"),
    Row("dome", "SRT perfect", ("model.variant=srt",), 24.40, learning_run="srt"),
    Row("dome", "SRT noisy", ("model.variant=srt", "input_pose_noise=0.1", "target_pose_noise=0.1"), 18.65),
    Row("dome", "UpSRT perfect", ("model.variant=upsrt",), 23.03),
    Row("dome", "UpSRT noisy", ("model.variant=upsrt", "target_pose_noise=0.1"), 18.64),
    # not a Table 1 row: the model of Table 2's textured variant (benchmarks/table2.py), where SIFT has texture to match;
    # trained before the ablations: its perspective cues (ground tiles) are the open lever of the pose read-outs
    Row("textured", "RUST", RUST),
    Row("ablation", "RUST (8-d latent)", RUST, 23.49, reference=True),
    Row("ablation", "no SLSR cross-attention in the Pose Estimator", (*RUST, "model.pose_slsr=false"), 20.83),
    Row("ablation", "no Pose Estimator self-attention", (*RUST, "model.pose_self_attention=false"), 22.97),
    Row("ablation", "stop gradient into the SLSR", (*RUST, "model.pose_stop_gradient=true"), 23.16),
    Row("ablation", "3-d latent", (*RUST, "model.latent_dim=3"), 20.40),
    Row("ablation", "64-d latent", (*RUST, "model.latent_dim=64"), 23.40),
    Row("ablation", "right-half PE at evaluation (full budget)", RUST, 23.88, evaluate_only="right"),
    Row("street", "RUST", RUST, 22.50),
    Row("street", "SRT perfect", ("model.variant=srt",), 22.72),
    Row("street", "UpSRT perfect", ("model.variant=upsrt",), 21.25),
)
GROUPS = tuple(dict.fromkeys(r.group for r in ROWS))  # in training order
DATA_OF = {"ablation": "dome"}  # the budget's data entry of a group, where not its own name
# The paper's claims, on pooled PSNR (the mean of per-target PSNRs gives a constant colour 100 dB
# on right halves of plain ground: docs/learning.md)
CLAIMS = {
    "rust_within_1db_of_srt_perfect": ("RUST", "SRT perfect", lambda a, b: a >= b - 1.0),
    "rust_beats_srt_noisy_by_2db": ("RUST", "SRT noisy", lambda a, b: a >= b + 2.0),
    "upsrt_noisy_below_upsrt_perfect": ("UpSRT noisy", "UpSRT perfect", lambda a, b: a < b),
}
SCORES = ("pooled_psnr", "psnr", "psnr_stderr", "ssim", "object_psnr", "constant_colour_pooled_psnr",
          "background_oracle_pooled_psnr", "background_oracle_object_psnr", "swapped_pose_pooled_psnr")


def slug(row: Row) -> str:
    return f"{row.group}_{row.name}".lower().replace(" ", "_").replace("(", "").replace(")", "").replace("-", "")


def data_name(args, row: Row) -> str:
    """config/data_dome_learn.yaml → dome_learn: the dataset directory under data/ (learning.py's)."""
    return Path(data_yaml(args, row)).stem.removeprefix("data_")


def run_dir(args, row: Row, root: Path | None = None) -> Path:
    """runs/table1/<data>/<row> (or, with `root`, the kept copy): runs on other data never mix."""
    return (root or args.work) / data_name(args, row) / slug(row)


def source(row: Row) -> Row:
    """The row whose run this row reads: the dome RUST run for the reference and evaluate-only rows."""
    return ROWS[0] if row.reference or row.evaluate_only else row


def data_yaml(args, row: Row) -> str:
    return {"street": args.street_data, "textured": args.textured_data}.get(row.group, args.dome_data)


def overrides(args, row: Row) -> list[str]:
    steps = args.ablation_steps if row.group == "ablation" else args.steps
    return [f"dataset=data/{data_name(args, row)}", *row.overrides, f"threads={args.threads}"] + ([f"steps={steps}"] if steps else [])


def steps_of(args, row: Row) -> int:
    return load_train_config(ROOT / args.config, overrides(args, row)).steps


def reusable(previous: dict, budget: dict) -> dict:
    """The groups (and claims) of a previous table1.json measured with this budget: same config and
    step budgets, and the same data for the group — so adding a group's data keeps the others."""
    old = previous.get("budget") or {}
    if any(old.get(k) != budget[k] for k in ("config", "steps", "ablation_steps")):
        return {}
    same = {g for g in GROUPS if old.get("data", {}).get(DATA_OF.get(g, g)) == budget["data"][DATA_OF.get(g, g)]}
    return {k: v for k, v in previous.items() if k in same or (k == "claims" and "dome" in same)}


def evaluations(run: Path) -> list[dict]:
    path = run / METRICS_FILE
    lines = path.read_text().split("\n")[:-1] if path.is_file() else []  # whole lines only: it may be writing
    return [{"step": r["step"], **r["eval"]} for r in map(json.loads, lines) if "eval" in r]


def score(args, row: Row) -> dict | None:
    """The row's scores, or None until its run has evaluated at the row's budget."""
    run = run_dir(args, source(row))
    steps = steps_of(args, row)
    if row.evaluate_only:
        return evaluate_other_way(run, row.evaluate_only) if (evaluations(run) or [{}])[-1].get("step") == steps_of(
            args, source(row)) else None
    at = next((e for e in evaluations(run) if e["step"] == steps), None)
    if at is None:
        return None
    return {"step": steps, **{k: at[k] for k in SCORES if k in at}, "overrides": list(row.overrides)}


def evaluate_other_way(run: Path, pose_half: str) -> dict:
    """The finished run evaluated with its Pose Estimator fed the `pose_half` halves (read-only:
    the run, which may still be writing, is not touched)."""
    from rust_perception.data.store import MultiViewDataset
    from rust_perception.training.scoring import evaluate_model
    from rust_perception.training.trainer import load_model

    cfg, model, step = load_model(run)
    test = MultiViewDataset(ROOT / cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    scores, _ = evaluate_model(model, test, cfg.eval_scenes, cfg.batch_size, pose_half=pose_half)
    return {"step": step, **{k: scores[k] for k in SCORES if k in scores}, "pose_half": pose_half}


def claims(table: dict) -> dict:
    out = {}
    for name, (a, b, test) in CLAIMS.items():
        if a in table and b in table:
            out[name] = {"met": bool(test(table[a]["pooled_psnr"], table[b]["pooled_psnr"])),
                         a: table[a]["pooled_psnr"], b: table[b]["pooled_psnr"]}
    return out


def collect(args, results: Results) -> None:
    """Every row's scores into the results; a row already recorded at its budget is kept (the
    evaluate-only rows are not re-evaluated every minute)."""
    for group in args.groups:
        table, before = {}, results.data.get(group, {})
        for row in (r for r in ROWS if r.group == group):
            old = before.get(row.name, {})
            done = "pending" not in old and old.get("step") == steps_of(args, source(row) if row.evaluate_only else row)
            kept = run_dir(args, source(row), KEPT)
            table[row.name] = {**(old if done else score(args, row) or {"pending": True}), "paper_psnr": row.paper,
                               "run": str(kept.relative_to(ROOT)) if kept.is_relative_to(ROOT) else str(kept)}
        results.data[group] = table
        if group == "dome":
            results.data["claims"] = claims({k: v for k, v in table.items() if "pooled_psnr" in v})
    results.save()
    chart(results)


def train(args, queue: list[Row], results: Results) -> None:
    """Train the queued rows `args.jobs` at a time; record and keep their progress every minute."""
    running: dict[Row, tuple[subprocess.Popen, object]] = {}
    log_dir = args.work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        while queue or running:
            while queue and len(running) < args.jobs:
                row = queue.pop(0)
                command = [sys.executable, str(ROOT / "trainer" / "train.py"), "--config", str(ROOT / args.config),
                           "--run", str(run_dir(args, row)), "--quiet",
                           *[a for o in overrides(args, row) for a in ("--set", o)]]
                log = open(log_dir / f"{slug(row)}.log", "a")
                running[row] = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log
                print(f"training {row.group} / {row.name} → {run_dir(args, row)}", flush=True)
            time.sleep(60)
            for row, (child, log) in list(running.items()):
                ended = child.poll() is not None  # before keeping: a run that ended is kept whole
                keep(run_dir(args, row), run_dir(args, row, KEPT))
                if ended:
                    del running[row]
                    log.close()
                    print(f"{row.group} / {row.name}: " + ("done" if child.returncode == 0 else
                          f"failed (exit {child.returncode}); see {log_dir / slug(row)}.log"), flush=True)
            collect(args, results)
    finally:
        for row, (child, log) in running.items():  # stopped: each run checkpoints on SIGTERM, kept too
            child.terminate()
            child.wait()
            log.close()
            keep(run_dir(args, row), run_dir(args, row, KEPT))


def figures(args, results: Results) -> None:
    """Inputs | target | every model's whole-frame render, for the first 4 held-out scenes of each
    finished group; a bar chart of every finished row with the baselines."""
    from rust_perception.data.store import MultiViewDataset
    from rust_perception.training.figures import comparison_figure, render_full_targets
    from rust_perception.training.steps import evaluate_batch, held_out_batches
    from rust_perception.training.trainer import load_model

    for group in ("dome", "street"):
        rows = [r for r in ROWS if r.group == group]
        if group not in args.groups or any("pending" in results.data[group][r.name] for r in rows):
            continue
        renders, batch, scores = {}, None, {}
        for row in rows:
            cfg, model, _ = load_model(run_dir(args, row))
            if batch is None:
                ds = MultiViewDataset(ROOT / cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
                batch = next(held_out_batches(ds, 4))
            renders[row.name] = render_full_targets(model, batch)
            scores[row.name] = evaluate_batch(model, batch)[0][:, 0].tolist()
        comparison_figure(batch, renders, RESULTS / f"table1_{group}.png", scores)
    chart(results)


def chart(results: Results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rust_perception.io import save_figure

    groups = [g for g in GROUPS if any("pooled_psnr" in v for v in results.data.get(g, {}).values())]
    if not groups:
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    for ax, group in zip(axes[0], groups):
        rows = {k: v for k, v in results.data[group].items() if "pooled_psnr" in v}
        names = list(rows)
        ax.bar(range(len(names)), [rows[n]["pooled_psnr"] for n in names],
               color=["tab:red" if n.startswith("RUST") else "tab:blue" for n in names])
        first = next(iter(rows.values()))
        for key, style, label in (("constant_colour_pooled_psnr", ":", "constant colour"),
                                  ("background_oracle_pooled_psnr", "-.", "background oracle")):
            if key in first:
                ax.axhline(first[key], color="k", ls=style, lw=1, label=label)
        low = min(min(r["pooled_psnr"] for r in rows.values()), first.get("constant_colour_pooled_psnr", 99))
        ax.set_ylim(low - 1.5, max(r["pooled_psnr"] for r in rows.values()) + 1)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 2) for n in names], fontsize=6)
        ax.set_ylabel("pooled PSNR (dB), right halves")
        ax.set_title(f"{group}: {first['step']} steps each", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, RESULTS / "table1.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=LEARNING[0], help="the base training config, relative to the repository")
    parser.add_argument("--dome-data", default="config/data_dome_learn_panorama.yaml",
                        help="SyntheticConfig YAML of the dome data (the default: the learning regime's with a "
                        "backdrop that shows yaw, as MultiShapeNet's environment maps do)")
    parser.add_argument("--street-data", default="config/data_street_learn.yaml", help="SyntheticConfig YAML of the street data")
    parser.add_argument("--textured-data", default="config/data_dome_learn_panorama_textured.yaml",
                        help="SyntheticConfig YAML of the textured dome data (Table 2's textured variant)")
    parser.add_argument("--steps", type=int, help="override the config's steps (dome and street rows)")
    parser.add_argument("--ablation-steps", type=int, default=6000, help="steps of each ablation row")
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side (the cores split evenly)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: the cores split between the jobs)")
    parser.add_argument("--collect", action="store_true", help="train nothing: record what the runs logged")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "table1", help="run directories")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the runs it started, not orphan them
    os.chdir(ROOT)  # run configs name their datasets relative to the repository
    args.threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
    base = load_train_config(ROOT / args.config, [f"steps={args.steps}"] if args.steps else [])
    short = dataclasses.replace(base, steps=args.ablation_steps)
    if args.ablation_steps % base.eval_every or any(not math.isclose(lr_factor(k, base), lr_factor(k, short))
                                                    for k in range(args.ablation_steps)):
        parser.error(f"--ablation-steps {args.ablation_steps} must be a multiple of eval_every ({base.eval_every}) and "
                     "end before the learning-rate schedule depends on the run's length: the ablations' reference is "
                     "the dome RUST run's evaluation at that step")
    budget = {"config": args.config, "data": {"dome": args.dome_data, "street": args.street_data,
                                              "textured": args.textured_data},
              "steps": steps_of(args, ROWS[0]), "ablation_steps": args.ablation_steps}
    eval_scenes = base.eval_scenes
    results = Results("table1.json", budget=budget, groups=GROUPS, protocol=(
        f"{eval_scenes} held-out scenes × 3 targets, right halves; RUST's Pose Estimator sees the left halves, the posed "
        "baselines get the true target poses; pooled_psnr: PSNR of the MSE over all scored pixels"))
    previous = json.loads(results.path.read_text()) if results.path.is_file() else {}
    results.data.update(reusable(previous, budget))
    learning_regime = (args.config, args.dome_data) == LEARNING
    queue = []
    for row in dict.fromkeys(source(r) for r in ROWS if r.group in args.groups):  # the runs those rows read
        generate_dataset(load_config(SyntheticConfig, ROOT / data_yaml(args, row)), ROOT / "data" / data_name(args, row),
                         progress=True)
        kept = [run_dir(args, row, KEPT)] + ([RESULTS / "learning_runs" / row.learning_run]
                                     if row.learning_run and learning_regime else [])
        restore(run_dir(args, row), kept)
        if score(args, row) is None:
            queue.append(row)
    if args.collect:
        queue = []
    train(args, queue, results)
    collect(args, results)
    figures(args, results)
    print(json.dumps(results.data.get("claims"), indent=1))
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
