"""A rosbag2 recording (MCAP or sqlite3) of K camera topics → the dataset store, so that
`trainer/train.py` trains RUST on a user's own rig, unchanged.

Two passes over the bag, so memory stays bounded by a shard, not the recording:
1. header stamps only: approximate synchronisation into *captures* — each message of the first
   topic (the reference) with, from every other topic, the message whose stamp is nearest to it,
   if all lie within `sync_tolerance` (each message used once) — then *scenes* = time windows
   of `window` s every `stride` s. Windows start half a capture interval before the first
   capture, so captures at a steady rate never sit on a window edge. A scene takes
   `views / K` captures spread evenly over its window (first, last and evenly in between: the
   widest baseline the window offers); a window with fewer captures is skipped and counted.
2. decode only the chosen frames (any encoding `image_codec` knows, or CompressedImage), centre
   crop and resize to `size`, and write shards through the same writer as synthetic data.
Damaged frames — a message that does not deserialize (pass 1) or a chosen frame that does not
decode (pass 2: truncated data, a corrupt JPEG) — are skipped and counted per topic in the
manifest (`recording.bad_frames`), as `rust_offline` does: the captures are synchronised again
without them and pass 2 is rerun (identical bytes for every scene that had none).

A recording has no poses, intrinsics, labels or depth: cam2world / intrinsics / depth are NaN
and labels 255 ("unknown"); the manifest lists no annotations, so the posed variants, the heads
and the latent analysis refuse the dataset instead of training on NaN. tf is not read.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..config import require, to_dict
from ..errors import BagError
from ..image_codec import compressed_to_rgb8, image_msg_to_rgb8, resize_rgb
from .generate import check_existing
from .store import SCHEMA_VERSION, DatasetStore, record_dtype, shard_name, split_sizes, write_manifest, write_shard

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
UNKNOWN_LABEL = 255
MODEL_VIEWS = 8  # the default model's 5 inputs + 3 targets: the default --views covers them


@dataclass(frozen=True)
class RosbagConfig:
    """What `make_dataset --from-rosbag` ingests. `stride` 0 = `window`; `views` 0 = the smallest
    multiple of the topic count that gives at least 8 views."""

    bag: str
    topics: tuple[str, ...]
    window: float
    stride: float = 0.0
    views: int = 0
    size: int = 64
    sync_tolerance: float = 0.02
    test_fraction: float = 0.1
    shard_scenes: int = 64

    def __post_init__(self):
        k = len(self.topics)
        require(k >= 1 and len(set(self.topics)) == k, f"topics={list(self.topics)} must be distinct and not empty")
        require(self.window > 0, f"window={self.window} is not allowed (must be > 0 seconds)")
        require(self.stride >= 0, f"stride={self.stride} is not allowed (must be > 0 seconds)")
        if self.stride == 0:
            object.__setattr__(self, "stride", self.window)
        if self.views == 0:
            object.__setattr__(self, "views", k * -(-MODEL_VIEWS // k))
        require(self.views >= 2 and self.views % k == 0,
                f"views={self.views} is not allowed (must be >= 2 and a multiple of the {k} topics: "
                "a scene holds whole captures)")
        require(self.size % 8 == 0 and 8 <= self.size <= 512,
                f"size={self.size} is not allowed (must be a multiple of 8 between 8 and 512)")
        require(self.sync_tolerance >= 0, f"sync_tolerance={self.sync_tolerance} is not allowed (must be >= 0)")
        require(0.0 <= self.test_fraction < 1.0,
                f"test_fraction={self.test_fraction} is not allowed (must be in [0, 1))")
        require(self.shard_scenes >= 1, f"shard_scenes={self.shard_scenes} is not allowed (must be >= 1)")


def first_line(exc: Exception) -> str:
    """rosbags' and YAML's messages can span lines; a user error is one."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@contextmanager
