"""Writing a synthetic dataset to a store: parallel over shards, resumable, with progress."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..config import to_dict
from ..errors import DatasetError
from .store import MANIFEST, SCHEMA_VERSION, DatasetStore, read_manifest, record_dtype, shard_name, write_manifest, \
    write_shard
from .synthetic import CLASSES, SyntheticConfig, generate_scene


def new_manifest(cfg: SyntheticConfig) -> dict[str, Any]:
    sizes = cfg.split_sizes()
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": cfg.kind,
        "source": "synthetic",
        "image_size": [cfg.size, cfg.size],
        "views_per_scene": cfg.views,
        "annotations": ["cam2world", "intrinsics", "labels", "depth"],
        "classes": [{"id": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(CLASSES[cfg.kind])],
        "conventions": "cam2world: optical frame (x right, y down, z forward) to world (z up); "
                       "intrinsics: OpenCV, pixel centres at integers; depth: z-depth in metres, inf = sky",
        "generator": to_dict(cfg),
        "splits": {split: {"scenes": n, "shards": []} for split, n in sizes.items() if n > 0},
        "complete": False,
    }


def _plan(cfg: SyntheticConfig) -> list[tuple[str, int, int, int]]:
    """(split, shard index, first scene, scene count) for every shard of the dataset."""
    plan = []
    for split, n in cfg.split_sizes().items():
        for shard, start in enumerate(range(0, n, cfg.shard_scenes)):
            plan.append((split, shard, start, min(cfg.shard_scenes, n - start)))
    return plan


def make_shard(cfg: SyntheticConfig, out: Path, split: str, shard: int, start: int, count: int,
               threads: int | None = None) -> tuple[str, dict[str, Any]]:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    records = np.zeros(count, dtype=record_dtype(cfg.views, cfg.size, cfg.size))
    for i in range(count):
        for name, value in generate_scene(cfg, split, start + i).items():
            records[i][name] = value
    return split, write_shard(out / shard_name(split, shard), records)


def _make_shard_star(args):
    return make_shard(*args)


def check_existing(out: Path, cfg) -> dict[str, Any] | None:
    """The manifest of a dataset at `out` made with the same settings (`cfg`: the generator's or
    the rosbag ingester's dataclass), or None for a fresh dir; anything else is never overwritten."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise DatasetError(f"--out {out} exists and is not a directory")
    if not (out / MANIFEST).is_file():
        if any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise DatasetError(f"--out {out} is a non-empty directory that is not a dataset; refusing to write into it")
        return None
    manifest = read_manifest(out)
    old, new = manifest.get("generator", {}), to_dict(cfg)
    for key in new:
        if old.get(key) != new[key]:
            raise DatasetError(
                f"{out} holds a dataset made with {key}={old.get(key)!r}, not {new[key]!r}; "
                "choose another --out or delete it"
            )
    return manifest


def generate_dataset(cfg: SyntheticConfig, out: str | Path, workers: int = 0, progress: bool = True) -> DatasetStore:
    """Generate (or finish generating) the dataset described by `cfg` into `out`.

    `workers`: processes rendering shards in parallel (0 = one per CPU core). Shards already in
    the manifest with a valid checksum are kept, so an interrupted run resumes where it stopped.
    """
    out = Path(out)
    existing = check_existing(out, cfg)
    manifest = new_manifest(cfg)
    if existing is not None:
        for split, info in existing["splits"].items():
            good = [s for s in info["shards"] if (out / s["file"]).is_file()
                    and (out / s["file"]).stat().st_size == s["bytes"]]
            manifest["splits"][split]["shards"] = good
        if existing.get("complete"):
            manifest["complete"] = True
    out.mkdir(parents=True, exist_ok=True)
    if manifest["complete"]:
        store = DatasetStore(out)
        store.verify()
        return store
    done = {(split, s["file"]) for split, info in manifest["splits"].items() for s in info["shards"]}
    todo = [task for task in _plan(cfg) if (task[0], shard_name(task[0], task[1])) not in done]
    write_manifest(out, manifest)

    total = cfg.scenes
    finished = total - sum(task[3] for task in todo)
    workers = min(workers or os.cpu_count() or 1, len(todo)) if todo else 1
    bar = tqdm(total=total, initial=finished, unit="scene", desc=f"{cfg.kind} {cfg.size}px", disable=not progress)
    pool = None
    try:
        if workers <= 1:
            results = (make_shard(cfg, out, *task) for task in todo)
        else:
            pool = mp.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_make_shard_star, [(cfg, out, *task, 1) for task in todo])
        for split, entry in results:
            shards = manifest["splits"][split]["shards"]
            shards.append(entry)
            shards.sort(key=lambda s: s["file"])
            write_manifest(out, manifest)
            bar.update(entry["scenes"])
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    manifest["complete"] = True
    write_manifest(out, manifest)
    return DatasetStore(out)
