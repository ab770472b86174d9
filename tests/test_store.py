"""The dataset store: round trip, damage detected by shard name, atomic writes, resume after a
kill, view sampling, DataLoader workers and DistributedSampler."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from rust_perception.data.generate import generate_dataset
from rust_perception.data.store import DatasetStore, MultiViewDataset, record_dtype, write_shard
from rust_perception.data.synthetic import SyntheticConfig, generate_scene
from rust_perception.errors import DatasetError
from rust_perception.io import atomic_write

from conftest import DOME, ROOT


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_round_trip_equals_generator(dome_dir):
    store = DatasetStore(dome_dir)
    assert store.verify() == {"train": 4, "test": 2}
    for split in ("train", "test"):
        for i in range(store.num_scenes(split)):
            stored, fresh = store.scene(split, i), generate_scene(DOME, split, i)
            for key, value in fresh.items():
                np.testing.assert_array_equal(stored[key], value, err_msg=key)
    manifest = store.manifest
    assert manifest["complete"] and manifest["kind"] == "dome" and manifest["image_size"] == [32, 32]
    assert [c["name"] for c in manifest["classes"]][:2] == ["sky", "ground"]
    assert all(len(s["sha256"]) == 64 for info in manifest["splits"].values() for s in info["shards"])


def test_truncated_shard_is_named(dome_dir, tmp_path):
    root = _copy(dome_dir, tmp_path / "d")
    path = root / "train-00001.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="train-00001.npy is truncated"):
        DatasetStore(root)


def test_corrupt_and_missing_shards_are_named(dome_dir, tmp_path):
    root = _copy(dome_dir, tmp_path / "d")
    data = bytearray((root / "test-00000.npy").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "test-00000.npy").write_bytes(bytes(data))
    store = DatasetStore(root)  # same size: only the checksum can tell
    with pytest.raises(DatasetError, match="test-00000.npy is corrupt"):
        store.verify()
    (root / "train-00000.npy").unlink()
    with pytest.raises(DatasetError, match="train-00000.npy is missing"):
        DatasetStore(root)


def test_bad_manifest_is_a_clear_error(dome_dir, tmp_path):
    root = _copy(dome_dir, tmp_path / "d")
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="manifest.json is corrupt"):
        DatasetStore(root)
    with pytest.raises(DatasetError, match="does not exist"):
        DatasetStore(tmp_path / "nowhere")


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "shard.npy"
    records = np.zeros(2, dtype=record_dtype(2, 8, 8))
    entry = write_shard(target, records)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == before and entry["bytes"] == len(before)
    assert [p.name for p in tmp_path.iterdir()] == ["shard.npy"]


def test_killed_generation_resumes_to_identical_dataset(tmp_path):
    """SIGKILL make_dataset after its first shard, rerun the same command: the listed shards
    verify at every point and the finished dataset equals an uninterrupted one."""
    args = ["--kind", "dome", "--scenes", "24", "--views", "4", "--size", "32", "--shard-scenes", "2",
            "--workers", "1", "--quiet"]
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(ROOT / "trainer" / "make_dataset.py"), *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        manifest = out / "manifest.json"
        if manifest.is_file() and json.loads(manifest.read_text())["splits"]["train"]["shards"]:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"], "the kill came too late to test resuming"
    with pytest.raises(DatasetError, match="incomplete"):
        DatasetStore(out)
    DatasetStore(out, require_complete=False).verify()  # every shard the manifest lists is whole
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    fresh = generate_dataset(SyntheticConfig(kind="dome", scenes=24, views=4, size=32, shard_scenes=2),
                             tmp_path / "fresh", workers=1, progress=False)
    resumed = DatasetStore(out)
    resumed.verify()
    assert resumed.manifest["splits"] == fresh.manifest["splits"]


def test_views_are_distinct_and_reproducible(dome_dir):
    ds = MultiViewDataset(dome_dir, "train", num_inputs=5, num_targets=3, seed=1)
    store = DatasetStore(dome_dir)
    sample = ds[0]
    assert sample["input_images"].shape == (5, 3, 32, 32) and sample["target_images"].shape == (3, 3, 32, 32)
    assert sample["input_images"].dtype == torch.float32 and 0 <= sample["input_images"].min()
    assert sample["input_images"].max() <= 1 and sample["target_labels"].shape == (3, 32, 32)
    assert sample["input_cam2world"].shape == (5, 4, 4) and sample["target_intrinsics"].shape == (3, 3, 3)
    draws = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            views = torch.cat([s["input_views"], s["target_views"]]).tolist()
            assert len(set(views)) == 8, "input and target views must be distinct"
            draws.add(tuple(views))
            np.testing.assert_array_equal(
                (s["target_images"] * 255).round().byte().numpy(),
                store.scene("train", i)["rgb"][s["target_views"].numpy()].transpose(0, 3, 1, 2),
            )
    assert len(draws) > 4, "view choice must vary with epoch and scene"
    ds.set_epoch(2)
    again = MultiViewDataset(dome_dir, "train", num_inputs=5, num_targets=3, seed=1)
    again.set_epoch(2)
    np.testing.assert_array_equal(ds[1]["input_views"], again[1]["input_views"])
    with pytest.raises(DatasetError, match="fewer than"):
        MultiViewDataset(dome_dir, "train", num_inputs=6, num_targets=3)
    with pytest.raises(DatasetError, match="no split"):
        MultiViewDataset(dome_dir, "val")


def test_dataloader_workers_and_distributed_sampler(dome_dir):
    ds = MultiViewDataset(dome_dir, "train", num_inputs=3, num_targets=2)
    direct = [ds[i]["input_images"] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    for i, batch in enumerate(loader):
        torch.testing.assert_close(batch["input_images"][0], direct[i])
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(1)
        indices = list(sampler)
        seen += indices
        for batch in DataLoader(ds, batch_size=2, sampler=sampler, num_workers=0):
            assert batch["input_images"].shape == (2, 3, 3, 32, 32)
    assert sorted(seen) == list(range(len(ds)))
