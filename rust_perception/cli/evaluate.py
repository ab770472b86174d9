"""`evaluate`: the paper's protocol on held-out scenes — PSNR / SSIM on the right halves of the
target views (RUST's Pose Estimator sees the left halves; posed baselines get the true target
poses) — per-scene JSON and a figure: inputs | target | this run | runs compared with it."""

from __future__ import annotations

import json
from pathlib import Path

from . import ArgumentParser, run

PROG = "evaluate"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run directory")
    p.add_argument("--compare", type=Path, nargs="*", default=[], help="other runs to show in the figure")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--scenes", type=int, default=100, help="number of scenes (default 100)")
    p.add_argument("--figure-scenes", type=int, default=4, help="scenes in the figure (default 4)")
    p.add_argument("--pose-half", choices=("left", "right"), default="left",
                   help="half of each target the Pose Estimator sees (the paper's 'right-half PE' ablation: right)")
    p.add_argument("--out", type=Path, help="output directory (default RUN/eval)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.scenes < 1 or args.figure_scenes < 0:
        parser().error("--scenes must be >= 1 and --figure-scenes >= 0")
    import torch

    from ..data.store import MultiViewDataset
    from ..io import write_json
    from ..training.figures import comparison_figure, render_full_targets
    from ..training.steps import evaluate_batch, held_out_batches
    from ..training.trainer import load_model

    cfg, model, step = load_model(args.run)
    ds = MultiViewDataset(cfg.dataset, args.split, cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    n = min(args.scenes, len(ds))
    per_scene, figure_batch = [], None
    for batch in held_out_batches(ds, n):
        psnr, ssim, _ = evaluate_batch(model, batch, pose_half=args.pose_half)
        for j, i in enumerate(batch["scene_index"].tolist()):
            per_scene.append({"scene": i, "target_views": batch["target_views"][j].tolist(),
                              "psnr": [round(v, 3) for v in psnr[j].tolist()],
                              "ssim": [round(v, 4) for v in ssim[j].tolist()]})
        if figure_batch is None:
            figure_batch = {k: v[: args.figure_scenes] for k, v in batch.items()}
    psnrs = torch.tensor([v for s in per_scene for v in s["psnr"]])
    ssims = torch.tensor([v for s in per_scene for v in s["ssim"]])
    summary = {"run": str(args.run), "variant": cfg.model.variant, "step": step, "split": args.split, "scenes": n,
               "psnr": round(float(psnrs.mean()), 3), "psnr_stderr": round(float(psnrs.std() / len(psnrs) ** 0.5), 3),
               "ssim": round(float(ssims.mean()), 4), "protocol": f"right halves; Pose Estimator fed {args.pose_half} halves"}
    out = args.out or args.run / "eval"
    write_json(out / "metrics.json", {**summary, "per_scene": per_scene})
    if args.figure_scenes and figure_batch is not None:
        renders, scores = {}, {}
        for path in [args.run, *args.compare]:
            other_cfg, other, _ = load_model(path) if path != args.run else (cfg, model, step)
            name = f"{path.name} ({other_cfg.model.variant})"
            renders[name] = render_full_targets(other, figure_batch)
            scores[name] = evaluate_batch(other, figure_batch)[0][:, 0].tolist()
        summary["figure"] = str(comparison_figure(figure_batch, renders, out / "figure.png", scores))
    print(json.dumps(summary))
    return 0


def entry() -> int:
    return run(main, prog=PROG)