def _open(bag: str):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not Path(bag).exists():
        raise BagError(f"rosbag2 recording {bag} does not exist")
    try:
        reader = AnyReader([Path(bag)], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # rosbags raises many types for unreadable bags; all mean "not a bag"
        raise BagError(f"{bag} is not a readable rosbag2 recording: {first_line(exc)}") from None
    try:
        yield reader
    finally:
        reader.close()


def _connections(reader, cfg: RosbagConfig) -> list[Any]:
    """One connection per requested topic, in --topics order; a missing or non-image topic is refused."""
    by_topic = {c.topic: c for c in reader.connections}
    images = sorted(t for t, c in by_topic.items() if c.msgtype in IMAGE_TYPES)
    conns = []
    for topic in cfg.topics:
        if topic not in by_topic:
            raise BagError(f"topic {topic} is not in {cfg.bag} (its image topics: {', '.join(images) or 'none'})")
        if by_topic[topic].msgtype not in IMAGE_TYPES:
            raise BagError(f"topic {topic} in {cfg.bag} carries {by_topic[topic].msgtype}, not "
                           f"sensor_msgs/msg/Image or CompressedImage")
        conns.append(by_topic[topic])
    return conns


def _messages(reader, conns, bag: str, desc: str, progress: bool):
    """(topic index, ordinal within the topic, message, or None for one that does not deserialize)
    in log-time order, with a progress bar."""
    index = {id(c): i for i, c in enumerate(conns)}
    counts = [0] * len(conns)
    with tqdm(total=sum(c.msgcount for c in conns), unit="msg", desc=desc, disable=not progress) as bar:
        try:
            for conn, _, raw in reader.messages(connections=conns):
                k = index[id(conn)]
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                except Exception:  # noqa: BLE001 - bad CDR of one message: a damaged frame, counted
                    msg = None
                yield k, counts[k], msg
                counts[k] += 1
                bar.update()
        except Exception as exc:  # truncated chunks: the recording cannot be read further
            raise BagError(f"{bag} cannot be read past message {sum(counts)}: {first_line(exc)}") from None


def synchronise(stamps: list[np.ndarray], tolerance_ns: float) -> tuple[np.ndarray, np.ndarray]:
    """Captures from per-topic header stamps (ns, in message order): (capture stamps (C,),
    message ordinals (C, K)), in time order; a capture's stamp is its reference message's."""
    order = [np.argsort(s, kind="stable") for s in stamps]
    sorted_stamps = [s[o] for s, o in zip(stamps, order)]
    used = [set() for _ in stamps]
    times, members = [], []
    for t, ref in zip(sorted_stamps[0], order[0]):
        row = [int(ref)]
        for k in range(1, len(stamps)):
            s = sorted_stamps[k]
            j = int(np.searchsorted(s, t))
            near = min((i for i in (j - 1, j) if 0 <= i < len(s)), key=lambda i: abs(int(s[i]) - int(t)), default=None)
            if near is None or abs(int(s[near]) - int(t)) > tolerance_ns or near in used[k]:
                break
            row.append(near)
        else:
            for k in range(1, len(stamps)):
                used[k].add(row[k])
            times.append(t)
            members.append([int(order[k][i]) if k else i for k, i in enumerate(row)])
    return np.array(times, np.int64), np.array(members, np.int64).reshape(-1, len(stamps))


def cut_scenes(times: np.ndarray, cfg: RosbagConfig) -> tuple[list[np.ndarray], int, int]:
    """(captures chosen per scene, windows skipped for too few captures, most captures in a window)."""
    per_scene = cfg.views // len(cfg.topics)
    period = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    first = times[0] - period / 2
    window, stride = cfg.window * 1e9, cfg.stride * 1e9
    scenes, skipped, most = [], 0, 0
    n_windows = int((times[-1] - first) // stride) + 1
    for w in range(n_windows):
        start = first + w * stride
        inside = np.flatnonzero((times >= start) & (times < start + window))
        most = max(most, len(inside))
        if len(inside) < per_scene:
            skipped += 1
        else:
            scenes.append(inside[np.round(np.linspace(0, len(inside) - 1, per_scene)).astype(int)])
    return scenes, skipped, most


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def _decode(msg) -> np.ndarray:
    """Raises ImageEncodingError (or whatever truncated data raises) for a damaged frame."""
    if msg.__msgtype__.endswith("CompressedImage"):
        return compressed_to_rgb8(msg)
    return image_msg_to_rgb8(msg)


def new_manifest(cfg: RosbagConfig, sizes: dict[str, int], stats: dict[str, int]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "rosbag",
        "source": "rosbag2",
        "image_size": [cfg.size, cfg.size],
        "views_per_scene": cfg.views,
        "annotations": [],  # a recording has no poses, intrinsics, labels or depth
        "classes": [{"id": UNKNOWN_LABEL, "name": "unknown", "color": [0, 0, 0]}],
        "conventions": "view = capture × K + camera (camera = index in generator.topics, view_position = "
                       "capture within the scene); cam2world, intrinsics: NaN = unknown (no poses: only "
                       "model variant rust trains on this); labels: 255 = unknown; depth: NaN = unknown; "
                       "scenes in time order, test = the last ones",
        "generator": to_dict(cfg),
        "recording": stats,
        "splits": {split: {"scenes": n, "shards": []} for split, n in sizes.items() if n > 0},
        "complete": False,
    }


def _plan(scenes: list[np.ndarray], members: np.ndarray, sizes: dict[str, int], cfg: RosbagConfig):
    """Shards (split, index, first scene, scenes) and where each needed message goes:
    (topic, ordinal) → [(shard, record, view)]. Scenes are in time order: test = the last ones."""
    k = len(cfg.topics)
    shards = [(split, i, start, min(cfg.shard_scenes, n - start)) for split, n in sizes.items()
              for i, start in enumerate(range(0, n, cfg.shard_scenes))]
    targets = defaultdict(list)
    offset = {"train": 0, "test": sizes["train"]}
    for s, (split, _, start, count) in enumerate(shards):
        for r in range(count):
            for position, capture in enumerate(scenes[offset[split] + start + r]):
                for camera in range(k):
                    targets[camera, int(members[capture, camera])].append((s, r, position * k + camera))
    return shards, targets


def ingest_rosbag(cfg: RosbagConfig, out: str | Path, progress: bool = True) -> DatasetStore:
    """Ingest `cfg.bag` into a dataset at `out` (a complete one made with the same settings is
    kept; an interrupted one is rewritten, with identical bytes)."""
    out = Path(out)
    existing = check_existing(out, cfg)
    if existing is not None and existing.get("complete"):
        store = DatasetStore(out)
        store.verify()
        return store
    with _open(cfg.bag) as reader:
        conns = _connections(reader, cfg)
        stamps = [{} for _ in conns]  # per topic: ordinal → header stamp, of the messages that deserialize
        bad: set[tuple[int, int]] = set()  # (topic, ordinal) of damaged frames
        for topic, ordinal, msg in _messages(reader, conns, cfg.bag, "sync", progress):
            if msg is None:
                bad.add((topic, ordinal))
            else:
                stamps[topic][ordinal] = _stamp(msg)
        empty = [cfg.topics[i] for i, s in enumerate(stamps) if not s]
        if empty:
            raise BagError(f"topic {empty[0]} in {cfg.bag} has no messages")
        while True:  # a damaged chosen frame: synchronise without it, write again
            damaged = _write(reader, conns, cfg, out, stamps, bad, progress)
            if not damaged:
                break
            bad |= damaged
    return DatasetStore(out)


def _write(reader, conns, cfg: RosbagConfig, out: Path, stamps: list[dict[int, int]], bad: set, progress: bool) -> set:
    """Synchronise the good frames, cut scenes, decode the chosen frames and write the dataset;
    returns the chosen frames that did not decode (then the dataset is left incomplete, to be
    written again without them)."""
    k = len(cfg.topics)
    good = [[o for o in sorted(s) if (topic, o) not in bad] for topic, s in enumerate(stamps)]
    times, members = synchronise([np.array([stamps[t][o] for o in good[t]], np.int64) for t in range(k)],
                                 cfg.sync_tolerance * 1e9)
    members = np.array([[good[t][i] for t, i in enumerate(row)] for row in members], np.int64).reshape(-1, k)
    if len(times) == 0:
        raise BagError(f"no synchronised capture in {cfg.bag}: the topics' stamps are never within "
                       f"--sync-tolerance {cfg.sync_tolerance} s of each other")
    scenes, skipped, most = cut_scenes(times, cfg)
    if not scenes:
        raise BagError(f"no complete scene in {cfg.bag}: a scene needs {cfg.views // k} synchronised captures "
                       f"of the {k} topics, but a {cfg.window} s window holds at most {most} "
                       "(raise --window or lower --views)")

    sizes = split_sizes(len(scenes), cfg.test_fraction)
    counts = [sum(t == topic for t, _ in bad) for topic in range(k)]
    unreadable = sum(o not in stamps[t] for t, o in bad)  # damaged beyond deserializing: not in stamps
    stats = {"messages": int(sum(len(s) for s in stamps)) + unreadable, "captures": int(len(times)),
             "scenes": len(scenes), "skipped_windows": skipped,
             "bad_frames": {topic: n for topic, n in zip(cfg.topics, counts)}}
    manifest = new_manifest(cfg, sizes, stats)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, manifest)

    shards, targets = _plan(scenes, members, sizes, cfg)
    pending = {s: count * cfg.views for s, (_, _, _, count) in enumerate(shards)}
    records, damaged = {}, set()
    for topic, ordinal, msg in _messages(reader, conns, cfg.bag, "frames", progress):
        if (topic, ordinal) not in targets:
            continue
        try:
            rgb = resize_rgb(_decode(msg), cfg.size)
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt data: count it, plan without it
            damaged.add((topic, ordinal))
            tqdm.write(f"warning: {cfg.topics[topic]}: frame {ordinal} skipped ({first_line(exc)[:200]})",
                       file=sys.stderr)
            continue
        if damaged:  # the plan changes: decode on only to find every damaged chosen frame
            continue
        for s, r, view in targets[topic, ordinal]:
            if s not in records:
                records[s] = _empty_records(cfg, shards[s])
            records[s][r]["rgb"][view] = rgb
            pending[s] -= 1
            if pending[s] == 0:
                split, index = shards[s][:2]
                entry = write_shard(out / shard_name(split, index), records.pop(s))
                manifest["splits"][split]["shards"].append(entry)
                manifest["splits"][split]["shards"].sort(key=lambda e: e["file"])
                write_manifest(out, manifest)
    if damaged:
        return damaged
    manifest["complete"] = True
    write_manifest(out, manifest)
    return set()


def _empty_records(cfg: RosbagConfig, shard: tuple[str, int, int, int]) -> np.ndarray:
    """A shard's records with everything a recording lacks marked unknown (NaN, 255, -1)."""
    k, (_, _, start, count) = len(cfg.topics), shard
    records = np.zeros(count, dtype=record_dtype(cfg.views, cfg.size, cfg.size))
    records["labels"] = UNKNOWN_LABEL
    for field in ("depth", "cam2world", "intrinsics"):
        records[field] = np.nan
    records["view_camera"] = np.tile(np.arange(k), cfg.views // k)
    records["view_position"] = np.repeat(np.arange(cfg.views // k), k)
    records["families"] = -1
    records["scene_index"] = np.arange(start, start + count)
    return records
