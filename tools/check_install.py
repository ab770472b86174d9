#!/usr/bin/env python3
"""Check the ROS 2 install paths of docs/install.md without the machines: for each target, uv
resolves the package's requirements under that target's constraints file (constraints/TARGET.txt)
for the target's CPython and platform, from wheels only, with environment markers and
Requires-Python evaluated for the target (pip's --python-version evaluates markers for the Python
that runs pip, so it cannot check this). Packages that the target's apt ships (numpy, Pillow,
PyYAML) are pinned to apt's versions where the check says they must stay apt's; elsewhere the
check reports what pip would put in the venv over apt's copy.

    python tools/check_install.py                     # every check; or name targets / checks:
    python tools/check_install.py jetpack6 humble-runtime

Needs PyPI and uv (`pip install uv`); each check takes a few seconds. Prints one JSON line per
check; exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME, TRAIN = ("requirements.txt",), ("requirements.txt", "requirements-train.txt")
# what apt ships: Ubuntu 22.04 (Humble, and JetPack 6 = L4T r36) and Ubuntu 24.04 (Jazzy)
JAMMY = {"numpy": "1.21.5", "pillow": "9.0.1", "pyyaml": "5.4.1"}
NOBLE = {"numpy": "1.26.4", "pillow": "10.2.0", "pyyaml": "6.0.1"}
# apt packages PyPI has no wheel of for the target's Python: checked against our own ranges only
NO_WHEEL = {("3.10", "pyyaml", "5.4.1")}


@dataclass(frozen=True)
class Check:
    target: str  # constraints/<target>.txt
    python: str
    platform: str  # uv's --python-platform
    requirements: tuple[str, ...]
    apt: dict[str, str]
    keep: tuple[str, ...]  # apt packages that must stay apt's (pinned to apt's version here)
    extra: tuple[str, ...] = ()  # stand-ins resolved beside the requirements
    forbidden: frozenset[str] = field(default_factory=frozenset)


CHECKS = {
    "humble-runtime": Check("humble", "3.10", "x86_64-manylinux_2_35", RUNTIME, JAMMY, ("numpy", "pillow")),
    # ONNX Runtime (>= 1.18) needs numpy >= 1.21.6: the venv gets numpy 1.26 over apt's 1.21.5
    "humble-train": Check("humble", "3.10", "x86_64-manylinux_2_35", TRAIN, JAMMY, ("pillow",)),
    "jazzy-runtime": Check("jazzy", "3.12", "x86_64-manylinux_2_39", RUNTIME, NOBLE, ("numpy", "pillow", "pyyaml")),
    "jazzy-train": Check("jazzy", "3.12", "x86_64-manylinux_2_39", TRAIN, NOBLE, ("numpy", "pillow", "pyyaml")),
    # the TensorRT backend (apt's python3-libnvinfer) and no torch: apt's numpy stays
    "jetpack6-runtime": Check("jetpack6", "3.10", "aarch64-manylinux_2_35", RUNTIME, JAMMY, ("numpy", "pillow"),
                              forbidden=frozenset({"torch", "pycolmap"})),
    # PyPI's CPU onnxruntime stands in for NVIDIA's onnxruntime-gpu wheel (same minor version)
    "jetpack6-onnxruntime": Check("jetpack6", "3.10", "aarch64-manylinux_2_35", RUNTIME, JAMMY, ("pillow",),
                                  extra=("onnxruntime",), forbidden=frozenset({"torch", "pycolmap"})),
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(path: Path) -> list[tuple[str, str]]:
    """(distribution name, version specifier) for each line of a requirements / constraints file."""
    lines = (line.split("#")[0].split(";")[0].strip() for line in path.read_text().splitlines())
    return [(canonical(m[1]), m[2].replace(" ", "")) for m in
            (re.match(r"([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)", line) for line in lines if line)]


def names(path: Path) -> set[str]:
    return {name for name, _ in parse(path)}


def admits(spec: str, version: str) -> bool:
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.specifiers import SpecifierSet
    return SpecifierSet(spec).contains(version, prereleases=True)


def uv() -> list[str] | None:
    if shutil.which("uv"):
        return [shutil.which("uv")]
    try:
        from uv import find_uv_bin

        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        return None


def files(check: Check) -> tuple[list[Path], Path]:
    return [ROOT / r for r in check.requirements], ROOT / "constraints" / f"{check.target}.txt"


def direct(check: Check) -> set[str]:
    """What the check installs by name: the requirements, the stand-ins, apt's packages."""
    requirement_files, _ = files(check)
    return {n for path in requirement_files for n in names(path)} | set(map(canonical, check.extra)) | set(check.apt)


