"""The model family: shapes of every variant, the gradient-scale op, what the Pose Estimator may
depend on, pixel independence of the decoder, and the ablation switches."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from rust_perception.config import load_config
from rust_perception.model.config import ModelConfig
from rust_perception.model.layers import grad_scale
from rust_perception.model.scene_model import SceneModel, Views, pixel_grid

from conftest import ROOT

TINY = load_config(ModelConfig, ROOT / "config" / "model_tiny.yaml")


def make_batch(b=2, n=5, m=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    from rust_perception.geometry import look_at

    poses = torch.from_numpy(np.array([[look_at((6 * torch.rand(1, generator=g).item() + 3, 2.0 * i - 3, 3.0), (0, 0, 0))
                                        for i in range(n + m)] for _ in range(b)], dtype=np.float32))
    K = torch.tensor([[size, 0, (size - 1) / 2], [0, size, (size - 1) / 2], [0, 0, 1]], dtype=torch.float32)
    K = K.expand(b, n + m, 3, 3)
    images = torch.rand(b, n + m, 3, size, size, generator=g)
    return {"input_images": images[:, :n], "target_images": images[:, n:], "input_cam2world": poses[:, :n],
            "target_cam2world": poses[:, n:], "input_intrinsics": K[:, :n], "target_intrinsics": K[:, n:]}


@pytest.mark.parametrize("variant", ["rust", "srt", "upsrt"])
def test_output_shapes_every_variant(variant):
    cfg = replace(TINY, variant=variant)
    model = SceneModel(cfg)
    batch = make_batch()
    uv = torch.randint(0, 32, (2, 3, 50, 2)).float()
    views = lambda p: Views(batch[f"{p}_cam2world"], batch[f"{p}_intrinsics"])  # noqa: E731
    out = model(batch, uv, torch.zeros(2, 3, dtype=torch.bool), views("input"), views("target"))
    assert out.shape == (2, 3, 50, 3)
    slsr = model.encode(batch["input_images"], views("input") if cfg.posed_inputs else None)
    assert slsr.shape == (2, 5 * 16, cfg.dim)
    assert (model.pose_estimator is None) == (variant != "rust")


@pytest.mark.parametrize("latent_dim", [3, 8, 64])
def test_latent_sizes(latent_dim):
    model = SceneModel(replace(TINY, latent_dim=latent_dim))
    batch = make_batch()
    slsr = model.encode(batch["input_images"])
    assert model.estimate_pose(slsr, batch["target_images"], torch.zeros(2, 3, dtype=torch.bool)).shape == (2, 3, latent_dim)


def test_grad_scale_is_identity_forward_and_times_0_2_backward():
    x = torch.randn(5, requires_grad=True)
    y = grad_scale(x, 0.2)
    assert torch.equal(y, x)
    y.backward(torch.arange(5.0))
    assert torch.equal(x.grad, torch.arange(5.0) * 0.2)


def test_pose_estimator_gradients_are_scaled():
    """The same loss through the Pose Estimator gives 0.2× the gradient of an unscaled model."""
    grads = {}
    for scale in (1.0, 0.2):
        torch.manual_seed(0)
        model = SceneModel(replace(TINY, pose_grad_scale=scale))
        batch = make_batch()
        uv = torch.randint(0, 32, (2, 3, 20, 2)).float()
        model(batch, uv, torch.zeros(2, 3, dtype=torch.bool)).sum().backward()
        grads[scale] = model.pose_estimator.head.weight.grad.clone()
    torch.testing.assert_close(grads[0.2], 0.2 * grads[1.0])


def test_pose_estimator_sees_only_its_half_and_the_first_view_tokens():
    torch.manual_seed(0)
    model = SceneModel(TINY).eval()
    batch = make_batch()
    slsr = model.encode(batch["input_images"])
    left = torch.zeros(2, 3, dtype=torch.bool)
    p = model.estimate_pose(slsr, batch["target_images"], left)
    changed = batch["target_images"].clone()
    changed[..., 16:] = torch.rand_like(changed[..., 16:])  # right halves
    torch.testing.assert_close(model.estimate_pose(slsr, changed, left), p, rtol=0, atol=0)
    assert not torch.allclose(model.estimate_pose(slsr, changed, ~left), model.estimate_pose(slsr, batch["target_images"], ~left))
    other_views = slsr.clone()
    other_views[:, 16:] += torch.randn_like(other_views[:, 16:])  # tokens of input views 2..5
    torch.testing.assert_close(model.estimate_pose(other_views, batch["target_images"], left), p, rtol=0, atol=0)
    first_view = slsr.clone()
    first_view[:, :16] += torch.randn_like(first_view[:, :16])
    assert not torch.allclose(model.estimate_pose(first_view, batch["target_images"], left), p)


@pytest.mark.parametrize("supervision", ["full", "unseen"])
def test_whole_frames_take_each_pixels_latent_from_the_half_the_model_was_trained_with(supervision):
    """full (the paper): every pixel from the left half's latent. unseen: each half from the
    other half's latent — the only combination that model was ever trained on."""
    torch.manual_seed(0)
    model = SceneModel(replace(TINY, pose_supervision=supervision)).eval()
    batch = make_batch()
    slsr = model.encode(batch["input_images"])
    images, left = batch["target_images"], torch.zeros(2, 3, dtype=torch.bool)
    latents = model.view_latents(slsr, images)
    assert latents.shape == (2, 3, 2, TINY.latent_dim)
    torch.testing.assert_close(latents[:, :, 0], model.estimate_pose(slsr, images, left), rtol=0, atol=1e-6)
    torch.testing.assert_close(latents[:, :, 1], model.estimate_pose(slsr, images, ~left if supervision == "unseen" else left),
                               rtol=0, atol=1e-6)
    # pixel centres 15 | 16 split a 32-px view; continuous positions split at 15.5
    uv = torch.tensor([[15.0, 3.0], [16.0, 3.0], [15.49, 0.0], [15.5, 0.0], [31.0, 31.0], [0.0, 0.0]]).expand(2, 3, -1, -1)
    picked = model.pixel_latents(latents, uv)
    from_row = [1, 0, 1, 0, 0, 1] if supervision == "unseen" else [0] * 6
    for k, row in enumerate(from_row):
        torch.testing.assert_close(picked[:, :, k], latents[:, :, row], rtol=0, atol=0)
    assert model.cfg.crossed_halves == (supervision == "unseen")


