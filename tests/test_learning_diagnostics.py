"""Can the models learn at all? Models once trained for hours to what a constant colour scores
because nothing checked that they saw their inputs. Each diagnostic here can fail (the old
initialisation and the SRT paper's per-pixel ray code are shown failing) and runs in seconds,
except memorisation (~1 minute per model)."""

from dataclasses import replace

import pytest
import torch

from rust_perception.config import load_config
from rust_perception.data.generate import generate_dataset
from rust_perception.data.store import MultiViewDataset
from rust_perception.data.synthetic import SyntheticConfig
from rust_perception.model.config import VARIANTS, ModelConfig
from rust_perception.model.scene_model import SceneModel, Views
from rust_perception.training.diagnostics import image_dependence, image_to_ray_effect, input_swap_effect, memorise
from rust_perception.training.steps import held_out_batches, right_half_pixels

from conftest import ROOT
from test_model import make_batch

TINY = load_config(ModelConfig, ROOT / "config" / "model_tiny.yaml")
OLD = {"init": "torch", "cnn_activation": "relu", "ray_code": "pixel"}  # the models before the fixes


def model(variant: str, seed: int = 0, **changes) -> SceneModel:
    torch.manual_seed(seed)
    return SceneModel(replace(TINY, variant=variant, **changes)).eval()


@pytest.fixture(scope="module")
def batch():
    return make_batch(b=16, seed=1)  # random images, cameras around a common centre


@pytest.fixture(scope="module")
def views(batch):
    return Views(batch["input_cam2world"], batch["input_intrinsics"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_at_init_most_of_the_slsr_variance_across_scenes_comes_from_the_images(variant, batch, views):
    shares = [image_dependence(model(variant, seed), batch["input_images"], views) for seed in range(3)]
    assert min(shares) >= 0.3, shares
    old = image_dependence(model(variant, **OLD), batch["input_images"], views)
    assert old < 0.05, f"the old initialisation should be blind to the images (got {old:.3f})"


def test_srt_images_move_the_slsr_at_least_as_much_as_the_rays(batch, views):
    for seed in range(3):
        assert image_to_ray_effect(model("srt", seed), batch["input_images"], views) >= 1.0
    # the SRT paper's ~100 ray-code channels beside 3 RGB channels swamp the pixels
    assert image_to_ray_effect(model("srt", ray_code="pixel"), batch["input_images"], views) < 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_renders_change_when_the_inputs_are_another_scenes(variant, batch):
    uv = right_half_pixels(16, 3, TINY.image_size)
    assert input_swap_effect(model(variant), batch, uv) > 0.1
    assert input_swap_effect(model(variant, **OLD), batch, uv) < 0.05


@pytest.fixture(scope="module")
def four_scenes(tmp_path_factory):
    """4 dome scenes of 1–3 plain objects (the learning regime's data, config/data_dome_learn.yaml)."""
    data = load_config(SyntheticConfig, ROOT / "config" / "data_dome_learn.yaml",
                       ["scenes=4", "views=8", "test_fraction=0.0", "seed=11"])
    out = tmp_path_factory.mktemp("four") / "data"
    generate_dataset(data, out, workers=1, progress=False)
    return next(held_out_batches(MultiViewDataset(out, "train", 5, 3, seed=0), 4))


@pytest.mark.parametrize("variant", ["srt", "rust"])
def test_tiny_models_memorise_four_scenes_well_above_a_constant_colour(variant, four_scenes):
    fitted, constant = memorise(model(variant), four_scenes, steps=MEMORISE_STEPS)
    assert fitted >= constant + 6.0, (fitted, constant)


MEMORISE_STEPS = 600
