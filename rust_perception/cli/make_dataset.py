"""`make_dataset`: generate a synthetic multi-camera dataset, or verify one."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import from_dict, read_yaml
from ..data.generate import generate_dataset
from ..data.preview import contact_sheet, save_png
from ..data.store import DatasetStore
from ..data.synthetic import KINDS, SyntheticConfig
from . import ArgumentParser, run

PROG = "make_dataset"
# command-line flag → SyntheticConfig field
FLAGS = {"kind": "kind", "scenes": "scenes", "views": "views", "size": "size", "seed": "seed",
         "test_fraction": "test_fraction", "shard_scenes": "shard_scenes", "hfov": "hfov_deg"}


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Generate procedural multi-camera scenes into a sharded dataset store.")
    p.add_argument("--config", help="YAML file with SyntheticConfig fields (flags below override it)")
    p.add_argument("--kind", choices=KINDS, help="dome (MultiShapeNet-like) or street (6-camera rig); default dome")
    p.add_argument("--scenes", type=int, help="number of scenes, train + test (default 200)")
    p.add_argument("--views", type=int, help="views per scene (default: dome 10, street 18 = 3 rig positions × 6)")
    p.add_argument("--size", type=int, help="image height = width in pixels, multiple of 8 (default 64)")
    p.add_argument("--seed", type=int, help="random seed (default 0); same arguments → identical files")
    p.add_argument("--test-fraction", type=float, help="fraction of scenes in the test split (default 0.1)")
    p.add_argument("--shard-scenes", type=int, help="scenes per shard file (default 64)")
    p.add_argument("--hfov", type=float, help="horizontal field of view in degrees (default: dome 55, street 75)")
    p.add_argument("--out", type=Path, help="dataset directory to create (or to resume)")
    p.add_argument("--preview", type=Path, help="also write a contact sheet PNG of training scenes")
    p.add_argument("--workers", type=int, default=0, help="parallel processes (default: one per CPU core)")
    p.add_argument("--verify", type=Path, metavar="DIR", help="only verify an existing dataset's shards and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args) -> SyntheticConfig:
    data = read_yaml(args.config) if args.config else {}
    for flag, field in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            data[field] = value
    return from_dict(SyntheticConfig, data)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.verify:
        counts = DatasetStore(args.verify).verify()
        print(f"{args.verify}: OK ({', '.join(f'{n} {s} scenes' for s, n in counts.items())})")
        return 0
    if args.out is None:
        parser().error("the following arguments are required: --out (or --verify DIR)")
    if args.workers < 0:
        parser().error(f"argument --workers: must be >= 0, got {args.workers}")
    cfg = config_from_args(args)
    start = time.perf_counter()
    store = generate_dataset(cfg, args.out, workers=args.workers, progress=not args.quiet)
    seconds = time.perf_counter() - start
    summary = {"out": str(args.out), "kind": cfg.kind, "scenes": {s: store.num_scenes(s) for s in store.splits},
               "views_per_scene": cfg.views, "size": cfg.size, "seconds": round(seconds, 2)}
    if args.preview:
        summary["preview"] = str(save_png(contact_sheet(store), args.preview))
    print(json.dumps(summary))
    return 0


def entry() -> int:
    return run(main, prog=PROG)