def test_stop_gradient_and_no_slsr_cut_the_encoder_out_of_the_pose_path():
    for switch in ({"pose_stop_gradient": True}, {"pose_slsr": False}):
        model = SceneModel(replace(TINY, **switch))
        batch = make_batch()
        slsr = model.encode(batch["input_images"])
        model.estimate_pose(slsr, batch["target_images"], torch.zeros(2, 3, dtype=torch.bool)).sum().backward()
        assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters()), switch
    model = SceneModel(replace(TINY, pose_self_attention=False))
    assert not any(not layer.cross for layer in model.pose_estimator.layers)


@pytest.mark.parametrize("variant", ["rust", "srt"])
def test_subset_render_equals_full_render(variant):
    torch.manual_seed(1)
    model = SceneModel(replace(TINY, variant=variant)).eval()
    batch = make_batch()
    views = lambda p: Views(batch[f"{p}_cam2world"], batch[f"{p}_intrinsics"])  # noqa: E731
    inputs, targets = (views("input"), views("target")) if variant == "srt" else (None, None)
    slsr = model.encode(batch["input_images"], inputs)
    latent = model.estimate_pose(slsr, batch["target_images"], torch.zeros(2, 3, dtype=torch.bool)) if variant == "rust" else None
    uv = pixel_grid(32, 32).expand(2, 3, -1, -1)
    reference = inputs.cam2world[:, 0] if inputs else None
    full = model.render(slsr, model.query_input(uv, latent, targets, reference))
    chunked = model.render(slsr, model.query_input(uv, latent, targets, reference), chunk=100)
    pick = torch.tensor([5, 77, 500, 1023])
    subset = model.render(slsr, model.query_input(uv[:, :, pick], latent, targets, reference))
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(subset, full[:, :, pick], atol=1e-5, rtol=1e-5)


def test_bad_model_config_names_the_field(tmp_path):
    from rust_perception.errors import ConfigError

    with pytest.raises(ConfigError, match="variant='nerf' is not allowed"):
        ModelConfig(variant="nerf")
    with pytest.raises(ConfigError, match="image_size=40"):
        ModelConfig(image_size=40)
    with pytest.raises(ConfigError, match="dim=30 is not allowed"):
        ModelConfig(dim=30, heads=4)
