"""Typed config loading: wrong types, unknown keys and overrides give clear errors."""

from dataclasses import dataclass, field

import pytest

from rust_perception.config import apply_overrides, from_dict, load_config, to_dict
from rust_perception.data.synthetic import SyntheticConfig
from rust_perception.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    width: int = 4
    ratio: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_nested_types_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: b\nsizes: [3, 4, 5]\ninner:\n  width: 8\n")
    cfg = load_config(Outer, path, ["inner.ratio=2", "flag=true"])
    assert cfg == Outer(name="b", sizes=(3, 4, 5), inner=Inner(width=8, ratio=2.0), flag=True)
    assert to_dict(cfg)["sizes"] == [3, 4, 5]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"nme": "x"}, "unknown field nme (allowed: flag, inner, name, sizes)"),
        ({"inner": {"width": 1.5}}, "inner.width must be an integer"),
        ({"flag": "yes"}, "flag must be true or false"),
        ({"sizes": [1, "two"]}, "sizes[1] must be an integer"),
        ({"inner": 3}, "inner must be a mapping"),
    ],
)
def test_errors_name_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, data)
    assert message in str(info.value)


def test_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["nokey"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(Outer, tmp_path / "list.yaml")


def test_synthetic_defaults_depend_on_kind():
    assert SyntheticConfig(kind="street").views == 18 and SyntheticConfig(kind="dome").views == 10
    assert SyntheticConfig(kind="street").hfov_deg == 75.0
    assert SyntheticConfig(scenes=10, test_fraction=0.1).split_sizes() == {"train": 9, "test": 1}
    assert SyntheticConfig(scenes=1).split_sizes() == {"train": 1, "test": 0}


def test_train_config_model_file_can_be_swapped_and_edited():
    from conftest import ROOT
    from rust_perception.training.config import load_train_config

    cfg = load_train_config(ROOT / "config" / "train_dome.yaml",
                            [f"model={ROOT / 'config' / 'model_tiny.yaml'}", "model.image_size=48", "steps=5"])
    assert (cfg.model.dim, cfg.model.image_size, cfg.steps) == (64, 48, 5)
    with pytest.raises(ConfigError, match="does not exist"):
        load_train_config(ROOT / "config" / "train_dome.yaml", ["model=missing.yaml"])
