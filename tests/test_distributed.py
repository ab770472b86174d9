"""DistributedDataParallel on 2 CPU processes (gloo on loopback, in a private network namespace
where possible): the ranks stay identical and train what one process training the same global
batch trains. Run as a script, this file is the 2-process launcher the test starts."""

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from rust_perception.data.store import MultiViewDataset, rank_rows
from rust_perception.model.config import ModelConfig
from rust_perception.training.config import load_train_config
from rust_perception.training.steps import sample_generators, training_inputs
from rust_perception.training import trainer as trainer_module
from rust_perception.training.trainer import Trainer, leave_distributed

from conftest import ROOT, isolated
from test_training import logged, train_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_rank(rank: int, world: int, port: int, config: Path, run: Path, out: Path, slow_eval_s: float = 0.0) -> None:
    """One torchrun-like worker: the environment torchrun would set, then the CLI's code path
    (with `slow_eval_s`, rank 0's evaluations first sleep that long)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo",
                      RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    if slow_eval_s and rank == 0:
        evaluate = Trainer.evaluate
        Trainer.evaluate = lambda self, *a, **k: (time.sleep(slow_eval_s), evaluate(self, *a, **k))[1]
    try:
        trainer = Trainer(load_train_config(config), run, progress=False)
        trainer.train()
        torch.save(trainer.model.state_dict(), out / f"rank{rank}.pt")
    finally:
        leave_distributed()


def test_two_gloo_ranks_stay_identical_and_match_one_process(dome_dir, tmp_path):
    _, _, config = train_command(dome_dir, tmp_path, steps=4, batch_size=4, eval_every=4, eval_scenes=2,
                                 checkpoint_every=2, workers=0)
    launch = isolated([sys.executable, __file__, str(config), str(tmp_path / "ddp"), str(tmp_path)])
    result = subprocess.run(launch, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    single = Trainer(load_train_config(config), tmp_path / "single", progress=False)
    single.train()

    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert all(torch.allclose(rank0[k], v, atol=1e-6) for k, v in single.model.state_dict().items())
    ddp, one = logged(tmp_path / "ddp"), logged(tmp_path / "single")
    assert len(ddp) == 4 and ddp == pytest.approx(one, rel=1e-5)  # rank 0 alone logs
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["step_0000002.pt",
                                                                                     "step_0000004.pt"]


def test_a_ranks_rows_draw_what_one_process_draws_for_them(dome_dir):
    """Pixels, halves and pose noise depend on a sample's row in the global batch, not its rank."""
    data = MultiViewDataset(dome_dir, "train", 5, 3)
    batch = {k: torch.stack([data[(i, 0)][k] for i in range(4)]) for k in ("target_images", "input_cam2world",
                                                                         "target_cam2world", "input_intrinsics",
                                                                         "target_intrinsics")}
    model = ModelConfig(variant="upsrt", image_size=32)

    def draws(rows):
        part = {k: v[list(rows)] for k, v in batch.items()}
        uv, right, inputs, targets, truth = training_inputs(part, model, 16, 0.1, 0.1, sample_generators(0, 9, rows))
        return uv, right, inputs.cam2world, targets.cam2world, truth

    whole = draws(range(4))
    for rank in (0, 1):
        rows = list(rank_rows(4, rank, 2))
        for mine, everyone in zip(draws(rows), whole):
            assert torch.equal(mine, everyone[rows])



def test_other_ranks_wait_out_rank0_evaluation_longer_than_the_collective_timeout(dome_dir, tmp_path):
    """Rank 0 evaluates for longer than a collective may wait (as a long evaluation or a slow
    checkpoint write outlasts NCCL's watchdog): rank 1 waits in the main-work barrier instead of
    timing out in the next all-gather."""
    _, _, config = train_command(dome_dir, tmp_path, steps=2, batch_size=4, eval_every=1, eval_scenes=2,
                                 checkpoint_every=2, workers=0)
    launch = isolated([sys.executable, __file__, str(config), str(tmp_path / "ddp"), str(tmp_path), "12"])
    result = subprocess.run(launch, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), RUST_DIST_TIMEOUT_S="5"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(logged(tmp_path / "ddp")) == 2


def test_nccl_init_names_its_device_and_timeout_and_deterministic_cuda_sets_cublas(monkeypatch):
    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RUST_DIST_TIMEOUT_S", "90")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.setdefault("set_device", device))
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda on: calls.setdefault("deterministic", on))
    dist = trainer_module.dist
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.setdefault("init", (backend, kw)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert trainer_module.init_distributed() == (1, 2)
    backend, kwargs = calls["init"]
    assert backend == "nccl" and kwargs["timeout"] == timedelta(seconds=90)
    assert kwargs["device_id"] == torch.device("cuda", 1) == calls["set_device"]
    trainer_module.use_deterministic_algorithms()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and calls["deterministic"] is True


if __name__ == "__main__":
    config, run, out = map(Path, sys.argv[1:4])
    mp.spawn(train_rank, args=(2, free_port(), config, run, out, float(sys.argv[4]) if len(sys.argv) > 4 else 0.0),
             nprocs=2)
