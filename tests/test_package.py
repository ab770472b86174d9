"""The package as ROS 2 and pip users install it, and the rules the tree keeps."""

import ast
import re
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
    for needle in ("resource/{PACKAGE}", "package.xml", "launch/*.py", "config/*.yaml", "console_scripts"):
        assert needle in setup
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==\d", requirements, re.M), "torch must be pinned (a bare torch pulls CUDA builds)"
    assert (ROOT / "setup.cfg").read_text().count("$base/lib/rust_perception") == 2


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
