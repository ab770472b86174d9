#!/usr/bin/env python3
"""What RUST's latent poses encode: `python trainer/analyze_latent.py --run runs/x`."""

import sys

from rust_perception.cli.analyze_latent import entry

if __name__ == "__main__":
    sys.exit(entry())
