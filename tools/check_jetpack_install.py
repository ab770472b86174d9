#!/usr/bin/env python3
"""Check the JetPack 6 install path without a Jetson: pip resolves requirements-jetpack6.txt
(plus ONNX Runtime's CPU build standing in for NVIDIA's GPU wheel) under constraints/jetpack6.txt
for CPython 3.10 on manylinux aarch64, from wheels only, and neither torch nor pycolmap is pulled
in. Needs PyPI; takes ~10 s. Prints one JSON line; exit 0 when the path resolves, 1 otherwise.

    python tools/check_jetpack_install.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"torch", "pycolmap"}
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")  # JetPack 6's glibc 2.35 takes both


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--target", str(Path(tmp) / "target"), "--report", str(report), "--python-version", "3.10",
                   *[arg for p in PLATFORMS for arg in ("--platform", p)], "--only-binary", ":all:",
                   "-r", str(ROOT / "requirements-jetpack6.txt"), "-c", str(ROOT / "constraints" / "jetpack6.txt"),
                   "onnxruntime"]
        # a machine-wide PIP_CONSTRAINT pins this host's Python, not the Jetson's
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_CONSTRAINT": ""})
        resolved = {}
        if result.returncode == 0:
            resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"]
                        for i in json.loads(report.read_text())["install"]}
    forbidden = sorted(FORBIDDEN & set(resolved))
    ok = result.returncode == 0 and not forbidden
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    print(json.dumps({"ok": ok, "resolved": resolved, "forbidden": forbidden, "pip_errors": errors}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
