"""Training end to end on the tiny model: memorising a scene, checkpoints, bit-exact resume,
resume after SIGTERM, SIGKILL or a kill mid-checkpoint, evaluation, and clear errors for bad
configs, missing datasets and mismatched or corrupt checkpoints."""

import json
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from rust_perception.errors import UserError
from rust_perception.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from rust_perception.training.config import load_train_config
from rust_perception.training.trainer import Trainer, load_model, lr_factor

from conftest import ROOT, run_cli


def tiny(dataset, *overrides):
    return load_train_config(ROOT / "config" / "train_dome.yaml", [
        f"dataset={dataset}", "model=" + "{}", *[f"model.{k}={v}" for k, v in (
            ("image_size", 32), ("dim", 64), ("heads", 2), ("mlp_dim", 256), ("cnn_channels", "[16,32,64]"),
            ("encoder_layers", 1), ("pose_layers", 1), ("decoder_layers", 2))],
        "workers=0", "batch_size=2", "rays_per_target=128", "eval_scenes=2", "precision=fp32", *overrides])


def logged(run, key="loss"):
    """`key` of every training-loss record in metrics.jsonl (whole lines only: the run may be
    writing the last one)."""
    path = run / "metrics.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.is_file() else []
    return [r[key] for r in map(json.loads, lines) if "loss" in r]


def test_tiny_model_memorises_a_scene(dome_dir, tmp_path):
    """One scene, one target, fixed views: > 25 dB (the tiny config does this in ~40 s)."""
    cfg = tiny(dome_dir, "steps=1000", "batch_size=1", "num_targets=1", "rays_per_target=512", "lr=0.003",
               "warmup_steps=20", "model.pose_half=left")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    batch = next(iter(trainer._loader()))
    for _ in range(cfg.steps):
        loss = trainer.train_step(batch)
        trainer.step += 1
    assert -10 * torch.log10(torch.tensor(loss)) > 25


def test_resume_repeats_the_uninterrupted_loss_sequence(dome_dir, tmp_path):
    straight = tiny(dome_dir, "steps=6", "log_every=1", "checkpoint_every=3", "deterministic=true", "eval_every=100")
    Trainer(straight, tmp_path / "a", progress=False).train()
    first = tiny(dome_dir, "steps=3", "log_every=1", "checkpoint_every=3", "deterministic=true", "eval_every=100")
    Trainer(first, tmp_path / "b", progress=False).train()
    resumed = Trainer(straight, tmp_path / "b", progress=False)  # same run dir, more steps
    assert resumed.step == 3
    resumed.train()
    assert logged(tmp_path / "a") == logged(tmp_path / "b")
    assert len(logged(tmp_path / "a")) == 6


def test_checkpoint_round_trip_and_corrupt_checkpoint_falls_back(dome_dir, tmp_path, capsys):
    cfg = tiny(dome_dir, "steps=4", "checkpoint_every=2", "eval_every=4")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    result = trainer.train()
    assert result["step"] == 4 and "psnr" in result["eval"]
    paths = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in paths] == ["step_0000002.pt", "step_0000004.pt"]
    state = load_checkpoint(paths[-1])
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(state["model"][k], v)
    assert state["step"] == 4 and state["optimizer"]["state"] and state["config"]["steps"] == 4
    _, model, step = load_model(tmp_path / "run")
    assert step == 4 and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                trainer.model.state_dict().values()))
    paths[-1].write_bytes(paths[-1].read_bytes()[:1000])
    capsys.readouterr()
    assert latest_checkpoint(tmp_path / "run" / "checkpoints")["step"] == 2
    assert (f"warning: checkpoint {paths[-1]} is corrupt or not a rust_perception checkpoint (RuntimeError); "
            "trying the previous one") in capsys.readouterr().err
    assert Trainer(cfg, tmp_path / "run", progress=False).step == 2  # a rerun resumes from the previous one


def test_run_dir_started_with_other_settings_is_refused(dome_dir, tmp_path):
    Trainer(tiny(dome_dir, "steps=1", "eval_every=1"), tmp_path / "run", progress=False).train()
    with pytest.raises(UserError, match="was started with lr="):
        Trainer(tiny(dome_dir, "steps=1", "lr=0.1"), tmp_path / "run", progress=False)


def test_a_run_started_before_a_setting_existed_resumes_with_its_default(dome_dir, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny(dome_dir, "steps=1", "eval_every=1"), run, progress=False).train()
    old = yaml.safe_load((run / "config.yaml").read_text())
    del old["model"]["pose_supervision"]  # as written before the setting was added
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    assert Trainer(tiny(dome_dir, "steps=2", "eval_every=1", "threads=1"), run, progress=False).step == 1  # threads: free
    with pytest.raises(UserError, match="was started with model.pose_supervision='full', not 'unseen'"):
        Trainer(tiny(dome_dir, "steps=2", "model.pose_supervision=unseen"), run, progress=False)


