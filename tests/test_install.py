"""Installing on ROS 2 machines without breaking them: requirements are compatible ranges, the
tested pins live in constraints/ci.txt, and each ROS 2 target's constraints cover its requirements
and admit the numpy / Pillow / PyYAML its apt ships (never numpy 2). With RUST_CHECK_INSTALL=1
(needs PyPI and uv, ~15 s) uv resolves every target for its CPython and platform
(tools/check_install.py)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("check_install", ROOT / "tools" / "check_install.py")
check_install = sys.modules["check_install"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_install)

REQUIREMENTS = ("requirements.txt", "requirements-train.txt", "requirements-test.txt")
NOT_RUNTIME = {"torch", "torchvision", "torchmetrics", "pycolmap", "onnxruntime", "onnxruntime-gpu", "tensorrt"}


def test_requirements_are_ranges_and_ci_pins_every_one():
    pins = dict(check_install.parse(ROOT / "constraints" / "ci.txt"))
    for name in REQUIREMENTS:
        for package, spec in check_install.parse(ROOT / name):
            assert spec and "==" not in spec, f"{name}: {package}{spec} (a range, pinned in constraints/ci.txt)"
            assert pins.get(package, "").startswith("=="), f"constraints/ci.txt does not pin {package}"
    assert pins["torch"] == "==2.13.0", "CI's torch is the CPU wheel on disk; unpinned, pip pulls a CUDA build"


def test_runtime_requirements_are_torch_free():
    runtime = check_install.names(ROOT / "requirements.txt")
    assert not runtime & NOT_RUNTIME
    assert "torch" in check_install.names(ROOT / "requirements-train.txt")


@pytest.mark.parametrize("name", sorted(check_install.CHECKS))
def test_each_target_pins_its_requirements_and_admits_apts_numpy(name):
    check = check_install.CHECKS[name]
    assert not any(check_install.static_problems(check).values()), check_install.static_problems(check)
    numpy = [s for p, s in check_install.parse(ROOT / "constraints" / f"{check.target}.txt") if p == "numpy"]
    assert numpy and not any(check_install.admits(s, "2.0.0") for s in numpy), f"{check.target}: never numpy 2"


@pytest.mark.skipif(os.environ.get("RUST_CHECK_INSTALL") != "1", reason="set RUST_CHECK_INSTALL=1 (needs PyPI and uv)")
def test_every_target_resolves_for_its_python_and_platform():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "check_install.py")], capture_output=True,
                            text=True, timeout=600, check=False)
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0 and all(r["ok"] for r in reports), reports
    assert {r["check"] for r in reports} == set(check_install.CHECKS)
    for report in reports:
        assert report["resolved"]["numpy"].startswith("1."), report
        if report["check"].startswith("jetpack6"):
            assert "torch" not in report["resolved"], report


def test_a_training_command_without_the_train_extra_says_what_to_install(tmp_path):
    """The base install is the torch-free runtime: a training command run without torch ends with
    one line naming the `train` extra, not a traceback."""
    probe = ("import sys; sys.modules['torch'] = None; from rust_perception.cli.evaluate import entry; "
             f"sys.argv = ['evaluate', '--run', {str(tmp_path)!r}]; sys.exit(entry())")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [(
        "evaluate: error: torch is not installed; this command needs the `train` extra: pip install -e '.[train]' "
        "-c constraints/<target>.txt in the checkout (docs/install.md)")]
