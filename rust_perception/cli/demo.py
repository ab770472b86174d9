"""`rust_demo`: the README's main job on the embedded default — nothing to download.

Today: generate a small dome and a small street-rig dataset, verify them and write contact
sheets. Later stages (train → evaluate → export → offline node) extend this same command.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..data.generate import generate_dataset
from ..data.preview import contact_sheet, save_png
from ..data.synthetic import SyntheticConfig
from ..io import write_json
from . import ArgumentParser, run

PROG = "demo"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Run the rust_perception pipeline end to end on generated data.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    p.add_argument("--scenes", type=int, default=40, help="scenes per dataset (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
    write_json(args.out / "demo.json", report)
    return 0


def entry() -> int:
    return run(main, prog=PROG)
