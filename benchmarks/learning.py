#!/usr/bin/env python3
"""Do the models learn 3D structure on a CPU? → benchmarks/results/learning.json + learning.png
(+ learning_renders.png).

Trains SRT with perfect poses and RUST side by side (one process and one core each) in the CPU
learning regime (config/train_learn.yaml on config/data_dome_learn.yaml) and records, at every
evaluation on the same 200 held-out scenes: PSNR of the right halves, object-pixel PSNR, the
PSNR when each target is rendered at another target's pose, and the trivial baselines on the
same pixels (constant colour, background oracle, ground colour on objects). Before training it
records the learning diagnostics at initialisation; at the end it states each of issue 12's
criteria as met or not.

Resumable across machines: the runs live in runs/learning/<variant> and resume from their
checkpoints; each run's newest checkpoint, config and log are also kept (overwritten in place)
in benchmarks/results/learning_runs/<variant>/, which is committed, so a fresh clone continues a
budget that needs several sessions. Partial results are written every minute. Usage:
    python benchmarks/learning.py [--steps 16000] [--variants srt rust] [--collect]
`--collect` only gathers what the runs logged so far (no training); `--score RUN ...` evaluates
other runs of the same regime (probes of one lever each) on the same targets and records them
under "probes" with the settings they changed.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, Results, keep, restore  # noqa: E402

import torch  # noqa: E402

from rust_perception.config import load_config, to_dict  # noqa: E402
from rust_perception.data.generate import generate_dataset  # noqa: E402
from rust_perception.data.store import MultiViewDataset  # noqa: E402
from rust_perception.data.synthetic import SyntheticConfig  # noqa: E402
from rust_perception.io import atomic_write, save_figure  # noqa: E402
from rust_perception.model.scene_model import SceneModel, Views  # noqa: E402
from rust_perception.training.config import load_train_config  # noqa: E402
from rust_perception.training.diagnostics import image_dependence, image_to_ray_effect, input_swap_effect  # noqa: E402
from rust_perception.training.steps import evaluate_batch, held_out_batches, right_half_pixels  # noqa: E402
from rust_perception.training.trainer import METRICS_FILE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Issue 12's "done when", on the last evaluation. "Overall" PSNR is the pooled one (PSNR of the
# MSE over all scored pixels): the mean of per-target PSNRs gives a constant colour 100 dB on the
# 7 % of right halves that show only plain ground (training/scoring.py, docs/learning.md).
CRITERIA = {
    "srt_beats_constant_colour_by_1db":
        lambda r: r["srt"]["pooled_psnr"] >= r["srt"]["constant_colour_pooled_psnr"] + 1.0,
    "srt_objects_beat_ground_colour_by_3db":
        lambda r: r["srt"]["object_psnr"] >= r["srt"]["background_oracle_object_psnr"] + 3.0,
    "srt_wrong_pose_costs_1_5db": lambda r: r["srt"]["pooled_psnr"] - r["srt"]["swapped_pose_pooled_psnr"] >= 1.5,
    "rust_within_1db_of_srt": lambda r: r["rust"]["pooled_psnr"] >= r["srt"]["pooled_psnr"] - 1.0,
    "rust_objects_beat_ground_colour_by_3db":
        lambda r: r["rust"]["object_psnr"] >= r["rust"]["background_oracle_object_psnr"] + 3.0,
}


def overrides(variant: str, steps: int | None) -> list[str]:
    """RUST's loss covers only the half its Pose Estimator did not see (docs/learning.md: with the
    paper's whole-target loss its latent carried the seen half's content)."""
    rust = ["model.pose_supervision=unseen"] if variant == "rust" else []
    return [f"model.variant={variant}", "threads=1", *rust] + ([f"steps={steps}"] if steps else [])


def init_diagnostics(cfg, variants: list[str]) -> dict:
    """The learning diagnostics of each freshly initialised model on 16 held-out scenes."""
    ds = MultiViewDataset(ROOT / cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    batch = next(held_out_batches(ds, 16))
    views = Views(batch["input_cam2world"], batch["input_intrinsics"])
    noise = torch.rand(batch["input_images"].shape, generator=torch.Generator().manual_seed(0))
    uv = right_half_pixels(16, cfg.num_targets, cfg.model.image_size)
    out = {}
    for variant in variants:
        torch.manual_seed(cfg.seed)
        model = SceneModel(replace(cfg.model, variant=variant)).eval()
        row = {"image_dependence": round(image_dependence(model, batch["input_images"], views), 4),
               "image_dependence_random_images": round(image_dependence(model, noise, views), 4),
               "input_swap_effect": round(input_swap_effect(model, batch, uv), 4)}
        if variant == "srt":
            row["image_to_ray_effect"] = round(image_to_ray_effect(model, batch["input_images"], views), 4)
        out[variant] = row
    return out


KEPT = RESULTS / "learning_runs"


def latent_readout(run: Path) -> dict:
    """What RUST's latent poses carry: R² on held-out targets of a linear and a nearest-neighbour
    probe, fitted on training scenes, from the latent to the target camera's position in the first
    input camera's frame, to cos / sin of the relative yaw and to the target's own height and
    pitch, and of the pair probe from the target's and the first input view's latents to the
    relative values (latent_space.linear_probe, neighbour_probe, pair_probe)."""
    from rust_perception.training.latent_analysis import collect_latents, probe_relative_pose
    from rust_perception.training.trainer import load_model

    cfg, model, step = load_model(run)
    test = MultiViewDataset(ROOT / cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    collected = collect_latents(model, test, "dome", cfg.eval_scenes, progress=False)
    r2 = probe_relative_pose(model, ROOT / cfg.dataset, cfg, "dome", collected, 1500)
    return {"step": step, "r2": {k: round(v, 3) for k, v in r2["linear"].items()},
            "neighbour_r2": {k: round(v, 3) for k, v in r2["neighbours"].items()},
            "pair_r2": {k: round(v, 3) for k, v in r2["pair"].items()}}


@torch.no_grad()
def by_seen_half(runs: dict[str, Path]) -> dict:
    """Pooled PSNR of each run's scored right halves split by what RUST's Pose Estimator sees: a
    left half with object pixels, or plain ground and sky only — where the target's pose, and so
    where its objects are, cannot be read from what it sees, while SRT is given the pose."""
    from rust_perception.training.scoring import object_and_ground_ids
    from rust_perception.training.trainer import load_model

    out = {}
    for name, run in runs.items():
        cfg, model, _ = load_model(run)
        ds = MultiViewDataset(ROOT / cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
        objects, _ = object_and_ground_ids(ds.store.manifest.get("kind"))
        errors, seen = [], []
        for batch in held_out_batches(ds, cfg.eval_scenes, cfg.batch_size):
            w = batch["target_images"].shape[-1]
            _, _, pred = evaluate_batch(model, batch)
            errors.append(((pred - batch["target_images"][..., w // 2:]) ** 2).mean((2, 3, 4)).flatten())
            seen.append(torch.isin(batch["target_labels"][..., : w // 2], torch.tensor(objects)).flatten(2).any(-1).flatten())
        err, seen = torch.cat(errors), torch.cat(seen)
        out["targets_seeing_no_object"] = round(float((~seen).float().mean()), 3)
        out[name] = {"objects_seen": pooled_psnr(err[seen]), "no_object_seen": pooled_psnr(err[~seen])}
    return out


def pooled_psnr(squared_errors: torch.Tensor) -> float | None:
    """PSNR of the mean of per-target mean squared errors (targets of equal pixel counts)."""
    return round(-10 * float(torch.log10(squared_errors.mean())), 2) if len(squared_errors) else None


@torch.no_grad()
def rust_halves(run: Path) -> dict:
    """Pooled PSNR of a RUST run's held-out targets by half and by the latent each half is rendered
    from (the Pose Estimator fed the left half unless named): the scored right half (the paper's
    protocol), the left half it saw, the right half from a right-half latent (the paper's
    "right-half PE" ablation), whole frames from the left latent, whole frames with each half
    from the other half's latent, and whole frames as the model renders them (`view_latents`:
    one of the two, by how it was trained) — beside a constant colour (each scene's median input
    colour) on whole frames."""
    from rust_perception.model.scene_model import pixel_grid
    from rust_perception.training.scoring import scene_median_colour
    from rust_perception.training.trainer import load_model

    cfg, model, step = load_model(run)
    ds = MultiViewDataset(ROOT / cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    from rust_perception.training.figures import render_full_targets

    parts = {k: [] for k in ("right_half", "left_half_seen", "right_half_from_right_latent", "whole_frame",
                             "whole_frame_crossed_halves", "whole_frame_as_rendered", "constant_colour_whole_frame")}
    for batch in held_out_batches(ds, cfg.eval_scenes, cfg.batch_size):
        images = batch["target_images"]
        b, m, _, h, w = images.shape
        slsr = model.encode(batch["input_images"])
        uv = pixel_grid(h, w).expand(b, m, -1, -1)
        render = {side: model.render(slsr, model.query_input(uv, model.estimate_pose(
            slsr, images, torch.full((b, m), side == "right")))).clamp(0, 1) for side in ("left", "right")}
        truth = images.permute(0, 1, 3, 4, 2).reshape(b, m, h * w, 3)
        left = (uv[..., 0] < w // 2)[..., None]
        err = {side: (pred - truth) ** 2 for side, pred in render.items()}
        half = lambda e, mask: (e * mask).sum((2, 3)) / (mask.sum((2, 3)) * 3)  # noqa: E731
        constant = scene_median_colour(batch["input_images"])[:, None, None]
        shipped = render_full_targets(model, batch).permute(0, 1, 3, 4, 2).reshape(b, m, h * w, 3)
        for key, e in (("right_half", half(err["left"], ~left)), ("left_half_seen", half(err["left"], left)),
                       ("right_half_from_right_latent", half(err["right"], ~left)),
                       ("whole_frame", err["left"].mean((2, 3))),
                       ("whole_frame_crossed_halves", torch.where(left, err["right"], err["left"]).mean((2, 3))),
                       ("whole_frame_as_rendered", ((shipped - truth) ** 2).mean((2, 3))),
                       ("constant_colour_whole_frame", ((constant - truth) ** 2).mean((2, 3)))):
            parts[key].append(e.flatten())
    return {"run": f"{run.parent.name}/{run.name}", "step": step,
            **{k: pooled_psnr(torch.cat(v)) for k, v in parts.items()}}


def score(runs: list[Path], cfg, results: Results) -> None:
    """Record probe runs (one lever each, trained with train.py and this config's evaluation) by
    their last evaluation, with the settings they changed — on the same held-out targets, or on
    another dataset's (the lever is the data), scored against that data's own baselines."""
    from rust_perception.training.trainer import read_run_config

    reference = to_dict(cfg)
    probes = results.data.setdefault("probes", [])
    for run in runs:
        mine = to_dict(read_run_config(run))
        if mine["eval_scenes"] != cfg.eval_scenes:
            raise SystemExit(f"{run} was not evaluated on {cfg.eval_scenes} held-out scenes, as this benchmark is")
        changed = {f"model.{k}": v for k, v in mine["model"].items() if v != reference["model"].get(k)}
        changed |= {k: v for k, v in mine.items() if k != "model" and v != reference.get(k)
                    and k not in ("steps", "eval_every", "checkpoint_every", "keep_checkpoints", "threads")}
        evals = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines() if '"eval"' in line]
        name = f"{run.parent.name}/{run.name}"
        probes[:] = [p for p in probes if p["run"] != name]
        readout = {"latent_probe": latent_readout(run)} if mine["model"]["variant"] == "rust" else {}
        probes.append({"run": name, "step": evals[-1]["step"], "changed": changed, **evals[-1]["eval"], **readout})
        results.save()


def collect(work: Path, variants: list[str]) -> dict:
    curves = {}
    for variant in variants:
        path = work / variant / METRICS_FILE
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
        curves[variant] = {
            "eval": [{"step": r["step"], **r["eval"]} for r in lines if "eval" in r],
            "train_psnr": [{"step": r["step"], "psnr": round(r["psnr"], 3), "steps_per_s": round(r["steps_per_s"], 3)}
                           for r in lines if "loss" in r and r["step"] % 100 == 0],
        }
    return curves


def judge(curves: dict) -> dict:
    last = {v: c["eval"][-1] for v, c in curves.items() if c["eval"]}
    if not {"srt", "rust"} <= set(last):
        return {}
    return {name: bool(test(last)) for name, test in CRITERIA.items()} | {
        "at_steps": {v: last[v]["step"] for v in last}}


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = {"srt": "tab:blue", "rust": "tab:red", "upsrt": "tab:green"}
    baseline = None
    for variant, curve in curves.items():
        points = curve["eval"]
        if not points:
            continue
        baseline = points[-1]
        steps = [p["step"] for p in points]
        ax.plot(steps, [p["pooled_psnr"] for p in points], "o-", ms=3, color=colours[variant], label=variant.upper())
        if "swapped_pose_pooled_psnr" in points[-1]:
            ax.plot(steps, [p["swapped_pose_pooled_psnr"] for p in points], "x--", ms=3, color=colours[variant],
                    alpha=0.6, label=f"{variant.upper()} at another target's pose")
        bx.plot(steps, [p["object_psnr"] for p in points], "o-", ms=3, color=colours[variant], label=variant.upper())
    if baseline:
        ax.axhline(baseline["constant_colour_pooled_psnr"], color="k", ls=":", label="constant colour")
        ax.axhline(baseline["background_oracle_pooled_psnr"], color="grey", ls="-.", label="background oracle")
        bx.axhline(baseline["background_oracle_object_psnr"], color="grey", ls="-.", label="ground colour on objects")
        bx.axhline(baseline["background_oracle_object_psnr"] + 3, color="grey", ls=":", label="goal: +3 dB")
    ax.set_title("held-out PSNR of all right-half pixels (pooled)")
    bx.set_title("object-pixel PSNR (pooled)")
    for a in (ax, bx):
        a.set_xlabel("training step")
        a.set_ylabel("dB")
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/train_learn.yaml")
    parser.add_argument("--data", default="config/data_dome_learn.yaml", help="SyntheticConfig of the dataset")
    parser.add_argument("--steps", type=int, help="override the config's steps")
    parser.add_argument("--variants", nargs="+", default=["srt", "rust"], choices=("srt", "rust", "upsrt"))
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "learning")
    parser.add_argument("--collect", action="store_true", help="only gather what the runs logged so far")
    parser.add_argument("--score", type=Path, nargs="+", help="evaluate these probe runs and record them")
    parser.add_argument("--halves-of", type=Path, nargs="*", default=[],
                        help="other RUST runs whose scores by half and latent (rust_halves) are recorded beside the main one")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the runs it started, not orphan them
    cfg = load_train_config(ROOT / args.config, overrides("rust", args.steps))
    results = Results("learning.json", config=args.config, data=args.data, steps=cfg.steps, lr=cfg.lr,
                      batch_size=cfg.batch_size, rays_per_target=cfg.rays_per_target, eval_scenes=cfg.eval_scenes,
                      model=to_dict(cfg.model))
    previous = json.loads(results.path.read_text()) if results.path.is_file() else {}
    if args.score:
        results.data = {**previous, **{k: v for k, v in results.data.items() if k not in previous}}
        score(args.score, cfg, results)
        return 0
    if not args.collect:
        generate_dataset(load_config(SyntheticConfig, ROOT / args.data), ROOT / cfg.dataset, progress=True)
    results.set(init=previous.get("init") or init_diagnostics(cfg, args.variants), probes=previous.get("probes", []))
    if not args.collect:
        for v in args.variants:
            restore(args.work / v, [KEPT / v])
    children = [] if args.collect else [
        subprocess.Popen([sys.executable, str(ROOT / "trainer" / "train.py"), "--config", str(ROOT / args.config),
                          "--run", str(args.work / v), "--quiet",
                          *[a for o in overrides(v, args.steps) for a in ("--set", o)]],
                         cwd=ROOT, stdout=open(args.work.parent / f"learning_{v}.log", "a"), stderr=subprocess.STDOUT)
        for v in args.variants]
    try:
        while True:
            running = any(c.poll() is None for c in children)
            curves = collect(args.work, args.variants)
            results.set(curves=curves, criteria=judge(curves))
            plot(curves, RESULTS / "learning.png")
            for v in args.variants:
                keep(args.work / v, KEPT / v)
            if not running:
                break
            time.sleep(60)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait()
    if "rust" in args.variants and (args.work / "rust" / "checkpoints").is_dir():
        measured = [rust_halves(run) for run in (args.work / "rust", *args.halves_of)]
        names = {h["run"] for h in measured}  # runs not at hand (probes not committed) keep their entries
        results.set(latent_probe=latent_readout(args.work / "rust"),
                    rust_halves=measured + [h for h in previous.get("rust_halves", []) if h["run"] not in names])
    if all((args.work / v / "checkpoints").is_dir() for v in ("srt", "rust")):
        results.set(by_seen_half=by_seen_half({v: args.work / v for v in ("srt", "rust")}))
    failed = [v for v, c in zip(args.variants, children) if c.returncode]
    if failed:
        print(f"training failed for {failed}: see {args.work.parent}/learning_<variant>.log", file=sys.stderr)
        return 1
    if {"srt", "rust"} <= set(args.variants) and all((args.work / v / "checkpoints").is_dir() for v in ("srt", "rust")):
        out = args.work / "eval"
        subprocess.run([sys.executable, str(ROOT / "trainer" / "evaluate.py"), "--run", str(args.work / "srt"), "--compare",
                        str(args.work / "rust"), "--scenes", "8", "--figure-scenes", "6", "--out", str(out)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        with atomic_write(RESULTS / "learning_renders.png") as handle:
            handle.write((out / "figure.png").read_bytes())
    print(json.dumps(results.data.get("criteria"), indent=1))
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
