"""`evaluate`: the paper's protocol on held-out scenes — PSNR / SSIM on the right halves of the
target views (RUST's Pose Estimator sees the left halves; posed baselines get the true target
poses) — beside trivial baselines on the same pixels (constant colour, background oracle) and
object-pixel PSNR; per-scene JSON and a figure: inputs | target | this run | runs compared."""

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
    from ..training.scoring import Scoreboard
    from ..training.steps import evaluate_batch, held_out_batches
    from ..training.trainer import load_model

    cfg, model, step = load_model(args.run)
    ds = MultiViewDataset(cfg.dataset, args.split, cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    n = min(args.scenes, len(ds))
    board = Scoreboard(ds.store.manifest.get("kind"))
    per_scene, ssims, figure_batch = [], [], None
    for batch in held_out_batches(ds, n):
        _, ssim, pred = evaluate_batch(model, batch, pose_half=args.pose_half)
        scores = board.add(pred, batch)
        ssims.append(ssim.flatten())
        for j, i in enumerate(batch["scene_index"].tolist()):
            per_scene.append({"scene": i, "target_views": batch["target_views"][j].tolist(),
                              **{("psnr" if name == "model" else f"{name}_psnr"): [round(v, 3) for v in s[j].tolist()]
                                 for name, s in scores.items()},
                              "ssim": [round(v, 4) for v in ssim[j].tolist()]})
        if figure_batch is None:
            figure_batch = {k: v[: args.figure_scenes] for k, v in batch.items()}
    summary = {"run": str(args.run), "variant": cfg.model.variant, "step": step, "split": args.split, "scenes": n,
               **board.summary(), "ssim": round(float(torch.cat(ssims).mean()), 4),
               "protocol": f"right halves; Pose Estimator fed {args.pose_half} halves; object_psnr pools the "
                           "pixels of object classes over all targets"}
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
