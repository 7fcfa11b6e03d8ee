"""The resume policy through run.py: a resume that would train something else (another loss, learning rate, step
budget) is refused with every difference listed; allowed by resume.allow_changes it takes effect from the resumed
step, and metrics.json, the logger and the checkpoints record each segment's settings."""

import csv
import json

import pytest
import torch
import yaml

from helpers import run_py
from helpers.faults import SMOKE

STEPS = ("trainer.max_steps=3", "trainer.val_check_interval=3")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("policy")
    result = run_py(*SMOKE, *STEPS, "optimizer.lr=1e-4", f"hydra.run.dir={cwd / 'a'}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "a" / "checkpoints" / "last.ckpt"


@pytest.mark.e2e
def test_a_resume_with_another_loss_and_learning_rate_is_refused_listing_both(first):
    cwd, ckpt = first
    result = run_py(
        *SMOKE,
        *STEPS,
        "loss=uni_p",
        "optimizer.lr=5e-5",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={cwd / 'b'}",
        cwd=cwd,
    )
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "ResumeError: " in line]
    assert result.returncode == 1 and "Traceback" not in output and len(errors) == 1, output[-3000:]
    assert (
        "loss.name: 'multi_p_i' -> 'uni_p'" in errors[0]
        and "module.optimizer.lr: 0.0001 -> 5e-05" in errors[0]
    )
    assert "resume.allow_changes=[" in errors[0]
    assert not (cwd / "b" / "checkpoints").exists()  # refused before anything was built


@pytest.mark.e2e
def test_an_allowed_learning_rate_takes_effect_and_each_segment_is_recorded(first):
    cwd, ckpt = first
    allowed = "resume.allow_changes=[module.optimizer.lr,trainer.max_steps]"
    result = run_py(
        *SMOKE, "trainer.max_steps=5", "optimizer.lr=5e-5", allowed, f"ckpt_path={ckpt}",
        f"hydra.run.dir={cwd / 'c'}", cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # linear schedule, no warmup at 5 steps: lr(step) = lr · (5 - step) / 5, with the new lr from step 3 on
    table = next((cwd / "c" / "csv").glob("version_*/metrics.csv")).read_text().splitlines()
    rows = list(csv.DictReader(table))
    lrs = {int(r["step"]): float(r["lr-AdamW/pg1"]) for r in rows if r.get("lr-AdamW/pg1")}
    assert lrs[3] == pytest.approx(5e-5 * 2 / 5) and lrs[4] == pytest.approx(5e-5 * 1 / 5)
    segments = [
        {"start_step": 0, "changes": {}},
        {"start_step": 3, "changes": {"module.optimizer.lr": [1e-4, 5e-5], "trainer.max_steps": [3, 5]}},
    ]
    metrics = json.loads((cwd / "c" / "metrics.json").read_text())
    assert metrics["segments"] == segments and metrics["config"]["module"]["optimizer"]["lr"] == 5e-5
    hparams = yaml.safe_load(next((cwd / "c" / "csv").glob("version_*/hparams.yaml")).read_text())
    assert hparams["resume"]["segments"] == segments
    saved = torch.load(cwd / "c" / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["callbacks"]["RunRecord"]["segments"] == segments
    assert all(
        g["lr"] == 0.0 and g["initial_lr"] == 5e-5 for g in saved["optimizer_states"][0]["param_groups"]
    )
