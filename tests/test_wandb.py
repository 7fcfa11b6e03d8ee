"""One Hydra job = one W&B run: a resumed job (same directory, ckpt_path=last) continues the run id, both runs log
metrics.json, per_query.json and the checkpoint (by reference) as artifacts offline, the step axis continues and the
config is logged once, nested. The offline runs are read from their ``run-<id>.wandb`` files
(:mod:`helpers.wandb_runs`)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers.wandb_runs import read_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A smoke run, then the same job resumed from its last checkpoint with more steps (what a requeue does)."""
    cwd = tmp_path_factory.mktemp("wandb")
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_DATA_DIR": str(cwd / "wandb_data"),
    }  # offline artifact copies stay in the test folder
    outputs = []
    resume = ["ckpt_path=last", "trainer.max_steps=9", "resume.allow_changes=[trainer.max_steps]"]
    for extra in ([], [*resume, "evaluation.before=false"]):
        result = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "debug=smoke", f"hydra.run.dir={cwd}/job", *extra],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout)
    folders = sorted((cwd / "logs" / "wandb").glob("offline-run-*"))
    return cwd, [read_run(f) for f in folders], folders, outputs


@pytest.mark.e2e
def test_resumed_job_continues_the_same_run(two_runs):
    cwd, runs, folders, _ = two_runs
    assert len(folders) == 2
    expected = hashlib.blake2b(str((cwd / "job").resolve()).encode(), digest_size=6).hexdigest()
    assert [r["id"] for r in runs] == [expected, expected]
    assert all(f.name.endswith("-" + expected) for f in folders)
    assert all(r["resume"] for r in runs)  # resume="allow": wandb sync appends both parts to one run
    # the resumed start (other overrides: more steps) keeps the first start's name
    assert runs[0]["name"] == runs[1]["name"] == "train/job debug=smoke"


@pytest.mark.e2e
def test_resumed_run_continues_the_step_axis(two_runs):
    _, runs, _, _ = two_runs
    first, resumed = ([s for s, _ in run["steps"]] for run in runs)
    assert all(
        step == global_step for run in runs for step, global_step in run["steps"]
    )  # _step = global step
    # Lightning logs step k's metrics at global step k - 1: 0-5 for the first 6 steps, 6-8 after the resume
    assert sorted(set(first)) == list(range(6)) and sorted(set(resumed)) == [6, 7, 8]  # not from 0 again


@pytest.mark.e2e
def test_checkpoint_artifact_is_a_reference_not_a_copy_under_home(two_runs):
    cwd, runs, _, _ = two_runs
    for run in runs:
        assert run["refs"]["model.ckpt"] == (cwd / "job" / "checkpoints" / "last.ckpt").resolve().as_uri()
    staged = [p for p in (cwd / "wandb_data").rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert not staged, staged  # W&B's staging folder holds no checkpoint copy (results files are small)


@pytest.mark.e2e
def test_results_and_checkpoint_are_artifacts_offline(two_runs):
    _, runs, _, _ = two_runs
    for run in runs:
        assert run["artifacts"] == {
            f"results-{run['id']}": ("results", ["clusters.json", "metrics.json", "per_query.json"]),
            f"model-{run['id']}": ("model", ["model.ckpt"]),
        }


@pytest.mark.e2e
def test_config_logged_once_and_nested(two_runs):
    cwd, runs, _, _ = two_runs
    top_level = sorted(yaml.safe_load((cwd / "job" / ".hydra" / "config.yaml").read_text()))
    for run in runs:
        assert sorted(run["config_keys"]) == top_level  # each key once; no flattened "module/..." copies


@pytest.mark.e2e
def test_resumed_progress_starts_at_the_checkpoint_step(two_runs):
    _, _, _, (first, resumed) = two_runs
    assert "training from step 0 to 6" in first
    assert (
        "training from step 6 to 9" in resumed
        and " - step 7/9 | " in resumed
        and " - step 1/9 " not in resumed
    )
