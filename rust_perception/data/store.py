"""Sharded on-disk multi-view dataset: shards of fixed-size scene records + a JSON manifest.

Layout of a dataset directory:
    manifest.json           schema version, kind, image size, views per scene, class table,
                            splits → shard list (file, scenes, bytes, sha256), generator settings
    train-00000.npy ...     one NumPy structured array per shard, one record per scene
    test-00000.npy ...

A record holds every view of a scene (`record_dtype`), so a shard is a plain `.npy` file that
NumPy memory-maps: random access to one scene reads only that scene's bytes, any number of
DataLoader workers or DDP ranks can read concurrently, and no custom binary format is involved.
Shards and the manifest are written atomically (temp + rename); the manifest lists a shard
only after the shard is complete on disk, so a killed writer never leaves a listed shard that
fails to verify, and a rerun resumes from the shards already done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError
from ..io import atomic_write, sha256_file, write_json

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MAX_FAMILIES = 32


def record_dtype(views: int, height: int, width: int) -> np.dtype:
    """One scene: all its views and their annotations."""
    return np.dtype(
        [
            ("rgb", np.uint8, (views, height, width, 3)),
            ("labels", np.uint8, (views, height, width)),  # semantic class per pixel
            ("depth", np.float16, (views, height, width)),  # z-depth in metres, inf = sky
            ("cam2world", np.float32, (views, 4, 4)),  # optical frame → world (rust_perception.geometry)
            ("intrinsics", np.float32, (views, 3, 3)),
            ("view_camera", np.int16, (views,)),  # rig camera index (-1: not a rig)
            ("view_position", np.int16, (views,)),  # rig position index along the path (-1: n/a)
            ("families", np.int16, (MAX_FAMILIES,)),  # object families in the scene, -1 padded
            ("scene_index", np.int32),
        ]
    )


def split_sizes(scenes: int, test_fraction: float) -> dict[str, int]:
    """Scenes per split: the test split gets at least one scene when asked for and possible."""
    test = int(round(scenes * test_fraction))
    if test_fraction > 0 and scenes >= 2:
        test = min(max(test, 1), scenes - 1)
    return {"train": scenes - test, "test": test}


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.npy"


def write_shard(path: Path, records: np.ndarray) -> dict[str, Any]:
    """Atomically write one shard; returns its manifest entry."""
    with atomic_write(path) as handle:
        np.save(handle, records, allow_pickle=False)
    return {"file": path.name, "scenes": int(len(records)), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    write_json(Path(root) / MANIFEST, manifest)


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not Path(root).is_dir():
        raise DatasetError(f"dataset directory {root} does not exist")
    if not path.is_file():
        raise DatasetError(f"{root} is not a dataset: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is corrupt: {exc}") from None
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if version != SCHEMA_VERSION:
        raise DatasetError(f"{path} has schema version {version!r}; this rust_perception reads version {SCHEMA_VERSION}")
    return manifest


class DatasetStore:
    """Read access to a dataset directory; opening checks that every listed shard is present
    with the right size (cheap), `verify()` also checks every checksum (reads everything)."""

    def __init__(self, root: str | Path, require_complete: bool = True):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if require_complete and not self.manifest.get("complete", False):
            raise DatasetError(
                f"dataset {self.root} is incomplete (its writer was interrupted); "
                "rerun the same make_dataset command to finish it"
            )
        m = self.manifest
        self.kind: str = m["kind"]
        self.height, self.width = m["image_size"]
        self.views: int = m["views_per_scene"]
        self.classes: list[dict[str, Any]] = m["classes"]
        self.dtype = record_dtype(self.views, self.height, self.width)
        self._offsets: dict[str, np.ndarray] = {}
        for split, info in m["splits"].items():
            counts = [s["scenes"] for s in info["shards"]]
            self._offsets[split] = np.cumsum([0] + counts)
        problems = [p for p in self._shard_problems(checksums=False)]
        if problems:
            raise DatasetError(f"dataset {self.root}: " + "; ".join(problems)
                               + f" (check every shard: make_dataset --verify {self.root})")
        self._maps: dict[str, np.ndarray] = {}

    # pickling (DataLoader workers, spawn) carries paths, never open memory maps
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    def has(self, annotation: str) -> bool:
        """Whether the views carry `annotation` (cam2world, intrinsics, labels, depth); a
        recording has none of them, and their fields hold NaN / 255 = unknown."""
        return annotation in self.manifest.get("annotations", [])

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    def num_scenes(self, split: str) -> int:
        if split not in self._offsets:
            raise DatasetError(f"dataset {self.root} has no split {split!r} (has: {', '.join(self.splits)})")
        return int(self._offsets[split][-1])

    def _shard(self, split: str, file: str) -> np.ndarray:
        key = f"{split}/{file}"
        if key not in self._maps:
            path = self.root / file
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DatasetError(f"shard {path} cannot be read: {exc}") from None
            if array.dtype != self.dtype:
                raise DatasetError(f"shard {path} holds records of another layout than {MANIFEST} describes")
            self._maps[key] = array
        return self._maps[key]

    def record(self, split: str, index: int) -> np.void:
        """Scene `index` of `split` as a memory-mapped record (fields are read lazily)."""
        n = self.num_scenes(split)
        if not 0 <= index < n:
            raise IndexError(f"scene {index} out of range for split {split!r} with {n} scenes")
        offsets = self._offsets[split]
        shard = int(np.searchsorted(offsets, index, side="right") - 1)
        entry = self.manifest["splits"][split]["shards"][shard]
        return self._shard(split, entry["file"])[index - offsets[shard]]

    def scene(self, split: str, index: int) -> dict[str, np.ndarray]:
        """Scene `index` of `split`, every field copied into memory."""
        rec = self.record(split, index)
        return {name: np.array(rec[name]) for name in self.dtype.names}

    def _shard_problems(self, checksums: bool):
        for info in self.manifest["splits"].values():
            for entry in info["shards"]:
                path = self.root / entry["file"]
                if not path.is_file():
                    yield f"shard {entry['file']} is missing"
                elif path.stat().st_size != entry["bytes"]:
                    yield (f"shard {entry['file']} is truncated or overwritten "
                           f"({path.stat().st_size} bytes, expected {entry['bytes']})")
                elif checksums and sha256_file(path) != entry["sha256"]:
                    yield f"shard {entry['file']} is corrupt (sha256 mismatch)"

    def verify(self) -> dict[str, int]:
        """Check every shard's presence, size and sha256; raise naming every bad shard."""
        problems = list(self._shard_problems(checksums=True))
        if problems:
            raise DatasetError(f"dataset {self.root}: " + "; ".join(problems))
        return {split: self.num_scenes(split) for split in self.splits}


