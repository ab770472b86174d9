"""Where TensorRT plans (and ONNX Runtime's TensorRT engine caches) live, and what names them.

A plan is only valid for the exact GPU model (compute capability and SM count: every Orin module
reports "Orin"), CUDA and TensorRT versions, builder settings (precision, pixel profile,
workspace, FP32 encoding), graph and builder code it was made from, so all of these go into its
key. The cache lives in MODEL_DIR/tensorrt when that is writable, else in the user's cache
directory (a read-only install); the newest KEEP plans per graph are kept, older ones deleted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import __version__
from ..errors import UserError

log = logging.getLogger(__name__)
# bump when the builder code changes what a plan contains (network flags, precision constraints)
BUILDER_VERSION = 2
KEEP = 3


@dataclass(frozen=True)
class BuildSettings:
    """Everything of ours that changes a built plan."""

    fp16: bool
    fp32_encoding: bool  # positional encoding + first query layer pinned to FP32 under FP16
    pixel_profile: tuple[int, int, int]
    workspace_bytes: int


def plan_key(graph_sha256: str, device: dict, tensorrt_version: str, settings: BuildSettings) -> dict:
    """The full key (kept beside each plan as JSON, so a stale plan can be explained)."""
    return {"graph_sha256": graph_sha256, "device": dict(device), "tensorrt": tensorrt_version,
            "settings": asdict(settings), "builder_version": BUILDER_VERSION, "package_version": __version__}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def user_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rust_perception" / "tensorrt"


def cache_dir(model_dir: Path, fingerprint: str, override: str | Path | None = None) -> Path:
    """The (created) cache directory: `override` if given, else MODEL_DIR/tensorrt, or, when
    that is not writable (a read-only install), the user's cache keyed by the export."""
    if override is not None:
        if not _writable(Path(override)):
            raise UserError(f"TensorRT cache directory {override} cannot be created or written")
        return Path(override)
    preferred = Path(model_dir) / "tensorrt"
    if _writable(preferred):
        return preferred
    fallback = user_cache_root() / fingerprint[:20]
    if not _writable(fallback):
        raise UserError(f"neither {preferred} nor {fallback} is writable for TensorRT caches (set cache_dir)")
    log.info("%s is not writable; TensorRT caches go to %s", preferred, fallback)
    return fallback


def plan_path(directory: Path, graph: str, key: dict) -> Path:
    return Path(directory) / f"{graph}-{key_digest(key)}.plan"


def prune(directory: Path, graph: str, keep: int = KEEP) -> list[Path]:
    """Delete all but the `keep` most recently used plans of `graph` (and their key files)."""
    plans = sorted(Path(directory).glob(f"{graph}-*.plan"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in plans[keep:]:
        for path in (old, old.with_suffix(".json")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(old)
    if removed:
        log.info("removed %d old TensorRT plan(s) of %s from %s", len(removed), graph, directory)
    return removed
