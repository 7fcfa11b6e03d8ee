"""An ad-hoc ``-m`` sweep (no experiment_name): its W&B runs share the sweep directory as their group, and their
names carry it, so two sweeps of the same grid never give runs of the same name."""

import pytest

from helpers import run_py
from helpers.wandb_runs import read_run


@pytest.mark.e2e
def test_adhoc_sweep_is_grouped_by_its_directory(tmp_path):
    result = run_py(
        "-m",
        "debug=smoke",
        "evaluation.before=false",
        "trainer.max_steps=2",
        "loss=uni_p,uni_i",
        f"hydra.sweep.dir={tmp_path}/multiruns/sweep-a",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [read_run(f) for f in sorted((tmp_path / "logs" / "wandb").glob("offline-run-*"))]
    assert [r["group"] for r in runs] == ["train/sweep-a", "train/sweep-a"]
    assert sorted(r["name"] for r in runs) == [
        "train/sweep-a/0 debug=smoke evaluation.before=False loss=uni_p trainer.max_steps=2",
        "train/sweep-a/1 debug=smoke evaluation.before=False loss=uni_i trainer.max_steps=2",
    ]