class MultiViewDataset(torch.utils.data.Dataset):
    """Scenes as training samples: N input views and M target views, all distinct, drawn at
    random per scene (reproducibly from seed, epoch and scene index).

    Works with DataLoader workers (each opens its own memory maps) and with
    `torch.utils.data.DistributedSampler` (map-style; call `set_epoch` on both). An item may
    also be asked for as `(index, draw)`, which fixes the view draw without shared state — the
    trainer's `StepBatchSampler` does that so every step's data is a function of (seed, step).
    """

    def __init__(self, root: str | Path, split: str = "train", num_inputs: int = 5, num_targets: int = 3,
                 seed: int = 0):
        self.store = DatasetStore(root)
        self.split, self.num_inputs, self.num_targets, self.seed = split, num_inputs, num_targets, seed
        self.epoch = 0
        self.length = self.store.num_scenes(split)
        if num_inputs < 1 or num_targets < 0:
            raise DatasetError(f"need at least one input view (got {num_inputs} inputs, {num_targets} targets)")
        if num_inputs + num_targets > self.store.views:
            raise DatasetError(
                f"dataset {root} has {self.store.views} views per scene, fewer than the "
                f"{num_inputs} inputs + {num_targets} targets asked for"
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def choose_views(self, index: int, draw: int | None = None) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch if draw is None else draw, index])
        return rng.choice(self.store.views, self.num_inputs + self.num_targets, replace=False)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, draw = item if isinstance(item, tuple) else (item, None)
        rec = self.store.record(self.split, index)
        views = self.choose_views(index, draw)

        def take(name: str) -> torch.Tensor:  # only the chosen views are read from disk
            return torch.from_numpy(np.ascontiguousarray(rec[name][views]))

        images = take("rgb").permute(0, 3, 1, 2).float() / 255.0
        n = self.num_inputs
        cam2world, intrinsics, labels = take("cam2world"), take("intrinsics"), take("labels").long()
        rig_camera, rig_position = take("view_camera").long(), take("view_position").long()
        return {
            "input_images": images[:n],
            "target_images": images[n:],
            "input_cam2world": cam2world[:n],
            "target_cam2world": cam2world[n:],
            "input_intrinsics": intrinsics[:n],
            "target_intrinsics": intrinsics[n:],
            "input_labels": labels[:n],
            "target_labels": labels[n:],
            "input_rig_camera": rig_camera[:n],  # street rig camera index / position index (-1: dome)
            "target_rig_camera": rig_camera[n:],
            "input_rig_position": rig_position[:n],
            "target_rig_position": rig_position[n:],
            "input_views": torch.from_numpy(views[:n]),
            "target_views": torch.from_numpy(views[n:]),
            "scene_index": torch.tensor(index),
        }


def rank_rows(batch_size: int, rank: int, world_size: int) -> range:
    """The positions in each step's global batch that DDP rank `rank` trains on."""
    return range(rank, batch_size, world_size)


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches for training steps `start`..`total`-1: step s draws `batch_size` scenes and their
    views from (seed, s) alone, so a resumed run sees exactly the data an uninterrupted one would.
    With `world_size` > 1 each rank takes its own `rank_rows` of the global batch (DDP)."""

    def __init__(self, num_scenes: int, batch_size: int, seed: int, start: int, total: int,
                 rank: int = 0, world_size: int = 1):
        self.num_scenes, self.batch_size, self.seed = num_scenes, batch_size, seed
        self.start, self.total, self.rank, self.world_size = start, total, rank, world_size

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self):
        for step in range(self.start, self.total):
            rng = np.random.default_rng([self.seed, step])
            scenes = rng.choice(self.num_scenes, self.batch_size, replace=self.num_scenes < self.batch_size)
            yield [(int(scenes[row]), step) for row in rank_rows(self.batch_size, self.rank, self.world_size)]
