#!/usr/bin/env python3
"""Train a read-out head on a frozen RUST run: `python trainer/train_heads.py --run runs/x --head epe`."""

import sys

from rust_perception.cli.train_heads import entry

if __name__ == "__main__":
    sys.exit(entry())
