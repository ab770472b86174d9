#!/usr/bin/env python3
"""Generate a synthetic multi-camera dataset or ingest a rosbag2 recording: `python trainer/make_dataset.py --help`."""

import sys

from rust_perception.cli.make_dataset import entry

if __name__ == "__main__":
    sys.exit(entry())
