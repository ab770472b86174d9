"""Shared fixtures: small generated datasets, made once per test session."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Network rule: DDS never leaves this machine, and each test session has its own domain. Set
# before anything can import rclpy.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))  # valid ids: 0–101

from rust_perception.data.generate import generate_dataset
from rust_perception.data.synthetic import SyntheticConfig

ROOT = Path(__file__).resolve().parents[1]

DOME = SyntheticConfig(kind="dome", scenes=6, views=8, size=32, seed=3, test_fraction=0.34, shard_scenes=2)
# steps, then overrides of test_training.tiny: 150 steps got as far as 400 did (see street_model_dir)
STREET_TRAINING = (150, "lr=0.002", "warmup_steps=10")
STREET = SyntheticConfig(kind="street", scenes=4, views=12, size=32, seed=5, test_fraction=0.25, shard_scenes=2)


@pytest.fixture(scope="session")
def dome_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("dome") / "data"
    generate_dataset(DOME, out, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def street_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("street") / "data"
    generate_dataset(STREET, out, workers=1, progress=False)
    return out


def isolated(command: list[str]) -> list[str]:
    """`command` inside a fresh network namespace with only loopback up, where possible (root):
    DDS discovery and torch.distributed's rendezvous store then cannot reach any real interface."""
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    return command


def run_cli(script: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run one of trainer/*.py as a user would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "trainer" / script), *args], capture_output=True, text=True,
                          env=env, cwd=kwargs.pop("cwd", ROOT), **kwargs)


def train_tiny_rust(dataset, run: Path, heads: bool = False, steps: int = 4, *overrides: str) -> Path:
    """A `steps`-step tiny RUST run (and, with `heads`, 3-step EPE and segmentation heads)."""
    from rust_perception.training.heads import train_head
    from rust_perception.training.trainer import Trainer
    from test_training import tiny

    Trainer(tiny(dataset, f"steps={steps}", f"eval_every={steps}", f"checkpoint_every={steps}", *overrides), run,
            progress=False).train()
    if heads:
        for head in ("epe", "segmentation"):
            train_head(run, head, steps=3, batch_size=2, rays=64, progress=False)
    return run


@pytest.fixture(scope="session")
def model_dir(dome_dir, tmp_path_factory):
    """An exported tiny RUST model with EPE and segmentation heads and a latent basis, made
    through the command-line tools as a user would; trained with the loss on the unseen halves,
    so its whole frames are crossed (`street_model_dir` renders them from one latent)."""
    root = tmp_path_factory.mktemp("model")
    run = train_tiny_rust(dome_dir, root / "run", True, 4, "model.pose_supervision=unseen")
    result = run_cli("analyze_latent.py", "--run", str(run), "--samples", "4", "--probe-samples", "8")
    assert result.returncode == 0, result.stderr
    result = run_cli("export.py", "--run", str(run), "--out", str(root / "model"))
    assert result.returncode == 0, result.stderr
    return root / "model"


@pytest.fixture(scope="session")
def street_model_dir(street_dir, tmp_path_factory):
    """A tiny RUST model (with heads) trained on the street fixture, so the live node test, which
    plays those scenes, has a meaningful PSNR floor. Measured there: the reference camera 12.5 dB
    (scene mean colour 11.5), cam2 17.1 dB (mean colour 17.6: not beaten; 400 steps gave no
    more). Training takes ~12 s on 2 idle cores (heads and export included: ~80 s on loaded ones)."""
    from rust_perception.training.export import export_model

    root = tmp_path_factory.mktemp("street_model")
    run = train_tiny_rust(street_dir, root / "run", True, *STREET_TRAINING)
    export_model(run, root / "model")
    return root / "model"
