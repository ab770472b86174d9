"""The node's parameter table (`rust_perception.node_config`), ROS-free: what it refuses and why,
the PipelineConfig made from it, the params-file rule the launch file and rust_offline share,
and the flags rust_offline makes from it."""

import dataclasses

import pytest

from ros2_rust_node.offline import parser
from rust_perception.errors import ConfigError
from rust_perception.latent_space import MOTIONS
from rust_perception.node_config import (
    NOVEL_VIEW_MOTIONS,
    SETTINGS,
    PipelineConfig,
    defaults,
    params_file_values,
    pipeline_config,
    validate,
)


def test_defaults_are_valid_and_the_pipeline_config_is_made_from_the_table():
    values = validate(defaults())
    cfg = pipeline_config(values)
    pipeline = [name for name, s in SETTINGS.items() if s.pipeline]
    assert [f.name for f in dataclasses.fields(PipelineConfig)] == [*pipeline, "render"]
    assert all(getattr(cfg, name) == values[name] for name in pipeline if name != "reference_camera")
    # the documented rule, in one place: reference_camera, else the first of camera_topics
    assert PipelineConfig(camera_topics=["b", "a"]).reference_camera == "b"
    assert PipelineConfig(camera_topics=["b", "a"], reference_camera="a").reference_camera == "a"


@pytest.mark.parametrize("values,message", [
    ({"novel_view_motion": "sideways"}, ("novel_view_motion='sideways' is not allowed: it must be one of none, up, "
                                         "closer, rotate, forward, traversal")),
    ({"render_rate": 0.0}, "render_rate=0.0 is not allowed: it must be > 0"),
    ({"render_rate": 2}, "render_rate must be a float, got 2 (write 2.0: ROS 2 refuses an integer"),
    ({"buffer_size": 0}, "buffer_size=0 is not allowed: it must be >= 1"),
    ({"publish_tf": "true"}, "publish_tf must be true or false, got 'true'"),
    ({"backend": "cuda"}, "backend='cuda' is not allowed: it must be one of auto, tensorrt, onnxruntime, torch"),
    ({"camera_topics": []}, "camera_topics must be a non-empty list of topic names"),
    ({"camera_topics": ["a", "a"]}, "camera_topics lists a topic twice: a, a"),
    ({"camera_topics": ["a", "b"], "reference_camera": "c"}, "reference_camera 'c' is not one of camera_topics (a, b)"),
    ({"camera_topics": ["a"], "novel_view_camera": "c"}, "novel_view_camera 'c' is not one of camera_topics (a)"),
    ({"render_rat": 2.0}, "unknown parameter 'render_rat' (rust_node's parameters: camera_topics, "),
], ids=lambda v: str(v)[:40] if isinstance(v, dict) else None)
def test_a_bad_value_is_refused_with_the_reason(values, message):
    with pytest.raises(ConfigError) as exc:
        validate(values)
    assert str(exc.value).startswith(message)


def test_the_pipeline_config_is_checked_as_the_node_checks_it():
    with pytest.raises(ConfigError, match="novel_view_motion='sideways' is not allowed"):
        PipelineConfig(camera_topics=["a"], novel_view_motion="sideways")
    with pytest.raises(ConfigError, match="reference_camera 'c' is not one of camera_topics"):
        PipelineConfig(camera_topics=["a"], reference_camera="c")


def test_one_list_of_motions():
    assert NOVEL_VIEW_MOTIONS == ("none", *MOTIONS, "traversal")
    assert SETTINGS["novel_view_motion"].choices == NOVEL_VIEW_MOTIONS


def test_a_params_file_gives_rust_node_every_section_that_applies(tmp_path):
    """ROS 2's rule, shared by the launch file and rust_offline: `/**` for every node, then
    `rust_node` / `/rust_node`, the more specific overriding; other nodes' sections are not ours."""
    path = tmp_path / "params.yaml"
    path.write_text("/**:\n  ros__parameters:\n    threads: 2\n    backend: onnxruntime\n"
                    "other_node:\n  ros__parameters:\n    threads: 9\n"
                    "/rust_node:\n  ros__parameters:\n    backend: torch\n")
    assert params_file_values(path) == {"threads": 2, "backend": "torch"}
    path.write_text("rust_node: [\n")
    with pytest.raises(ConfigError, match="cannot be read as a params file"):
        params_file_values(path)


def test_rust_offline_has_a_flag_for_every_setting_its_outputs_depend_on():
    """Pipeline and engine settings and output switches are flags of the same name; the node's
    transport and timers (QoS, worker and diagnostics periods, TF) are not."""
    flags = {a.dest: a for a in parser()._actions}
    for name, s in SETTINGS.items():
        assert (name in flags) == (s.pipeline or s.offline), name
        if name in flags:
            assert flags[name].option_strings[0] == "--" + name.replace("_", "-")
            assert tuple(flags[name].choices or ()) == s.choices
