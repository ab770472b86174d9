#!/usr/bin/env python3
"""Evaluate a training run on held-out scenes: `python trainer/evaluate.py --run runs/x`."""

import sys

from rust_perception.cli.evaluate import entry

if __name__ == "__main__":
    sys.exit(entry())
