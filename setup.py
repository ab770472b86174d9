"""ament_python package `rust_perception`; also a plain pip package (`pip install -e .`)."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "rust_perception"
HERE = Path(__file__).parent


def requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "ros2_rust_node", "ros2_rust_node.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
    # ranges; the tested versions are in constraints/ (pip install ... -c constraints/ci.txt)
    install_requires=requirements("requirements.txt"),  # the torch-free runtime
    extras_require={"train": requirements("requirements-train.txt"),
                    "test": requirements("requirements-train.txt") + requirements("requirements-test.txt")},
    zip_safe=False,
    maintainer="rust_perception developers",
    maintainer_email="dev@rust-perception.invalid",
    description="RUST latent scene representations from unposed multi-camera imagery, for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "make_dataset = rust_perception.cli.make_dataset:entry",
            "rust_demo = rust_perception.cli.demo:entry",
            "train = rust_perception.cli.train:entry",
            "evaluate = rust_perception.cli.evaluate:entry",
            "analyze_latent = rust_perception.cli.analyze_latent:entry",
            "train_heads = rust_perception.cli.train_heads:entry",
            "rust_export = rust_perception.cli.export:entry",
            "prebuild = rust_perception.cli.prebuild:entry",
            "rust_node = ros2_rust_node.node:main",
            "rust_offline = ros2_rust_node.offline:entry",
            "make_rig_bag = ros2_rust_node.make_rig_bag:entry",
        ],
    },
)
