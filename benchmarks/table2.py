#!/usr/bin/env python3
"""The paper's Table 2 at CPU scale: explicit pose estimation (RUST + EPE head) beside COLMAP.

On the same held-out scenes (the run's dataset generator, re-rendered with extra views), for a
fixed pair of views (0, 1):
- RUST: SLSR from views 2–6, latent poses of views 0 and 1 (left halves), the EPE head → view 1's
  position in view 0's frame (metres);
- COLMAP (pycolmap) given k = 7, 10, 20, 40 views (0 … k−1), the true intrinsics, and larger
  renders (--colmap-size) than RUST sees: success = both pair views registered; their relative
  position after similarity alignment of all registered centres to ground truth.
Reports success rate, MSE (m²) and R² of the relative position → benchmarks/results/table2.json.

Usage: python benchmarks/table2.py --run RUN [--scenes 50] [--colmap-size 128] [--views 7 10 20 40]
(RUN needs an EPE head: python trainer/train_heads.py --run RUN --head epe).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Results  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from rust_perception.colmap_baseline import aligned_relative_position, run_sfm  # noqa: E402
from rust_perception.config import from_dict  # noqa: E402
from rust_perception.data.store import read_manifest  # noqa: E402
from rust_perception.data.synthetic import SyntheticConfig, generate_scene  # noqa: E402
from rust_perception.metrics import r2_score  # noqa: E402
from rust_perception.training.heads import epe_predict, frozen_features, load_head  # noqa: E402
from rust_perception.training.trainer import load_model  # noqa: E402

PAIR = (0, 1)
INPUTS = slice(2, 7)
# paper Table 2 (MSN): MSE, R², registration success
PAPER = {"RUST EPE 7 views": {"mse": 0.08, "r2": 0.999, "success_rate": 1.0},
         "COLMAP 10 views": {"mse": 0.00, "r2": 1.0, "success_rate": 0.042},
         "COLMAP 80 views": {"mse": 0.07, "r2": 0.997, "success_rate": 0.295},
         "COLMAP 160 views": {"mse": 0.38, "r2": 0.991, "success_rate": 0.589}}


def summarise(pred: list, truth: list, attempted: int) -> dict:
    row = {"attempted": attempted, "success": len(pred), "success_rate": round(len(pred) / max(attempted, 1), 3)}
    if len(pred) >= 2:
        p, t = torch.tensor(np.array(pred)), torch.tensor(np.array(truth))
        row.update(mse=round(float(((p - t) ** 2).mean()), 4), r2=round(r2_score(p, t), 4),
                   median_error_m=round(float((p - t).norm(dim=-1).median()), 4))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--colmap-size", type=int, default=128)
    parser.add_argument("--views", type=int, nargs="+", default=[7, 10, 20, 40])
    parser.add_argument("--name", default="table2", help="results file name in benchmarks/results (.json added)")
    args = parser.parse_args()
    train_cfg, model, step = load_model(args.run)
    _, head, state = load_head(args.run, "epe", train_cfg.model)
    gen = from_dict(SyntheticConfig, read_manifest(train_cfg.dataset)["generator"])
    views = max(max(args.views), INPUTS.stop)
    rust_cfg = from_dict(SyntheticConfig, {**gen.__dict__, "views": views})
    colmap_cfg = from_dict(SyntheticConfig, {**gen.__dict__, "views": views, "size": args.colmap_size})
    scenes = min(args.scenes, rust_cfg.split_sizes()["test"])
    results = Results(f"{args.name.removesuffix('.json')}.json", run=str(args.run), model_step=step,
                      head_steps=state["steps"], scenes=scenes,
                      data=gen.__dict__, colmap_size=args.colmap_size, pair=PAIR, paper=PAPER,
                      protocol="relative position of view 1 in view 0's optical frame (metres)")
    rust_pred, truths, colmap = [], [], {k: ([], [], []) for k in args.views}
    started = time.perf_counter()
    for index in tqdm(range(scenes), desc="table2 scenes", unit="scene"):
        scene = generate_scene(rust_cfg, "test", index)
        c2w = scene["cam2world"].astype(np.float64)
        truth = (np.linalg.inv(c2w[PAIR[0]]) @ c2w[PAIR[1]])[:3, 3]
        truths.append(truth)
        images = torch.from_numpy(scene["rgb"]).permute(0, 3, 1, 2).float()[None] / 255.0
        slsr, latents = frozen_features(model, images[:, list(PAIR)], images[:, INPUTS], whole_frames=False)
        with torch.no_grad():
            rust_pred.append(epe_predict(head, slsr, latents, state["position_std"])[0, 0, :3].numpy())
        big = generate_scene(colmap_cfg, "test", index)
        for k in args.views:
            estimated = run_sfm(big["rgb"][:k], big["intrinsics"][0].astype(np.float64))
            rel = aligned_relative_position(estimated, big["cam2world"][:k].astype(np.float64), PAIR)
            if rel is not None:
                colmap[k][0].append(rel)
                colmap[k][1].append(truth)
                colmap[k][2].append(index)
        table = {"RUST (5 inputs + 2 targets)": summarise(rust_pred, truths, len(truths))}
        if len(truths) >= 2:  # the trivial baseline: the scenes' mean relative position as a constant guess (R² 0)
            t = np.array(truths)
            table["RUST (5 inputs + 2 targets)"]["mean_guess_median_error_m"] = round(
                float(np.median(np.linalg.norm(t - t.mean(0), axis=1))), 4)
        for k in args.views:
            table[f"COLMAP {k} views"] = summarise(colmap[k][0], colmap[k][1], len(truths))
            ok = colmap[k][2]
            if len(ok) >= 2:  # RUST on exactly the scenes COLMAP solved, for a like-for-like error
                table[f"COLMAP {k} views"]["rust_on_same_scenes"] = summarise([rust_pred[i] for i in ok],
                                                                              [truths[i] for i in ok], len(ok))
        results.set(table=table, seconds=round(time.perf_counter() - started))
    print(f"wrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
