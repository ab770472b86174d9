"""Helpers shared by the benchmarks: machine description and incremental JSON results."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from rust_perception.io import write_json

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_flags() -> list[str]:
    """The CPU's vector / matrix feature flags that decide bf16 and int8 speed."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return sorted(f for f in line.split(":", 1)[-1].split() if f.startswith(("avx", "amx", "fma", "f16c")))


def machine() -> dict:
    from rust_perception.precision import bf16_is_fast

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {
        "cpu_model": model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": cpu_flags(),
        "bf16_fast": bf16_is_fast("cpu"),
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


def keep(run: Path, kept: Path) -> None:
    """Copy the run's newest checkpoint, config and log into `kept` (a committed results folder,
    overwritten in place), so a fresh clone continues a budget that needs several sessions."""
    from rust_perception.io import atomic_write
    from rust_perception.training.checkpoint import list_checkpoints
    from rust_perception.training.trainer import CONFIG_FILE, METRICS_FILE

    checkpoints = list_checkpoints(run / "checkpoints")
    if not checkpoints:
        return
    kept.mkdir(parents=True, exist_ok=True)
    for source, name in ((checkpoints[-1], "checkpoint.pt"), (run / CONFIG_FILE, CONFIG_FILE),
                         (run / METRICS_FILE, METRICS_FILE)):
        with atomic_write(kept / name) as handle:
            handle.write(source.read_bytes())


def restore(run: Path, candidates: list[Path]) -> None:
    """A fresh machine: start `run` from the first kept copy (`keep`) among `candidates`, if any."""
    from rust_perception.io import atomic_write
    from rust_perception.training.checkpoint import load_checkpoint
    from rust_perception.training.trainer import CONFIG_FILE, METRICS_FILE

    kept = next((c for c in candidates if (c / "checkpoint.pt").is_file()), None)
    if run.exists() or kept is None:
        return
    step = int(load_checkpoint(kept / "checkpoint.pt")["step"])
    for name, target in (("checkpoint.pt", f"checkpoints/step_{step:07d}.pt"), (CONFIG_FILE, CONFIG_FILE),
                         (METRICS_FILE, METRICS_FILE)):
        with atomic_write(run / target) as handle:
            handle.write((kept / name).read_bytes())
    print(f"restored {run} at step {step} from {kept}")
