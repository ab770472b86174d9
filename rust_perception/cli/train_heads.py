"""`train_heads`: train a read-out head on a frozen RUST run — `epe` (relative camera pose from
two latent poses, paper §4.2.1) or `segmentation` (per-pixel classes, §4.3) — then evaluate it
on held-out scenes (RUN/heads/<head>.json; segmentation also writes an overlay figure)."""

from __future__ import annotations

import json
from pathlib import Path

from . import ArgumentParser, run

PROG = "train_heads"


def parser() -> ArgumentParser:
    from ..model.heads import HEADS

    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run directory of a rust model")
    p.add_argument("--head", choices=HEADS, required=True)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--rays", type=int, default=512, help="segmentation: labelled pixels per target and step")
    p.add_argument("--layers", type=int, help="head transformer blocks (default 2; a segmentation head started "
                   "from the decoder has the decoder's)")
    p.add_argument("--from-scratch", action="store_true",
                   help="segmentation: start from random weights instead of the RGB decoder's")
    p.add_argument("--balance", type=float,
                   help="segmentation: weight classes by frequency^-BALANCE (default 0.5; 0 plain cross-entropy, 1 inverse)")
    p.add_argument("--eval-only", action="store_true", help="evaluate the saved head without training")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.rays < 1 or (args.layers is not None and args.layers < 1):
        parser().error("--steps, --batch, --rays and --layers must be >= 1")
    if (args.from_scratch or args.balance is not None) and (args.head != "segmentation" or args.eval_only):
        parser().error("--from-scratch and --balance apply to training a --head segmentation only")
    from ..model.heads import HeadConfig

    balance = HeadConfig.balance if args.balance is None else args.balance  # HeadConfig checks its range
    from ..training.heads import evaluate_head, train_head

    if args.eval_only:
        metrics = evaluate_head(args.run, args.head)
    else:
        metrics = train_head(args.run, args.head, args.steps, args.batch, args.lr, args.rays, args.layers,
                             from_decoder=not args.from_scratch, balance=balance)
    print(json.dumps(metrics))
    return 0


def entry() -> int:
    return run(main, prog=PROG)
