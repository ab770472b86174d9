#!/usr/bin/env python3
"""Export a trained RUST run for the node and the engines: `python trainer/export.py --run runs/x --out models/x`."""

import sys

from rust_perception.cli.export import entry

if __name__ == "__main__":
    sys.exit(entry())