def test_lr_schedule_constant_then_cosine_from_decay_start(dome_dir):
    cfg = tiny(dome_dir, "steps=100", "warmup_steps=10", "lr_schedule=cosine", "decay_start=40", "decay_steps=80",
               "final_lr_ratio=0.1")
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == pytest.approx(1.0)
    assert [lr_factor(s, cfg) for s in (10, 25, 40)] == [1.0, 1.0, 1.0]  # constant until decay_start
    assert lr_factor(60, cfg) == pytest.approx(0.55) and lr_factor(80, cfg) == lr_factor(99, cfg) == pytest.approx(0.1)
    plain = tiny(dome_dir, "steps=100", "warmup_steps=10", "lr_schedule=cosine")  # decay_start 0: after warm-up
    assert lr_factor(10, plain) == 1.0 and lr_factor(55, plain) == pytest.approx(0.55)


def test_a_decay_added_to_a_run_changes_only_the_steps_not_taken(dome_dir, tmp_path):
    """A constant-rate run extended with a decay starting after its last step resumes; one that
    would change the rate of a step already taken is refused."""
    common = ("warmup_steps=2", "eval_every=4", "checkpoint_every=4")
    Trainer(tiny(dome_dir, "steps=4", *common), tmp_path / "run", progress=False).train()
    with pytest.raises(UserError, match="has taken 4 steps with another learning-rate schedule"):
        Trainer(tiny(dome_dir, "steps=8", *common, "lr_schedule=cosine", "decay_start=2"), tmp_path / "run",
                progress=False)
    later = tiny(dome_dir, "steps=8", *common, "lr_schedule=cosine", "decay_start=4")
    trainer = Trainer(later, tmp_path / "run", progress=False)
    assert trainer.step == 4
    trainer.train()
    assert trainer.optimizer.param_groups[0]["lr"] < later.lr  # decaying
    assert "decay_start: 4" in (tmp_path / "run" / "config.yaml").read_text()


def test_cli_errors_are_one_line(dome_dir, tmp_path):
    cases = [
        (["--set", "model.variant=nerf"], "variant='nerf' is not allowed"),
        (["--set", "dataset=/nonexistent/data"], "dataset directory /nonexistent/data does not exist"),
        (["--set", "steps=zero"], "steps must be an integer"),
        (["--set", f"dataset={dome_dir}"], "has 32×32 images but the model expects image_size=64"),
        (["--config", str(tmp_path / "none.yaml")], "does not exist"),
    ]
    for args, message in cases:
        args = args if "--config" in args else ["--config", str(ROOT / "config" / "train_dome.yaml"), *args]
        result = run_cli("train.py", *args, "--run", str(tmp_path / "r"))
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


def test_evaluate_writes_metrics_and_figure_and_rejects_mismatched_checkpoints(dome_dir, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny(dome_dir, "steps=2", "eval_every=2"), run, progress=False).train()
    result = run_cli("evaluate.py", "--run", str(run), "--scenes", "2", "--figure-scenes", "2")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["scenes"] == 2 and len(metrics["per_scene"]) == 2 and 0 < metrics["psnr"] < 60
    assert (run / "eval" / "figure.png").stat().st_size > 1000
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("dim: 64", "dim: 32"))
    bad = run_cli("evaluate.py", "--run", str(run))
    assert bad.returncode == 2 and "does not fit its config.yaml" in bad.stderr
    missing = run_cli("evaluate.py", "--run", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "is not a training run" in missing.stderr


def train_command(dataset, tmp_path, **settings):
    """trainer/train.py on the tiny model as a user runs it: (command, run directory, config)."""
    settings = {"steps": 100000, "batch_size": 2, "rays_per_target": 64, "log_every": 1, "eval_scenes": 0,
                "workers": 1, "threads": 1, "checkpoint_every": 100000, "precision": "fp32", **settings}
    config = tmp_path / "train.yaml"
    config.write_text(f"dataset: {dataset}\nmodel: {ROOT / 'config' / 'model_tiny.yaml'}\n"
                      + "".join(f"{k}: {v}\n" for k, v in settings.items()))
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "trainer" / "train.py"), "--config", str(config), "--run", str(run), "--quiet"]
    return cmd, run, config


def resumed_from(stdout: str) -> int:
    return int(re.search(r"resuming .* from step (\d+)", stdout).group(1))


