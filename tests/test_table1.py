"""benchmarks/table1.py's bookkeeping, on fake runs: which rows are finished, what each reads (the
ablation reference is the dome RUST run's evaluation at the ablation budget), the paper's claims,
and the committed copy of a run that a fresh clone resumes from."""

import argparse
import json
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import common  # noqa: E402
import table1  # noqa: E402


class Memory:
    """Stands in for common.Results: keeps the table in memory."""

    def __init__(self):
        self.data = {}

    def save(self):
        pass


def fake_run(run, evaluations):
    run.mkdir(parents=True)
    lines = [{"step": step, "eval": {"pooled_psnr": psnr, "psnr": psnr + 3, "psnr_stderr": 0.2, "ssim": 0.7,
                                     "object_psnr": 11.0, "constant_colour_pooled_psnr": 16.6}}
             for step, psnr in evaluations]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def args(tmp_path, monkeypatch):
    monkeypatch.setattr(table1, "RESULTS", tmp_path / "results")  # the chart goes here, not into the repository
    monkeypatch.setattr(table1, "KEPT", tmp_path / "kept")
    return argparse.Namespace(work=tmp_path / "runs", config="config/train_learn.yaml", steps=None, ablation_steps=6000,
                              dome_data="config/data_dome_learn_panorama.yaml", street_data="config/data_street_learn.yaml",
                              textured_data="config/data_dome_learn_panorama_textured.yaml", groups=["dome", "ablation"],
                              threads=1)


def row(name, group="dome"):
    return next(r for r in table1.ROWS if r.name == name and r.group == group)


def test_rows_finish_at_their_budget_and_the_claims_follow(args, monkeypatch):
    fake_run(table1.run_dir(args, row("RUST")), [(6000, 19.4), (20000, 20.0)])
    fake_run(table1.run_dir(args, row("SRT perfect")), [(20000, 21.5)])
    fake_run(table1.run_dir(args, row("SRT noisy")), [(20000, 17.5)])
    fake_run(table1.run_dir(args, row("UpSRT noisy")), [(10000, 16.0)])  # not at its budget yet
    fake_run(table1.run_dir(args, row("3-d latent", "ablation")), [(6000, 18.0)])
    monkeypatch.setattr(table1, "evaluate_other_way", lambda run, half: {"step": 20000, "pooled_psnr": 18.8,
                                                                          "pose_half": half})
    results = Memory()
    table1.collect(args, results)
    dome, ablation = results.data["dome"], results.data["ablation"]
    assert dome["RUST"]["pooled_psnr"] == 20.0 and dome["RUST"]["step"] == 20000 and dome["RUST"]["paper_psnr"] == 23.49
    assert dome["UpSRT noisy"]["pending"] and dome["UpSRT perfect"]["pending"]
    assert ablation["RUST (8-d latent)"]["pooled_psnr"] == 19.4  # the dome run at 6,000 steps
    assert ablation["3-d latent"]["pooled_psnr"] == 18.0 and ablation["no Pose Estimator self-attention"]["pending"]
    assert ablation["right-half PE at evaluation (full budget)"]["pose_half"] == "right"
    assert dome["RUST"]["run"].endswith("kept/dome_learn_panorama/dome_rust")
    claims = results.data["claims"]
    assert not claims["rust_within_1db_of_srt_perfect"]["met"]  # 20.0 < 21.5 − 1
    assert claims["rust_beats_srt_noisy_by_2db"]["met"] and "upsrt_noisy_below_upsrt_perfect" not in claims
    assert (table1.RESULTS / "table1.png").stat().st_size > 1000
    # Table 2's textured model trains on its own data, in a directory of its own
    assert table1.run_dir(args, row("RUST", "textured")).parts[-2:] == ("dome_learn_panorama_textured", "textured_rust")
    assert "textured" not in results.data  # not among --groups
    # a finished row is not scored again (the evaluate-only row would re-run a whole evaluation)
    monkeypatch.setattr(table1, "evaluate_other_way", lambda run, half: pytest.fail("evaluated again"))
    table1.collect(args, results)


def test_a_kept_run_restores_where_its_checkpoint_left_off(tmp_path):
    from rust_perception.training.checkpoint import list_checkpoints, save_checkpoint

    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints", 1200, {"model": {"w": torch.ones(2)}}, keep=3)
    (run / "config.yaml").write_text("steps: 2000\n")
    (run / "metrics.jsonl").write_text('{"step": 1200}\n')
    common.keep(run, tmp_path / "kept")
    fresh = tmp_path / "clone" / "run"
    common.restore(fresh, [tmp_path / "missing", tmp_path / "kept"])
    assert [p.name for p in list_checkpoints(fresh / "checkpoints")] == ["step_0001200.pt"]
    assert (fresh / "config.yaml").read_text() == "steps: 2000\n" and (fresh / "metrics.jsonl").is_file()
    (fresh / "metrics.jsonl").write_text("")
    common.restore(fresh, [tmp_path / "kept"])  # an existing run is never overwritten
    assert (fresh / "metrics.jsonl").read_text() == ""


def test_results_of_an_unchanged_budget_are_kept_per_group():
    budget = {"config": "c.yaml", "steps": 20000, "ablation_steps": 6000,
              "data": {"dome": "d.yaml", "street": "s.yaml", "textured": "t.yaml"}}
    previous = {"budget": {**budget, "data": {"dome": "d.yaml", "street": "old_s.yaml"}},  # before the textured group
                "dome": {"RUST": {}}, "ablation": {"3-d latent": {}}, "street": {"RUST": {}}, "claims": {"x": {}},
                "machine": {}}
    assert set(table1.reusable(previous, budget)) == {"dome", "ablation", "claims"}  # street's data changed
    assert table1.reusable({**previous, "budget": {**previous["budget"], "steps": 10000}}, budget) == {}
    assert table1.reusable({}, budget) == {}
    moved = {**previous, "budget": {**budget, "data": {**budget["data"], "dome": "other.yaml"}}}
    assert set(table1.reusable(moved, budget)) == {"street", "textured"} & set(moved)  # ablation and claims follow dome
