"""Helpers shared by the benchmarks: machine description and incremental JSON results."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from rust_perception.io import write_json

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


class Results:
    """A JSON results file rewritten (atomically) after every measurement, so a benchmark cut
    short still leaves what it measured."""

    def __init__(self, name: str, **header):
        self.path = RESULTS / name
        self.data = {"machine": machine(), **header, "results": []}

    def add(self, **row) -> None:
        self.data["results"].append(row)
        self.save()

    def set(self, **fields) -> None:
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)
