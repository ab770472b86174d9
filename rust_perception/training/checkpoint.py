"""Checkpoints: written atomically, loaded with weights_only=True, corrupt ones skipped with a
warning in favour of the previous one."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..io import atomic_write

FORMAT = 1
PATTERN = re.compile(r"step_(\d+)\.pt$")


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    path = Path(directory) / f"step_{step:07d}.pt"
    with atomic_write(path) as handle:
        torch.save({"format": FORMAT, "step": step, **state}, handle)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    if not Path(directory).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(directory).iterdir() if (m := PATTERN.search(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage, unpickling refusal: all mean "unusable"
        raise UserError(f"checkpoint {path} is corrupt or not a rust_perception checkpoint "
                        f"({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise UserError(f"checkpoint {path} is not a rust_perception checkpoint of format {FORMAT}")
    return state


def latest_checkpoint(directory: Path) -> dict[str, Any] | None:
    """The newest loadable checkpoint; corrupt newer ones are reported and skipped."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return load_checkpoint(path)
        except UserError as exc:
            print(f"warning: {exc}; trying the previous one", file=sys.stderr)
    return None
