"""Exact resume through run.py: a run resumed from a middle checkpoint ends bit-identical (weights, optimiser state,
logged losses) to the run that never stopped — dropout on, 0 and 2 DataLoader workers, 2 gloo ranks."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.training import same

ROOT = Path(__file__).resolve().parents[1]
STEPS = 5
COMMON = (
    "debug=smoke",
    "logger=csv",
    "evaluation.before=false",
    "~callbacks.progress",
    f"trainer.max_steps={STEPS}",
    "trainer.val_check_interval=2",
    "callbacks.checkpoint.every_n_train_steps=1",
    "callbacks.checkpoint.save_top_k=-1",
)
DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true")


def run(*overrides, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def logged_losses(run_dir: Path, first_step: int) -> list[tuple]:
    rows = []
    for path in sorted(run_dir.glob("csv/version_*/metrics.csv")):
        with open(path) as handle:
            rows += [
                (int(r["step"]), r["train/loss"], r["train/l_p"], r["train/l_i"])
                for r in csv.DictReader(handle)
                if r.get("train/loss") and int(r["step"]) >= first_step
            ]
    return rows


def assert_identical_to_uninterrupted(cwd: Path, overrides: tuple, resume_from: int) -> None:
    run(*COMMON, *overrides, f"hydra.run.dir={cwd}/full", cwd=cwd)
    start = cwd / "full" / "checkpoints" / f"step{resume_from}.ckpt"
    run(*COMMON, *overrides, f"hydra.run.dir={cwd}/resumed", f"ckpt_path={start}", cwd=cwd)
    full = torch.load(cwd / "full" / "checkpoints" / f"step{STEPS}.ckpt", weights_only=False)
    resumed = torch.load(cwd / "resumed" / "checkpoints" / f"step{STEPS}.ckpt", weights_only=False)
    assert full["global_step"] == resumed["global_step"] == STEPS
    assert same(full["state_dict"], resumed["state_dict"]), "weights differ after resume"
    assert same(full["optimizer_states"], resumed["optimizer_states"]), "optimiser state differs after resume"
    assert same(full["InfIRDataModule"], resumed["InfIRDataModule"])
    losses = logged_losses(cwd / "full", resume_from)
    assert len(losses) == STEPS - resume_from and losses == logged_losses(cwd / "resumed", resume_from)


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_a_middle_step_is_bit_identical(tmp_path, workers):
    # step 3 is odd: with 2 workers the resumed loader must start from the worker that owns batch 3
    assert_identical_to_uninterrupted(tmp_path, (f"data.num_workers={workers}",), resume_from=3)


# two 2-process DDP runs plus the resume: about 2-3 minutes on a 2-core machine
@pytest.mark.e2e
def test_resume_under_two_gloo_ranks_is_bit_identical(tmp_path):
    assert_identical_to_uninterrupted(tmp_path, DDP, resume_from=3)


@pytest.mark.e2e
def test_resume_with_other_data_settings_is_refused(tmp_path):
    run(*COMMON, "trainer.max_steps=1", f"hydra.run.dir={tmp_path}/a", cwd=tmp_path)
    result = run(
        *COMMON,
        "data.shuffle_buffer=3",
        f"hydra.run.dir={tmp_path}/b",
        f"ckpt_path={tmp_path}/a/checkpoints/last.ckpt",
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert "data.shuffle_buffer: 64 -> 3" in output
