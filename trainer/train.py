#!/usr/bin/env python3
"""Train RUST or a posed baseline: `python trainer/train.py --config config/train_dome.yaml --run runs/x`."""

import sys

from rust_perception.cli.train import entry

if __name__ == "__main__":
    sys.exit(entry())
