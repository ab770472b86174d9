"""What RUST learned, read out: latent-space PCA/correlations, similarity alignment, IoU, the
EPE and segmentation heads on a frozen model, and their command-line errors."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from transforms3d.euler import euler2mat

from rust_perception.errors import ConfigError
from rust_perception.geometry import similarity_transform
from rust_perception.latent_space import (camera_attributes, component_meanings, correlation_table, fit_pca,
                                          linear_probe, motion_latent, neighbour_probe, pair_probe,
                                          relative_pose)
from rust_perception.metrics import confusion_matrix, iou_per_class, mean_iou, r2_score
from rust_perception.model.heads import rotation_error_deg, rotation_from_6d, rotation_to_6d
from rust_perception.training.checkpoint import list_checkpoints
from rust_perception.training.trainer import Trainer

from conftest import run_cli, train_tiny_rust
from test_training import tiny


def test_pca_and_correlations_recover_a_planted_structure():
    """Latents = a random 8-D embedding of (height, yaw) with different variances + noise: PC1
    must carry height, PC2 yaw, and the meanings must say so with the right signs."""
    rng = np.random.default_rng(0)
    height, yaw, distance = rng.normal(0, 3, 2000), rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)
    basis = np.linalg.qr(rng.normal(size=(8, 8)))[0][:, :2].T  # two orthonormal directions in 8-D
    latents = np.outer(height, basis[0]) - np.outer(yaw, basis[1]) + rng.normal(0, 0.05, (2000, 8)) + 5.0
    pca = fit_pca(latents)
    assert pca.explained[0] > 0.85 and abs(pca.explained.sum() - 1) < 1e-9
    table = correlation_table(pca.project(latents), {"height": height, "yaw": yaw, "distance": distance})
    assert abs(table["height"][0]) > 0.99 and abs(table["yaw"][1]) > 0.99
    meanings = component_meanings(table)
    assert meanings["height"]["component"] == 0 and meanings["yaw"]["component"] == 1
    assert "distance" not in meanings  # uncorrelated noise gets no meaning
    # moving "up" one σ along the height component increases the planted height by ~ its σ
    moved = motion_latent(pca, meanings, latents[0], "up", 1.0)
    assert (moved - latents[0]) @ basis[0] == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="no latent component correlates with 'distance'"):
        motion_latent(pca, meanings, latents[0], "closer", 1.0)


def test_camera_attributes_relative_to_the_first_input():
    first, target = np.eye(4)[None].copy(), np.eye(4)[None].copy()
    first[0, :3, :3] = euler2mat(0, 0, 0.0) @ np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # looks along +x
    target[0, :3, :3] = euler2mat(0, 0, np.pi / 2) @ first[0, :3, :3]  # looks along +y
    first[0, :3, 3], target[0, :3, 3] = [6, 0, 2], [0, 8, 5]
    a = camera_attributes("dome", target, first)
    assert a["height"][0] == pytest.approx(3.0) and a["yaw"][0] == pytest.approx(np.pi / 2)
    assert a["distance"][0] == pytest.approx(np.sqrt(89) - np.sqrt(40))
    s = camera_attributes("street", target, first, np.array([1]), np.array([5]))
    assert s["position"][0] == pytest.approx(-6.0) and s["camera"][0] == 2


def test_relative_pose_is_in_the_first_camera_frame_and_the_linear_probe_reads_what_the_latent_carries():
    first, target = np.eye(4)[None].copy(), np.eye(4)[None].copy()
    first[0, :3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # looks along +x, right = −y, down = −z
    target[0, :3, :3] = euler2mat(0, 0, np.pi / 2) @ first[0, :3, :3]
    first[0, :3, 3], target[0, :3, 3] = [6, 0, 2], [6, -1, 5]  # 1 m to the first camera's right, 3 m up
    rel = relative_pose(target, first)
    assert [rel[k][0] for k in ("x", "y", "z")] == pytest.approx([1.0, -3.0, 0.0])
    assert rel["cos_yaw"][0] == pytest.approx(0.0, abs=1e-12) and rel["sin_yaw"][0] == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    yaw = rng.uniform(-np.pi, np.pi, 600)
    values = {"cos_yaw": np.cos(yaw), "sin_yaw": np.sin(yaw), "noise": rng.normal(size=600)}
    latents = np.c_[np.cos(yaw), np.sin(yaw), yaw, rng.normal(size=(600, 5))] @ rng.normal(size=(8, 8))  # mixed
    r2 = linear_probe(latents[:400], {k: v[:400] for k, v in values.items()}, latents[400:],
                      {k: v[400:] for k, v in values.items()})
    assert r2["cos_yaw"] > 0.999 and r2["sin_yaw"] > 0.999 and r2["noise"] < 0.1  # held out: no fit to noise
    # a latent that holds the yaw itself: cos(yaw) is even in it, so no linear map reads it; the
    # nearest neighbours do (and still find nothing in noise)
    curved = {"cos_yaw": values["cos_yaw"], "noise": values["noise"]}
    latent = np.c_[yaw, rng.normal(scale=0.01, size=600)]
    split = lambda d, part: {k: v[part] for k, v in d.items()}  # noqa: E731
    flat = linear_probe(latent[:400], split(curved, slice(400)), latent[400:], split(curved, slice(400, None)))
    near = neighbour_probe(latent[:400], split(curved, slice(400)), latent[400:], split(curved, slice(400, None)))
    assert flat["cos_yaw"] < 0.05 and near["cos_yaw"] > 0.95 and near["noise"] < 0.1, (flat, near)
    # latents that hold each view's yaw in a per-scene frame: one latent says nothing about the
    # yaw relative to the first view, the pair (target, first view) reads it bilinearly
    first_yaw = rng.uniform(-np.pi, np.pi, 600)
    mix = rng.normal(size=(8, 8))
    own = lambda a: np.c_[np.cos(a), np.sin(a), rng.normal(size=(600, 6))] @ mix  # noqa: E731
    target, first = own(yaw + first_yaw), own(first_yaw)
    rel = {"cos_yaw": np.cos(yaw), "sin_yaw": np.sin(yaw)}
    single = linear_probe(target[:400], split(rel, slice(400)), target[400:], split(rel, slice(400, None)))
    pair = pair_probe(target[:400], first[:400], split(rel, slice(400)), target[400:], first[400:],
                      split(rel, slice(400, None)))
    assert max(single.values()) < 0.05 and min(pair.values()) > 0.95, (single, pair)


def test_similarity_alignment_recovers_scale_rotation_translation():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(12, 3))
    rotation = euler2mat(0.3, -1.1, 2.0)
    target = 2.5 * source @ rotation.T + np.array([1.0, -2.0, 0.5])
    scale, r, t = similarity_transform(source, target)
    assert scale == pytest.approx(2.5) and np.allclose(r, rotation) and np.allclose(t, [1.0, -2.0, 0.5])
    mirrored = source * np.array([1, 1, -1])  # a reflection must not be returned as a rotation
    assert np.linalg.det(similarity_transform(source, mirrored)[1]) == pytest.approx(1.0)


def test_iou_and_r2_on_hand_made_values():
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 1]])
    conf = confusion_matrix(pred, truth, 4)
    iou = iou_per_class(conf)
    # class 0: tp 1, fp 1, fn 1 → 1/3; class 1: tp 3, fp 1 → 3/4; class 2: tp 2, fn 1 → 2/3; class 3 absent
    assert iou[:3].tolist() == pytest.approx([1 / 3, 3 / 4, 2 / 3]) and torch.isnan(iou[3])
    assert mean_iou(conf) == pytest.approx((1 / 3 + 3 / 4 + 2 / 3) / 3)
    y = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    assert r2_score(y, y) == pytest.approx(1.0)
    assert r2_score(y.mean(0).expand(3, 2), y) == pytest.approx(0.0)


def test_rotation_6d_round_trip_and_error():
    r = torch.from_numpy(euler2mat(0.4, 0.2, -1.0)).float()
    assert torch.allclose(rotation_from_6d(rotation_to_6d(r)), r, atol=1e-6)
    r2 = torch.from_numpy(euler2mat(0.4, 0.2, -1.0) @ euler2mat(0, 0, np.deg2rad(30))).float()
    assert rotation_error_deg(r, r2).item() == pytest.approx(30.0, abs=1e-3)


@pytest.fixture(scope="module")
def rust_run(dome_dir, tmp_path_factory):
    return train_tiny_rust(dome_dir, tmp_path_factory.mktemp("readout") / "run")


def test_epe_rotation_targets_are_the_relative_rotation_and_predictions_scale_positions_only():
    from rust_perception.training.heads import epe_predict, epe_targets, view_pairs

    rng = np.random.default_rng(4)
    cam2world = torch.eye(4).repeat(1, 3, 1, 1).double()
    for v in range(3):
        cam2world[0, v, :3, :3] = torch.from_numpy(euler2mat(*rng.uniform(-np.pi, np.pi, 3)))
        cam2world[0, v, :3, 3] = torch.from_numpy(rng.normal(size=3))
    truth = epe_targets(cam2world.float(), rotation=True)
    assert truth.shape == (1, 6, 9)
    for k, (i, j) in enumerate(zip(*view_pairs(3))):
        r_i, r_j = cam2world[0, i, :3, :3], cam2world[0, j, :3, :3]
        t = r_i.T @ (cam2world[0, j, :3, 3] - cam2world[0, i, :3, 3])
        assert torch.allclose(truth[0, k, :3].double(), t, atol=1e-5)
        assert torch.allclose(rotation_from_6d(truth[0, k, 3:]).double(), r_i.T @ r_j, atol=1e-5)
    head = lambda slsr, a, b: torch.cat([a[..., :3], b[..., :6]], -1)  # noqa: E731
    latents = torch.arange(24.0).view(1, 3, 8)
    out = epe_predict(head, None, latents, position_std=2.5)
    assert torch.equal(out[0, 0, :3], latents[0, 0, :3] * 2.5) and torch.equal(out[0, 0, 3:], latents[0, 1, :6])


def test_street_epe_head_reports_rotation_beside_the_no_rotation_guess(street_model_dir):
    metrics = json.loads((street_model_dir.parent / "run" / "heads" / "epe.json").read_text())
    assert metrics["config"]["rotation"] is True and metrics["pairs"] > 0
    assert math.isfinite(metrics["rotation_error_deg_median"]) and math.isfinite(metrics["rotation_error_deg_mean"])
    # the rig's cameras are 60° apart: guessing no rotation is off by a multiple of 60° for most pairs
    assert metrics["identity_rotation_error_deg_median"] >= 59, metrics


@pytest.mark.parametrize("head", ["epe", "segmentation"])
def test_head_training_leaves_the_base_model_bit_for_bit_unchanged(rust_run, head):
    checkpoint = list_checkpoints(rust_run / "checkpoints")[-1]
    before_bytes = checkpoint.read_bytes()
    before = torch.load(checkpoint, weights_only=True)["model"]
    result = run_cli("train_heads.py", "--run", str(rust_run), "--head", head, "--steps", "3", "--batch", "2",
                     "--rays", "64")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((rust_run / "heads" / f"{head}.json").read_text())
    assert metrics["base_step"] == 4  # the frozen model's step, so a stale head is recognised
    if head == "epe":
        assert metrics["pairs"] == 2 * 6 and metrics["position_mse"] > 0 and "position_r2" in metrics
        assert metrics["mean_position_error_m"] > 0  # the constant-guess baseline beside it
        fit = metrics["train_fit"]  # the same measure on training scenes: memorising or lacking signal
        assert set(fit) == {"scenes", "position_r2", "position_error_m"} and fit["scenes"] > 0
        assert fit["position_r2"] != metrics["position_r2"]  # other scenes, another figure
    else:
        assert 0 <= metrics["miou"] <= 1 and set(metrics["iou"]) >= {"sky", "ground"}
        weights = metrics["class_weights"]  # the default head is weighted; its weights are reported
        assert len(weights) == len(metrics["iou"]) and min(weights) >= 0 and max(weights) > min(weights)
        # the majority-class baseline: one class right (its IoU = its pixel share), the others 0
        assert 0 < metrics["majority_class_miou"] < 1 and 0 < metrics["majority_class_pixel_accuracy"] <= 1
        assert (rust_run / "heads" / "segmentation.png").stat().st_size > 1000
        assert set(metrics["train_fit"]["iou"]) == set(metrics["iou"]) and 0 <= metrics["train_fit"]["miou"] <= 1
    after = torch.load(checkpoint, weights_only=True)["model"]
    assert checkpoint.read_bytes() == before_bytes and list_checkpoints(rust_run / "checkpoints")[-1] == checkpoint
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_segmentation_head_starts_from_the_decoder_and_weighs_rare_classes_up(rust_run):
    from rust_perception.data.store import MultiViewDataset
    from rust_perception.model.heads import HeadConfig, build_head
    from rust_perception.training.heads import class_weights
    from rust_perception.training.trainer import load_model

    train_cfg, model, _ = load_model(rust_run)
    train_set = MultiViewDataset(train_cfg.dataset, "train", train_cfg.model.num_inputs, train_cfg.num_targets)
    classes = len(train_set.store.manifest["classes"])
    cfg = HeadConfig(head="segmentation", num_classes=classes)  # the defaults: from the decoder, balance 0.5
    head = build_head(train_cfg.model, cfg)
    head.start_from(model.decoder)
    decoder = model.decoder.state_dict()
    for key, value in head.state_dict().items():  # everything but the class layer is the decoder's
        assert key.startswith("rgb.") or torch.equal(value, decoder[key]), key
    assert head.rgb.weight.shape[0] == classes
    deeper = build_head(train_cfg.model, HeadConfig(head="segmentation", num_classes=classes,
                                                     layers=train_cfg.model.decoder_layers + 1))
    with pytest.raises(ConfigError, match="needs its"):  # never a partial copy
        deeper.start_from(model.decoder)
    weights = class_weights(train_set, cfg)
    labels = torch.cat([train_set[(i, 0)]["target_labels"].flatten() for i in range(len(train_set))])
    counts = torch.bincount(labels, minlength=classes)
    seen = counts > 0
    assert torch.allclose(weights[seen].mean(), torch.tensor(1.0)) and (weights[~seen] == 0).all()
    assert weights[counts.argmax()] == weights[seen].min() and weights[seen].max() > weights[seen].min()
    assert class_weights(train_set, HeadConfig(head="segmentation", num_classes=classes, balance=0.0)) is None
    epe = HeadConfig(head="epe", from_decoder=True, balance=0.5)  # segmentation's settings: recorded as off
    assert (epe.from_decoder, epe.balance) == (False, 0.0) and class_weights(train_set, epe) is None


def test_analyze_latent_writes_basis_figures_and_results(rust_run):
    result = run_cli("analyze_latent.py", "--run", str(rust_run), "--samples", "6", "--probe-samples", "8")
    assert result.returncode == 0, result.stderr
    basis = json.loads((rust_run / "latent_space.json").read_text())
    assert len(basis["pca"]["components"]) == 8 and basis["kind"] == "dome"
    results = json.loads((rust_run / "latent" / "results.json").read_text())
    assert results["latents"] == 18 and set(results["pearson_r"]) == {"height", "distance", "yaw"}
    # own and relative height co-vary, short of identity: the first view's height varies too
    assert 0.2 < results["own_height_r"] < 0.99
    relative = {"x", "y", "z", "cos_yaw", "sin_yaw"}
    own = {"own_height", "own_pitch", "own_cos_yaw_sun", "own_sin_yaw_sun"}  # a plain synthetic dome: the sun
    for probe in (results["linear_probe_r2"], results["neighbour_probe_r2"]):
        assert set(probe) == relative | own and all(np.isfinite(list(probe.values())))
    assert set(results["pair_probe_r2"]) == relative
    for name in ("scatter.png", "traversal.png"):
        assert (rust_run / "latent" / name).stat().st_size > 1000


def test_readout_cli_errors_are_one_line(rust_run, dome_dir, tmp_path):
    srt = tmp_path / "srt"
    Trainer(tiny(dome_dir, "steps=1", "model.variant=srt", "eval_every=1"), srt, progress=False).train()
    untrained = tmp_path / "untrained"  # a run that was configured but never reached a checkpoint
    untrained.mkdir()
    shutil.copyfile(rust_run / "config.yaml", untrained / "config.yaml")
    cases = [
        ("train_heads.py", ["--run", str(untrained), "--head", "epe"], "has no usable checkpoint yet"),
        ("analyze_latent.py", ["--run", str(untrained)], "has no usable checkpoint yet"),
        ("train_heads.py", ["--run", str(tmp_path / "none"), "--head", "epe"], "is not a training run"),
        ("train_heads.py", ["--run", str(rust_run), "--head", "depth"], "invalid choice: 'depth'"),
        ("train_heads.py", ["--run", str(rust_run), "--head", "epe", "--balance", "0.5"], "apply to training a --head segmentation"),
        ("train_heads.py", ["--run", str(rust_run), "--head", "segmentation", "--eval-only", "--from-scratch"],
         "apply to training a --head segmentation"),
        ("train_heads.py", ["--run", str(rust_run), "--head", "segmentation", "--layers", "3"], "or start --from-scratch"),
        ("train_heads.py", ["--run", str(rust_run), "--head", "segmentation", "--balance", "2"], "must be in [0, 1]"),
        ("train_heads.py", ["--run", str(srt), "--head", "epe"], "must be a rust model, not srt"),
        ("train_heads.py", ["--run", str(srt), "--head", "segmentation", "--eval-only"], "has no segmentation head yet"),
        ("analyze_latent.py", ["--run", str(srt)], "latent poses exist only for rust runs"),
        ("analyze_latent.py", ["--run", str(tmp_path / "none")], "is not a training run"),
    ]
    for script, args, message in cases:
        result = run_cli(script, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_colmap_pair_position_is_recovered_from_a_similarity_transformed_reconstruction():
    """An SfM result = ground truth in another frame at another scale; the aligned relative
    position of the pair must equal the true one, and missing pair views mean failure."""
    from rust_perception.colmap_baseline import aligned_relative_position

    rng = np.random.default_rng(2)
    truth = np.stack([np.eye(4)] * 5)
    for i in range(5):
        truth[i, :3, :3] = euler2mat(*rng.uniform(-np.pi, np.pi, 3))
        truth[i, :3, 3] = rng.normal(0, 3, 3)
    g = np.eye(4)
    g[:3, :3], g[:3, 3] = euler2mat(0.5, 0.1, -0.7), [4.0, -1.0, 2.0]
    estimated = {}
    for i in range(5):  # world rotated/translated and scaled by 0.3 (camera rotations unchanged relative)
        pose = g @ truth[i]
        pose[:3, 3] *= 0.3
        estimated[i] = pose
    true_rel = (np.linalg.inv(truth[0]) @ truth[1])[:3, 3]
    assert np.allclose(aligned_relative_position(estimated, truth, (0, 1)), true_rel)
    del estimated[1]
    assert aligned_relative_position(estimated, truth, (0, 1)) is None


def test_yaw_turn_starts_at_the_targets_own_render_and_turns_along_the_fitted_circle(rust_run, monkeypatch):
    from rust_perception.data.store import MultiViewDataset
    from rust_perception.model.scene_model import pixel_grid
    from rust_perception.training.latent_analysis import yaw_turn
    from rust_perception.training.steps import held_out_batches
    from rust_perception.training.trainer import load_model

    cfg, model, _ = load_model(rust_run)
    batch = next(held_out_batches(MultiViewDataset(cfg.dataset, "test", cfg.model.num_inputs, cfg.num_targets), 2))
    # latents that trace a circle of radius 3 in their first two coordinates as the yaw turns
    yaw = np.random.default_rng(0).uniform(-np.pi, np.pi, 200)
    latents = np.zeros((200, cfg.model.latent_dim))
    latents[:, 0], latents[:, 1] = 3 * np.cos(yaw), 3 * np.sin(yaw)
    queried, query_input = [], model.query_input
    monkeypatch.setattr(model, "query_input", lambda uv, lat: queried.append(lat[0, 0].numpy()) or query_input(uv, lat))
    frames = yaw_turn(model, batch, latents, np.cos(yaw), np.sin(yaw), scenes=3, steps=4)
    size = cfg.model.image_size
    assert frames.shape == (2, 4, size, size, 3)  # only 2 scenes in the batch
    with torch.no_grad():  # 0°: the target rendered from its own latent poses
        slsr = model.encode(batch["input_images"][:1])
        own = model.view_latents(slsr, batch["target_images"][:1, :1])
        rgb = model.render(slsr, query_input(pixel_grid(size, size)[None, None], own), chunk=4096)
    np.testing.assert_allclose(frames[0, 0], rgb[0, 0].clamp(0, 1).view(size, size, 3).numpy(), atol=1e-5)
    # 180°: both halves' latents moved to the opposite point of the circle, the rest unchanged
    own = own[0, 0].numpy()
    start = np.arctan2(own[0, 1], own[0, 0])
    np.testing.assert_allclose(queried[2][:, :2], own[:, :2] - 6 * np.array([np.cos(start), np.sin(start)]), atol=1e-4)
    np.testing.assert_allclose(queried[2][:, 2:], own[:, 2:], atol=1e-6)


def test_readout_latent_only_refuses_heads_of_another_step_before_touching_the_run(rust_run, tmp_path, monkeypatch,
                                                                                   capsys):
    """--latent-only keeps the heads of the committed read-out: if they read the model at another
    step, it must stop before it deletes and reruns the run's own latent analysis."""
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import readout

    monkeypatch.setattr(readout, "RESULTS", tmp_path)
    (tmp_path / "readout_probe.json").write_text(json.dumps(
        {"run": str(rust_run), "latent": {"step": -1}, "epe": {"base_step": -1}, "segmentation": {}}))
    latent = rust_run / "latent" / "results.json"
    before = latent.read_bytes() if latent.is_file() else None
    monkeypatch.setattr(sys, "argv", ["readout.py", "--run", str(rust_run), "--name", "probe", "--latent-only"])
    with pytest.raises(SystemExit) as stop:
        readout.main()
    assert stop.value.code == 2
    assert "read the model at step -1, the run is at" in capsys.readouterr().err
    assert (latent.read_bytes() if latent.is_file() else None) == before
