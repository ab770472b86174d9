"""The classical pose baseline of paper Table 2: COLMAP structure-from-motion (via pycolmap) on
k views of a scene, and the relative pose of a fixed view pair after similarity alignment.

COLMAP is given the true pinhole intrinsics (one shared camera, not refined) — more than RUST
gets — and SIFT with a low peak threshold, since our views are small. A reconstruction is known
only up to a similarity, so camera centres are aligned to ground truth (Umeyama) before the
pair's relative position is read off, as the paper does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .geometry import similarity_transform


def run_sfm(images: np.ndarray, intrinsics: np.ndarray, workdir: str | Path | None = None) -> dict[int, np.ndarray]:
    """Incremental SfM on `images` (V, H, W, 3) uint8 sharing pinhole `intrinsics` (3, 3).
    Returns {view index: cam2world 4×4 in COLMAP's frame} for the registered views of the
    largest reconstruction ({} when COLMAP reconstructs nothing)."""
    import pycolmap
    from PIL import Image

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        names = [f"{i:03d}.png" for i in range(len(images))]
        for name, img in zip(names, images):
            Image.fromarray(img).save(tmp / "images" / name)
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "PINHOLE"
        fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
        reader.camera_params = f"{fx},{fy},{cx + 0.5},{cy + 0.5}"  # COLMAP puts pixel centres at +0.5
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = 1
        extraction.sift.peak_threshold = 0.002
        extraction.sift.first_octave = -1
        db = tmp / "database.db"
        pycolmap.extract_features(db, tmp / "images", camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                  extraction_options=extraction, device=pycolmap.Device.cpu)
        pycolmap.match_exhaustive(db, device=pycolmap.Device.cpu)
        options = pycolmap.IncrementalPipelineOptions()
        options.ba_refine_focal_length = False
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.num_threads = 1
        options.random_seed = 0
        options.mapper.init_min_num_inliers = 15  # small images give few matches: accept weaker pairs
        options.mapper.abs_pose_min_num_inliers = 15
        options.min_model_size = 2
        (tmp / "sparse").mkdir()
        models = pycolmap.incremental_mapping(db, tmp / "images", tmp / "sparse", options)
        if not models:
            return {}
        best = max(models.values(), key=lambda r: r.num_reg_images())
        poses = {}
        for image in best.images.values():
            if image.has_pose:
                world2cam = np.eye(4)
                world2cam[:3] = image.cam_from_world().matrix()
                poses[names.index(image.name)] = np.linalg.inv(world2cam)
        return poses


def aligned_relative_position(estimated: dict[int, np.ndarray], truth: np.ndarray, pair: tuple[int, int]) -> np.ndarray | None:
    """Position of view pair[1] in view pair[0]'s optical frame, in ground-truth metres, after a
    similarity alignment of all registered camera centres to `truth` (V, 4, 4). None when the
    pair is not both registered or fewer than 3 views are (no unique alignment)."""
    if pair[0] not in estimated or pair[1] not in estimated or len(estimated) < 3:
        return None
    ids = sorted(estimated)
    scale, rotation, translation = similarity_transform(np.array([estimated[i][:3, 3] for i in ids]), truth[ids, :3, 3])
    first = estimated[pair[0]]
    # the relative translation in camera 1's frame is scaled, but not rotated, by the alignment
    rel = np.linalg.inv(first) @ estimated[pair[1]]
    return scale * rel[:3, 3]
