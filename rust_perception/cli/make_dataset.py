"""`make_dataset`: generate a synthetic multi-camera dataset, ingest a rosbag2 recording, or
verify a dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import from_dict, read_yaml
from ..data.generate import generate_dataset
from ..data.preview import contact_sheet, save_png
from ..data.rosbag import RosbagConfig, ingest_rosbag
from ..data.store import DatasetStore
from ..data.synthetic import KINDS, SyntheticConfig
from . import ArgumentParser, run

PROG = "make_dataset"
# command-line flag → SyntheticConfig field
FLAGS = {"kind": "kind", "scenes": "scenes", "views": "views", "size": "size", "seed": "seed",
         "test_fraction": "test_fraction", "shard_scenes": "shard_scenes", "hfov": "hfov_deg"}
# flags that only synthetic data / only a recording takes
SYNTHETIC_ONLY = ("config", "kind", "scenes", "seed", "hfov", "preview")
ROSBAG_ONLY = ("topics", "window", "stride", "sync_tolerance")


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Generate procedural multi-camera scenes, or ingest a rosbag2 "
                                              "recording, into a sharded dataset store.")
    p.add_argument("--config", help="YAML file with SyntheticConfig fields (flags below override it)")
    p.add_argument("--kind", choices=KINDS, help="dome (MultiShapeNet-like) or street (6-camera rig); default dome")
    p.add_argument("--scenes", type=int, help="number of scenes, train + test (default 200)")
    p.add_argument("--views", type=int, help="views per scene (default: dome 10, street 18 = 3 rig positions × 6; "
                                             "rosbag: the smallest multiple of the topic count >= 8)")
    p.add_argument("--size", type=int, help="image height = width in pixels, multiple of 8 (default 64; "
                                            "recorded frames are centre-cropped and resized)")
    p.add_argument("--seed", type=int, help="random seed (default 0); same arguments → identical files")
    p.add_argument("--test-fraction", type=float, help="fraction of scenes in the test split (default 0.1)")
    p.add_argument("--shard-scenes", type=int, help="scenes per shard file (default 64)")
    p.add_argument("--hfov", type=float, help="horizontal field of view in degrees (default: dome 55, street 75)")
    p.add_argument("--out", type=Path, help="dataset directory to create (or to resume)")
    p.add_argument("--preview", type=Path, help="also write a contact sheet PNG of training scenes")
    p.add_argument("--workers", type=int, default=0, help="parallel processes (default: one per CPU core)")
    p.add_argument("--from-rosbag", metavar="REC", help="ingest this rosbag2 recording (MCAP or sqlite3 directory)")
    p.add_argument("--topics", nargs="+", metavar="T", help="rosbag: camera topics (Image or CompressedImage)")
    p.add_argument("--window", type=float, metavar="SECONDS", help="rosbag: length of a scene in seconds")
    p.add_argument("--stride", type=float, metavar="SECONDS", help="rosbag: start of one scene to the next "
                                                                   "(default: --window)")
    p.add_argument("--sync-tolerance", type=float, metavar="SECONDS",
                   help="rosbag: most a camera's stamp may differ from the first topic's (default 0.02)")
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


def rosbag_config_from_args(args) -> RosbagConfig:
    given = [flag for flag in SYNTHETIC_ONLY if getattr(args, flag) is not None]
    if given:
        parser().error(f"--{given[0]} is only for synthetic data, not --from-rosbag")
    if not args.topics or args.window is None:
        parser().error("--from-rosbag needs --topics and --window")
    optional = {"stride": args.stride, "views": args.views, "size": args.size, "sync_tolerance": args.sync_tolerance,
                "test_fraction": args.test_fraction, "shard_scenes": args.shard_scenes}
    return RosbagConfig(bag=args.from_rosbag, topics=tuple(args.topics), window=args.window,
                        **{k: v for k, v in optional.items() if v is not None})


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
    start = time.perf_counter()
    if args.from_rosbag:
        store = ingest_rosbag(rosbag_config_from_args(args), args.out, progress=not args.quiet)
    else:
        given = [flag for flag in ROSBAG_ONLY if getattr(args, flag) is not None]
        if given:
            parser().error(f"--{given[0].replace('_', '-')} is only for --from-rosbag")
        store = generate_dataset(config_from_args(args), args.out, workers=args.workers, progress=not args.quiet)
    seconds = time.perf_counter() - start
    summary = {"out": str(args.out), "kind": store.kind, "scenes": {s: store.num_scenes(s) for s in store.splits},
               "views_per_scene": store.views, "size": store.height, "seconds": round(seconds, 2)}
    if args.from_rosbag:
        summary["recording"] = store.manifest["recording"]
    if args.preview:
        summary["preview"] = str(save_png(contact_sheet(store), args.preview))
    print(json.dumps(summary))
    return 0


def entry() -> int:
    return run(main, prog=PROG)
