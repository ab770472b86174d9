"""`rust_demo`: the README's main job on the embedded default — nothing to download.

Generates a small dome and a small street-rig dataset (verified, with contact sheets), trains a
small RUST model on the dome data for a few minutes and evaluates it on held-out scenes with a
figure, reads out its latent-pose space, trains EPE and segmentation heads on the frozen model,
exports everything to ONNX and renders a held-out view through ONNX Runtime (checked against
torch). Rerunning resumes or reuses what is there.
"""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

from ..data.generate import generate_dataset
from ..data.preview import contact_sheet, save_png
from ..data.synthetic import SyntheticConfig
from ..errors import UserError
from ..io import write_json
from . import ArgumentParser, run

PROG = "rust_demo"


def config_file(name: str) -> Path:
    """`name` in the package's config/ folder: a checkout's (run from source, `pip install -e`), or the
    copy setup.py installs to <prefix>/share/rust_perception/config (pip into a venv or ~/.local,
    colcon's install/rust_perception, /usr/local)."""
    here = Path(__file__).resolve()
    folders = [here.parents[2] / "config"]  # <checkout>/rust_perception/cli/demo.py
    folders += [prefix / "share" / "rust_perception" / "config" for prefix in here.parents]  # <prefix>/lib/…/cli
    folders.append(Path(sysconfig.get_path("data")) / "share" / "rust_perception" / "config")
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"config/{name} is neither beside the package (a checkout) nor installed under "
                    "share/rust_perception/config; reinstall rust_perception (pip install, colcon build)")


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Run the rust_perception pipeline end to end on generated data.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    p.add_argument("--scenes", type=int, default=40, help="scenes per dataset (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=200, help="RUST training steps (default 200, ~2 min on 2 cores)")
    p.add_argument("--head-steps", type=int, default=60, help="EPE / segmentation head training steps (default 60)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    train_config = config_file("train_dome.yaml")  # before minutes of data generation
    report = {}
    for kind in ("dome", "street"):
        cfg = SyntheticConfig(kind=kind, scenes=args.scenes, seed=args.seed)
        start = time.perf_counter()
        store = generate_dataset(cfg, args.out / f"data_{kind}", progress=not args.quiet)
        counts = store.verify()
        sheet = save_png(contact_sheet(store), args.out / f"preview_{kind}.png")
        report[kind] = {"dataset": str(store.root), "scenes": counts, "views_per_scene": cfg.views,
                        "seconds": round(time.perf_counter() - start, 1), "preview": str(sheet)}
        print(f"{kind}: {counts} scenes × {cfg.views} views at {cfg.size}px in {report[kind]['seconds']} s "
              f"→ {store.root}, preview {sheet}")
    report["rust"] = train_and_evaluate(args, report["dome"]["dataset"], train_config)
    report["export"] = readout_and_export(args, Path(report["rust"]["run"]))
    write_json(args.out / "demo.json", report)
    return 0


def train_and_evaluate(args, dataset: str, train_config: Path) -> dict:
    from ..training.config import load_train_config
    from ..training.trainer import Trainer
    from .evaluate import main as evaluate

    if args.steps < 1 or args.head_steps < 1:
        parser().error(f"argument --steps/--head-steps: must be >= 1, got {args.steps}/{args.head_steps}")
    cfg = load_train_config(train_config, [
        f"dataset={dataset}", f"steps={args.steps}", "batch_size=8", "rays_per_target=256", "eval_scenes=4",
        f"eval_every={args.steps}", f"checkpoint_every={max(1, args.steps // 2)}", f"warmup_steps={min(50, args.steps)}",
        f"seed={args.seed}"])
    run_dir = args.out / "rust_dome"
    result = Trainer(cfg, run_dir, progress=not args.quiet).train()
    evaluate(["--run", str(run_dir), "--scenes", "4", "--figure-scenes", "4"])
    print(f"rust: trained {result['step']} steps → {run_dir}; evaluation {run_dir / 'eval' / 'metrics.json'}, "
          f"figure {run_dir / 'eval' / 'figure.png'}")
    return {"run": str(run_dir), "steps": result["step"], "eval": str(run_dir / "eval" / "metrics.json"),
            "figure": str(run_dir / "eval" / "figure.png")}


def readout_and_export(args, run_dir: Path) -> dict:
    """Latent analysis, briefly trained heads, ONNX export, and one held-out view rendered by ONNX
    Runtime beside torch (the max difference is reported)."""
    import numpy as np
    from PIL import Image

    from ..data.store import MultiViewDataset
    from ..io import atomic_write
    from ..runtime.onnxruntime_backend import OnnxRuntimeEngine
    from ..runtime.torch_backend import TorchEngine
    from ..training.export import export_model
    from ..training.heads import train_head
    from ..training.trainer import read_run_config
    from .analyze_latent import main as analyze

    analyze(["--run", str(run_dir), "--samples", "40", "--probe-samples", "120"])
    heads = {h: train_head(run_dir, h, steps=args.head_steps, batch_size=4, rays=128, progress=not args.quiet)
             for h in ("epe", "segmentation")}
    model_dir = args.out / "model"
    start = time.perf_counter()
    export_model(run_dir, model_dir)
    seconds = round(time.perf_counter() - start, 1)
    cfg = read_run_config(run_dir)
    item = MultiViewDataset(cfg.dataset, "test", cfg.model.num_inputs, 1, seed=cfg.seed + 1)[(0, 0)]
    to_u8 = lambda t: (t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    views, target = [to_u8(v) for v in item["input_images"]], to_u8(item["target_images"][0])
    renders = {}
    for engine in (OnnxRuntimeEngine(model_dir), TorchEngine(model_dir)):
        slsr = engine.encode(views)
        latents = engine.view_latents(slsr, target)
        renders[engine.name] = (engine.render_image(slsr, latents), engine.render(slsr, latents))
    panel = np.concatenate([target, renders["onnxruntime"][0]], axis=1)
    with atomic_write(args.out / "onnxruntime_render.png") as handle:
        Image.fromarray(panel).resize((panel.shape[1] * 4, panel.shape[0] * 4), Image.NEAREST).save(handle, format="png")
    diff = float(np.abs(renders["onnxruntime"][1] - renders["torch"][1]).max())
    print(f"export: {model_dir} in {seconds} s; ONNX Runtime render of a held-out view → "
          f"{args.out / 'onnxruntime_render.png'} (target | render), max |ORT − torch| = {diff:.2e}")
    return {"model_dir": str(model_dir), "export_seconds": seconds, "render": str(args.out / "onnxruntime_render.png"),
            "max_abs_diff_onnxruntime_vs_torch": diff, "heads": {h: str(run_dir / "heads" / f"{h}.json") for h in heads}}


def entry() -> int:
    return run(main, prog=PROG)