def static_problems(check: Check) -> dict:
    """What is wrong without resolving anything: a requirement the target's constraints leave out
    (apt's packages may stay out), a range of ours that refuses apt's version (pip would replace
    apt's copy for nothing), a forbidden package named."""
    requirement_files, constraints = files(check)
    narrow = {f"{pkg}=={version}": spec for pkg, version in check.apt.items()
              for path in (*requirement_files, constraints) for n, spec in parse(path)
              if n == pkg and spec and not admits(spec, version)}
    return {"not_in_constraints": sorted(direct(check) - set(check.apt) - names(constraints)),
            "apt_version_refused_by": narrow, "forbidden_named": sorted(check.forbidden & direct(check))}


def run_check(name: str, check: Check, uv_command: list[str]) -> dict:
    requirement_files, constraints = files(check)
    pins = {pkg: check.apt[pkg] for pkg in check.keep if (check.python, pkg, check.apt[pkg]) not in NO_WHEEL}
    with tempfile.TemporaryDirectory() as tmp:
        apt_file, extra_file = Path(tmp) / "apt.txt", Path(tmp) / "extra.txt"
        apt_file.write_text("".join(f"{pkg}=={version}\n" for pkg, version in pins.items()))
        extra_file.write_text("".join(f"{e}\n" for e in check.extra))
        command = [*uv_command, "pip", "compile", "--no-config", "--quiet", "--no-header", "--no-annotate",
                   "--python-version", check.python, "--python-platform", check.platform, "--only-binary", ":all:",
                   *map(str, requirement_files), str(extra_file), "-c", str(constraints), "-c", str(apt_file)]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
        seconds = round(time.perf_counter() - start, 1)
    resolved = {}
    for line in result.stdout.splitlines():
        if "==" in line and not line.startswith("#"):
            pkg, version = line.split("==", 1)
            resolved[canonical(pkg)] = version.split(";")[0].strip()
    unpinnable = sorted(pkg for pkg, version in check.apt.items() if (check.python, pkg, version) in NO_WHEEL)
    replaced = {pkg: f"{version} -> {resolved[pkg]}" for pkg, version in check.apt.items()
                if pkg in resolved and resolved[pkg] != version and pkg not in unpinnable}
    static = static_problems(check)
    forbidden = sorted(check.forbidden & set(resolved))
    ok = result.returncode == 0 and not forbidden and not any(static.values())
    errors = [line.strip() for line in result.stderr.splitlines() if line.strip() and "not available" not in line]
    return {"check": name, "ok": ok, "seconds": seconds, "python": check.python, "platform": check.platform,
            "resolved": {n: v for n, v in sorted(resolved.items()) if n in direct(check)}, "packages": len(resolved),
            "apt_kept": sorted(set(check.apt) - set(replaced) - set(unpinnable)), "venv_replaces_apt": replaced,
            "apt_checked_by_our_ranges_only": unpinnable, "forbidden": forbidden, **static, "errors": errors[-12:]}


def main(argv: list[str]) -> int:
    wanted = [n for n in CHECKS if not argv or n in argv or CHECKS[n].target in argv]
    unknown = [a for a in argv if a not in CHECKS and a not in {c.target for c in CHECKS.values()}]
    if unknown or not wanted:
        print(f"unknown target or check {unknown}; choose from {sorted(CHECKS)}", file=sys.stderr)
        return 2
    uv_command = uv()
    if uv_command is None:
        print(json.dumps({"ok": False, "errors": ["uv is not installed: pip install uv"]}))
        return 1
    reports = [run_check(name, CHECKS[name], uv_command) for name in wanted]
    for report in reports:
        print(json.dumps(report))
    return 0 if all(r["ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