def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(dome_dir, tmp_path):
    cmd, run, config = train_command(dome_dir, tmp_path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not logged(run, "step"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in out + err
    saved = latest_checkpoint(run / "checkpoints")["step"]
    assert saved >= 1
    config.write_text(config.read_text().replace("steps: 100000", f"steps: {saved + 2}"))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert resumed_from(again.stdout) == saved
    assert json.loads(again.stdout.strip().splitlines()[-1])["step"] == saved + 2


def test_sigkill_at_a_random_step_loses_at_most_one_checkpoint_interval(dome_dir, tmp_path):
    every, steps = 4, 30
    cmd, run, _ = train_command(dome_dir, tmp_path, steps=steps, checkpoint_every=every, workers=0)
    kill_at = random.randint(every + 1, 5 * every)  # after the first checkpoint
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(logged(run, "step")) < kill_at and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL, f"the run ended before step {kill_at}"
    done = logged(run, "step")[-1]  # the last step trained before the kill
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    start = resumed_from(again.stdout)
    assert start % every == 0 and done - every <= start <= done, (kill_at, done, start)
    assert logged(run, "step") == list(range(1, steps + 1))  # the lost steps trained again, each logged once


DIE_IN_THE_SECOND_CHECKPOINT_WRITE = """
import io, os, signal, sys, torch
save = torch.save
def dying_save(state, handle):
    if state["step"] == 4:  # write half a real checkpoint, then die like a SIGKILLed or power-cut run
        buffer = io.BytesIO()
        save(state, buffer)
        handle.write(buffer.getvalue()[: buffer.tell() // 2])
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    save(state, handle)
torch.save = dying_save
from rust_perception.cli.train import entry
sys.exit(entry())
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(dome_dir, tmp_path):
    cmd, run, _ = train_command(dome_dir, tmp_path, steps=6, checkpoint_every=2, workers=0)
    killed = subprocess.run([sys.executable, "-c", DIE_IN_THE_SECOND_CHECKPOINT_WRITE, *cmd[2:]], capture_output=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL
    checkpoints = run / "checkpoints"
    assert [p.name for p in list_checkpoints(checkpoints)] == ["step_0000002.pt"]
    assert len(list(checkpoints.glob(".step_0000004.pt.*.tmp"))) == 1  # the half-written file, never read
    assert latest_checkpoint(checkpoints)["step"] == 2
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert resumed_from(again.stdout) == 2
    assert [p.name for p in list_checkpoints(checkpoints)] == ["step_0000002.pt", "step_0000004.pt", "step_0000006.pt"]


def test_unseen_supervision_covers_only_the_half_the_pose_estimator_did_not_see():
    from rust_perception.model.config import ModelConfig
    from rust_perception.training.steps import sample_generators, training_inputs

    eye = torch.eye(4).expand(8, 3, 4, 4)
    batch = {"target_images": torch.rand(8, 3, 3, 32, 32), "input_cam2world": eye, "target_cam2world": eye,
             "input_intrinsics": eye[..., :3, :3], "target_intrinsics": eye[..., :3, :3]}
    for variant, supervision in (("rust", "unseen"), ("rust", "full"), ("srt", "full")):
        cfg = ModelConfig(variant=variant, image_size=32, pose_supervision=supervision)
        uv, right, *_, truth = training_inputs(batch, cfg, 256, 0.0, 0.0, sample_generators(0, 3, range(8)))
        in_right_half = uv[..., 0] >= 16
        assert right.any() and (~right).any() and uv[..., 1].max() > 16 > uv[..., 1].min()
        if variant == "rust" and supervision == "unseen":  # the other half, and all of it over the rays
            assert (in_right_half == ~right[..., None]).all() and uv[..., 0].min() == 0 and uv[..., 0].max() == 31
        else:  # both halves of every target (posed variants have no Pose Estimator), drawn as before the switch
            assert in_right_half.any(-1).all() and (~in_right_half).any(-1).all()
            flat = torch.stack([torch.randint(0, 32 * 32, (3, 256), generator=g) for g in sample_generators(0, 3, range(8))])
            assert torch.equal(uv, torch.stack([flat % 32, flat // 32], -1).float())
        assert torch.equal(truth, batch["target_images"][torch.arange(8)[:, None, None], torch.arange(3)[None, :, None], :,
                                                          uv[..., 1].long(), uv[..., 0].long()])
    with pytest.raises(UserError, match="pose_supervision=.half. is not allowed"):
        ModelConfig(pose_supervision="half")
    with pytest.raises(UserError, match="pose_supervision='unseen' is only for variant rust"):
        ModelConfig(variant="srt", pose_supervision="unseen")
