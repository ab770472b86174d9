"""The package as ROS 2 and pip users install it, and the rules the tree keeps."""

import ast
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import ROOT

REQUIRED_EXEC = {"rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "diagnostic_msgs", "tf2_ros", "launch",
                 "launch_ros", "rviz2"}


def test_package_xml_is_ament_python_format_3():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "rust_perception"
    assert root.find("export/build_type").text == "ament_python"
    assert REQUIRED_EXEC <= {e.text for e in root.findall("exec_depend")}
    assert (ROOT / "resource" / "rust_perception").is_file()


def test_setup_installs_marker_package_xml_and_pins_torch():
    setup = (ROOT / "setup.py").read_text()
    for needle in ("resource/{PACKAGE}", "package.xml", "launch/*.py", "config/*.yaml", "config/*.xml", "console_scripts"):
        assert needle in setup
    pins = (ROOT / "constraints" / "ci.txt").read_text()  # requirements*.txt hold ranges (tests/test_install.py)
    assert re.search(r"^torch==\d", pins, re.M), "torch must be pinned for CI (a bare torch pulls CUDA builds)"
    assert (ROOT / "setup.cfg").read_text().count("$base/lib/rust_perception") == 2


def test_fast_dds_profile_gives_publishers_room_for_large_images():
    """The profile docs/node.md tells camera drivers to use: a default participant profile whose
    shared-memory segment holds 6 cameras' 1280×720 rgb8 frames (Fast DDS's 512 KiB does not hold
    one 640×480 frame), with UDP kept for other machines."""
    ns = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ET.parse(ROOT / "config" / "fastdds_large_images.xml").getroot()
    transports = {t.findtext("f:transport_id", namespaces=ns): t for t in root.findall(".//f:transport_descriptor", ns)}
    participant = root.find("f:participant", ns)
    assert participant.get("is_default_profile") == "true"
    assert participant.findtext("f:rtps/f:useBuiltinTransports", namespaces=ns) == "false"
    used = [t.text for t in participant.findall("f:rtps/f:userTransports/f:transport_id", ns)]
    assert sorted(transports[t].findtext("f:type", namespaces=ns) for t in used) == ["SHM", "UDPv4"]
    shm = next(transports[t] for t in used if transports[t].findtext("f:type", namespaces=ns) == "SHM")
    assert int(shm.findtext("f:segment_size", namespaces=ns)) >= 6 * 1280 * 720 * 3


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    assert readme.index("```") < readme.index("\n## "), "the commands come before any section"
    test_command = commands[1].split("#")[0].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_core_never_imports_rclpy():
    for path in (ROOT / "rust_perception").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "rclpy" for n in names), f"{path} imports rclpy"


def test_every_source_folder_is_an_installed_package():
    """A folder of modules without __init__.py is silently left out of a colcon / wheel install."""
    from setuptools import find_packages

    packages = set(find_packages(str(ROOT), include=["rust_perception", "rust_perception.*"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "rust_perception").rglob("*.py")}
    assert folders <= packages, folders - packages


# not needed to build or install the package (and large: runs/, data/)
NOT_INSTALLED = {".git", "runs", "data", "benchmarks", "tests", "docs", "tools", "build", "install", "log",
                 ".pytest_cache", ".ruff_cache", ".benchmarks", "rust_perception.egg-info", "__pycache__"}


def test_rust_demo_finds_its_config_in_a_non_editable_install(tmp_path):
    """`rust_demo` trains from config/train_dome.yaml; installed without a checkout (pip into a venv
    that sees the system's packages, as on a ROS machine) it reads the copy setup.py installs to
    <venv>/share/rust_perception/config, whatever the working directory."""
    src, venv = tmp_path / "src", tmp_path / "venv"
    shutil.copytree(ROOT, src, ignore=lambda folder, names: [
        n for n in names if n == "__pycache__" or (folder == str(ROOT) and n in NOT_INSTALLED)])
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(src)],
                   check=True, cwd=tmp_path)
    probe = ("import rust_perception.cli.demo as d; from rust_perception.training.config import load_train_config; "
             "path = d.config_file('train_dome.yaml'); load_train_config(path); print(d.__file__, path)")
    where, config = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                                   check=True).stdout.split()
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout
    assert config == str(venv / "share" / "rust_perception" / "config" / "train_dome.yaml")
    assert (venv / "bin" / "rust_demo").is_file()


def heading_anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_is_a_manual_whose_links_lead_somewhere():
    """The README stays a short manual; every relative link of it and of docs/ names a file of the
    repository and, with #, a heading of that file."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    prose = {page: re.sub(r"```.*?```", "", page.read_text(), flags=re.S) for page in pages}
    broken = []
    for page, text in prose.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"\w+://", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.is_relative_to(ROOT) or not dest.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in {
                    heading_anchor(h) for h in re.findall(r"^#+ (.*)$", prose.get(dest) or dest.read_text(), re.M)}:
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
