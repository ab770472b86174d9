"""The JetPack 6 install path: requirements-jetpack6.txt stays torch- and pycolmap-free with every
requirement pinned in constraints/jetpack6.txt; with RUST_CHECK_JETPACK=1 (needs PyPI, ~10 s) pip
resolves it for CPython 3.10 on aarch64 from wheels only (tools/check_jetpack_install.py)."""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT


def names(path):
    lines = [line.split("#")[0].strip() for line in (ROOT / path).read_text().splitlines()]
    return {re.split(r"[<>=!~ ]", line)[0].lower() for line in lines if line}


def test_jetpack_requirements_are_torch_free_and_pinned():
    required, pinned = names("requirements-jetpack6.txt"), names("constraints/jetpack6.txt")
    assert not required & {"torch", "pycolmap", "onnxruntime", "onnxruntime-gpu", "tensorrt"}
    assert required <= pinned and "onnxruntime" in pinned


@pytest.mark.skipif(os.environ.get("RUST_CHECK_JETPACK") != "1", reason="set RUST_CHECK_JETPACK=1 (needs PyPI, ~10 s)")
def test_jetpack_install_resolves_for_python_310_aarch64():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "check_jetpack_install.py")], capture_output=True,
                            text=True, timeout=600)
    report = json.loads(result.stdout.splitlines()[-1])
    assert result.returncode == 0 and report["ok"], report
    assert report["resolved"]["numpy"].startswith("1.") and "onnxruntime" in report["resolved"]
