"""`analyze_latent`: what RUST's latent poses encode (paper §4.2, Figs. 5/8) — PCA of the latent
poses of held-out targets, Pearson r of each component with camera attributes relative to the
first input camera, a linear probe (fitted on training scenes, R² on held-out ones) from the latent
to the relative camera position and cos / sin of the relative yaw, a 3-D scatter, traversal
renders along the top components (and, where one latent holds its own yaw relative to something the
scene shows, R² ≥ 0.5, renders with latents turned once round that yaw: yaw_turn.png), and the PCA basis with the component meanings saved in the run
(RUN/latent_space.json) for the node's queries."""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import ArgumentParser, run

PROG = "analyze_latent"
TURN_MIN_R2 = 0.5  # mean linear-probe R² of cos / sin own yaw for a yaw_turn figure


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run directory of a rust model")
    p.add_argument("--data", type=Path, help="dataset to analyse (default: the run's); its test split is used")
    p.add_argument("--samples", type=int, default=500,
                   help="held-out (scene, view draw) samples, 3 targets each (default 500; scenes are revisited "
                        "with new view draws when the split has fewer)")
    p.add_argument("--probe-samples", type=int, default=1500,
                   help="training (scene, view draw) samples the linear probe is fitted on (default 1500; "
                        "no probe when the data has no training split)")
    p.add_argument("--min-r", type=float, default=0.5, help="|r| a component needs to be given a meaning (default 0.5)")
    p.add_argument("--out", type=Path, help="figures and results (default RUN/latent)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.samples < 2 or args.probe_samples < 4:
        parser().error("--samples must be >= 2 and --probe-samples >= 4")
    from ..data.store import MultiViewDataset
    from ..errors import UserError
    from ..io import write_json
    from ..latent_space import component_meanings, correlation_table, fit_pca, pearson
    from ..training.latent_analysis import (LATENT_FILE, collect_latents, probe_relative_pose, scatter_figure,
                                            traversal, traversal_figure, yaw_turn)
    from ..training.steps import held_out_batches
    from ..training.trainer import load_model

    cfg, model, step = load_model(args.run)
    if cfg.model.variant != "rust":
        raise UserError(f"{args.run} is a {cfg.model.variant} run: latent poses exist only for rust runs")
    data = args.data or Path(cfg.dataset)
    ds = MultiViewDataset(data, "test", cfg.model.num_inputs, cfg.num_targets, seed=cfg.seed + 1)
    if ds.store.height != cfg.model.image_size:
        raise UserError(f"{data} has {ds.store.height}px images; the model expects {cfg.model.image_size}px")
    if not ds.store.has("cam2world"):
        raise UserError(f"{data} has no camera poses (a recording); the analysis relates latents to them")
    kind = ds.store.manifest["kind"]
    collected = collect_latents(model, ds, kind, args.samples)
    latents, attributes = collected.latents, collected.attributes
    probe = probe_relative_pose(model, data, cfg, kind, collected, args.probe_samples)
    pca = fit_pca(latents)
    coords = pca.project(latents)
    table = correlation_table(coords, attributes)
    meanings = component_meanings(table, args.min_r)
    out = args.out or args.run / "latent"
    scatter = scatter_figure(coords, attributes, table, out / "scatter.png")
    shown = next(held_out_batches(ds, 4))  # the held-out scenes the figures render (traversal: the first)
    frames = traversal(model, shown, pca)
    names = {m["component"]: a for a, m in meanings.items()}
    labels = [f"PC{k + 1}" + (f" ({names[k]})" if k in names else "") for k in range(frames.shape[0])]
    strip = traversal_figure(frames, labels, out / "traversal.png")
    figures = [str(scatter), str(strip)]
    # where one latent holds its own yaw relative to something the scene shows, turn latents round it
    linear = probe.get("linear", {})
    references = [k.removeprefix("own_cos_yaw_") for k in linear if k.startswith("own_cos_yaw_")]
    turns = {ref: (linear[f"own_cos_yaw_{ref}"] + linear[f"own_sin_yaw_{ref}"]) / 2 for ref in references}
    reference = max(turns, key=turns.get, default=None)
    (out / "yaw_turn.png").unlink(missing_ok=True)  # never leave an earlier analysis's figure behind
    if reference is not None and turns[reference] >= TURN_MIN_R2:
        turned = yaw_turn(model, shown, latents, collected.relative[f"own_cos_yaw_{reference}"],
                          collected.relative[f"own_sin_yaw_{reference}"], scenes=4)
        figures.append(str(traversal_figure(turned, [f"scene {i + 1}" for i in range(len(turned))], out / "yaw_turn.png",
                                            columns=[f"{360 * j // turned.shape[1]}°" for j in range(turned.shape[1])])))
    basis = {"step": step, "kind": kind, "pca": pca.to_dict(), "meanings": meanings, "min_abs_r": args.min_r,
             "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(args.run / LATENT_FILE, basis)
    summary = {"run": str(args.run), "step": step, "kind": kind, "samples": args.samples, "latents": len(latents),
               "scenes": len(ds), "explained_variance": [round(float(v), 4) for v in pca.explained],
               "pearson_r": {k: [round(r, 4) for r in v] for k, v in table.items()},
               # the r a component holding the target's own height exactly (a code not relative to the
               # first input view) would reach against the relative height: the first view's height varies too
               **({"own_height_r": round(pearson(collected.relative["own_height"], attributes["height"]), 4)}
                  if "height" in attributes else {}),
               "linear_probe_r2": {k: round(v, 4) for k, v in probe.get("linear", {}).items()},
               "neighbour_probe_r2": {k: round(v, 4) for k, v in probe.get("neighbours", {}).items()},
               "pair_probe_r2": {k: round(v, 4) for k, v in probe.get("pair", {}).items()},
               "probe_samples": args.probe_samples,
               "meanings": meanings, "figures": figures, "basis": str(args.run / LATENT_FILE),
               "yaw_turn_reference": reference if len(figures) > 2 else None}
    write_json(out / "results.json", summary)
    print(json.dumps({k: summary[k] for k in ("latents", "explained_variance", "linear_probe_r2", "neighbour_probe_r2", "pair_probe_r2", "meanings")}))
    return 0


def entry() -> int:
    return run(main, prog=PROG)
