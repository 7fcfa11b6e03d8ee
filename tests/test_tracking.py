"""The W&B logger's checkpoint artifact: a reference by default (tested end to end in test_wandb.py), a real copy
when asked, and a wrong choice stopped before anything is loaded."""

import json
import subprocess
import sys

import pytest

from helpers import offline_env, run_py
from helpers.wandb_runs import read_run

COPY = """
import sys, wandb
from pathlib import Path
from infembed.tracking import WandbLogger

folder = Path(sys.argv[1])
logger = WandbLogger(save_dir=str(folder), offline=True, id="copyrun", checkpoint_artifact="copy")
try:
    logger.log_results(folder, folder / "last.ckpt")
finally:
    wandb.finish()
"""


@pytest.mark.e2e
def test_copy_uploads_the_checkpoint_itself(tmp_path):
    for name in ("metrics.json", "per_query.json"):
        (tmp_path / name).write_text(json.dumps({}))
    (tmp_path / "last.ckpt").write_bytes(b"\0" * 300_000)
    env = offline_env(WANDB_DATA_DIR=str(tmp_path / "wandb_data"))
    result = subprocess.run(
        [sys.executable, "-c", COPY, str(tmp_path)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_run(folder)
    assert run["artifacts"]["model-copyrun"] == ("model", ["model.ckpt"]) and "model.ckpt" not in run["refs"]
    staged = [p for p in (tmp_path / "wandb_data").rglob("*") if p.is_file() and p.stat().st_size == 300_000]
    assert staged  # the copy waits in W&B's staging folder for wandb sync


@pytest.mark.e2e
def test_an_unknown_choice_stops_before_anything_is_loaded(tmp_path):
    result = run_py("debug=smoke", "logger.checkpoint_artifact=upload", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "logger.checkpoint_artifact='upload': expected one of reference, copy, none" in output
    assert "Traceback" not in output and "Loading weights" not in output
