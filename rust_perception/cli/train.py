"""`train`: train RUST (or an SRT / UpSRT baseline) on a dataset directory; resumes a run.
Under `torchrun --nproc_per_node N` it trains with DistributedDataParallel."""

from __future__ import annotations

import json
from pathlib import Path

from ..training.config import load_train_config
from . import ArgumentParser, run

PROG = "train"


def parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Train a SceneModel (RUST, SRT, UpSRT). Rerunning the same command "
                                              "resumes from the run's newest checkpoint.")
    p.add_argument("--config", type=Path, help="training YAML (e.g. config/train_dome.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set steps=500 --set model.variant=srt (repeatable)")
    p.add_argument("--run", type=Path, required=True, help="run directory (checkpoints, TensorBoard, metrics)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ..training.trainer import Trainer, leave_distributed  # torch-heavy: only after the arguments are known good

    cfg = load_train_config(args.config, args.overrides)
    try:
        trainer = Trainer(cfg, args.run, progress=not args.quiet)
        result = trainer.train()
    finally:
        leave_distributed()
    if trainer.is_main:
        print(json.dumps(result))
    return 130 if result.get("interrupted") else 0


def entry() -> int:
    return run(main, prog=PROG)
