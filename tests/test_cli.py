"""Command lines as a user meets them: bad values give one line naming the field and what is
allowed (exit 2, no traceback), and nothing already on disk is lost."""

import json

import pytest
from PIL import Image

from conftest import run_cli
from rust_perception.cli import run
from rust_perception.cli.make_dataset import main


@pytest.mark.parametrize(
    "args,field,allowed",
    [
        (["--kind", "forest"], "--kind", "'dome', 'street'"),
        (["--size", "60"], "size=60", "multiple of 8"),
        (["--kind", "street", "--views", "8"], "views=8", "multiple of 6"),
        (["--scenes", "0"], "scenes=0", ">= 1"),
        (["--test-fraction", "1.5"], "test_fraction=1.5", "[0, 1)"),
        (["--hfov", "170"], "hfov_deg=170.0", "[10, 120]"),
        (["--scenes", "ten"], "--scenes", "invalid int value"),
        (["--workers", "-1"], "--workers", ">= 0"),
    ],
)
def test_bad_values_one_line_exit_2(tmp_path, capsys, args, field, allowed):
    try:
        code = run(main, [*args, "--out", str(tmp_path / "d")], prog="make_dataset")
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    stderr = capsys.readouterr().err
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert field in lines[0] and allowed in lines[0]
    assert not (tmp_path / "d").exists()


def test_user_error_from_the_real_script_has_no_traceback(tmp_path):
    result = run_cli("make_dataset.py", "--size", "60", "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "make_dataset: error: size=60 is not allowed (must be a multiple of 8 between 32 and 512)"


def test_bad_yaml_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kind: dome\ncolour: red\n")
    result = run_cli("make_dataset.py", "--config", str(cfg), "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and "unknown field colour" in result.stderr and "allowed:" in result.stderr
    cfg.write_text("size: big\n")
    result = run_cli("make_dataset.py", "--config", str(cfg), "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and "size must be an integer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_never_overwrites(tmp_path, dome_dir):
    user_dir = tmp_path / "photos"
    user_dir.mkdir()
    (user_dir / "keep.jpg").write_bytes(b"precious")
    result = run_cli("make_dataset.py", "--scenes", "2", "--out", str(user_dir))
    assert result.returncode == 2 and "refusing" in result.stderr
    assert [p.name for p in user_dir.iterdir()] == ["keep.jpg"]
    before = (dome_dir / "manifest.json").read_text()
    result = run_cli("make_dataset.py", "--kind", "dome", "--scenes", "7", "--out", str(dome_dir))
    assert result.returncode == 2 and "scenes=6" in result.stderr
    assert (dome_dir / "manifest.json").read_text() == before


def test_generate_preview_and_verify(tmp_path):
    out, png = tmp_path / "street", tmp_path / "sheet.png"
    result = run_cli("make_dataset.py", "--kind", "street", "--scenes", "3", "--views", "6", "--size", "32",
                     "--out", str(out), "--preview", str(png), "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["scenes"] == {"train": 2, "test": 1} and summary["views_per_scene"] == 6
    image = Image.open(png)
    assert image.width == 6 * (64 + 4) + 4 and image.height > 2 * 2 * 64  # 2 train scenes × (views, overlays)
    again = run_cli("make_dataset.py", "--kind", "street", "--scenes", "3", "--views", "6", "--size", "32",
                    "--out", str(out), "--quiet")
    assert again.returncode == 0, "rerunning a finished command is a no-op"
    ok = run_cli("make_dataset.py", "--verify", str(out))
    assert ok.returncode == 0 and "OK" in ok.stdout
    data = bytearray((out / "train-00000.npy").read_bytes())
    data[-10] ^= 0x01
    (out / "train-00000.npy").write_bytes(bytes(data))
    bad = run_cli("make_dataset.py", "--verify", str(out))
    assert bad.returncode == 2 and "train-00000.npy is corrupt" in bad.stderr and "Traceback" not in bad.stderr


def test_demo_runs_the_whole_pipeline_end_to_end(tmp_path):
    """The README's main job, shortened: data → train → evaluate → latent analysis → heads →
    ONNX export → an ONNX Runtime render that matches torch."""

    result = run_cli("demo.py", "--out", str(tmp_path / "demo"), "--scenes", "6", "--steps", "2", "--head-steps", "2",
                     "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert report["export"]["max_abs_diff_onnxruntime_vs_torch"] <= 1e-4
    assert (tmp_path / "demo" / "onnxruntime_render.png").stat().st_size > 500
    assert (tmp_path / "demo" / "model" / "metadata.json").is_file()
    assert (tmp_path / "demo" / "rust_dome" / "latent_space.json").is_file()


def test_prebuild_without_tensorrt_is_one_line_exit_2(model_dir):
    """This machine has no TensorRT: the console script's code path says so in one line."""
    import subprocess
    import sys

    from conftest import ROOT

    code = "import sys; from rust_perception.cli.prebuild import entry; sys.exit(entry())"
    result = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prebuild: error: backend 'tensorrt' needs TensorRT 10: "
                                                   "pip install 'tensorrt-cu12>=10,<11'"), result.stderr


def test_prebuild_builds_every_plan_once(model_dir, tmp_path, monkeypatch, capsys):
    """With (fake) TensorRT present: every graph's plan is built and cached; a second run reuses them."""
    import sys

    import fake_tensorrt
    from rust_perception.cli import prebuild
    from rust_perception.runtime import cuda, tensorrt_backend

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_tensorrt())
    monkeypatch.setattr(tensorrt_backend, "_LOGGER", None)
    monkeypatch.setattr(cuda.CudaRuntime, "load", classmethod(lambda cls: fake_tensorrt.FakeCuda()))
    assert prebuild.main([str(model_dir), "--cache", str(tmp_path / "plans")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["plans"]) == {"encoder", "pose", "view_pose", "render", "segment", "epe"}
    assert sorted(p.name for p in (tmp_path / "plans").glob("*.plan")) == sorted(report["plans"].values())
    assert report["timing_cache"] in {p.name for p in (tmp_path / "plans").iterdir()}
    builds = len(fake_tensorrt.STATE["builds"])
    assert prebuild.main([str(model_dir), "--cache", str(tmp_path / "plans")]) == 0 and builds == 6
    assert len(fake_tensorrt.STATE["builds"]) == 6  # the second run reuses every plan
