#!/usr/bin/env python3
"""The README's main job: `python trainer/demo.py` (see `--help`)."""

import sys

from rust_perception.cli.demo import entry

if __name__ == "__main__":
    sys.exit(entry())
