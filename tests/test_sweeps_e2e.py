"""A 2×2 grid (loss × global batch) through launcher=local with debug=smoke, then the report tool on its output."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from infembed.config import register_resolvers
from infembed.data import synthetic
from infembed.data.datamodule import synthetic_dir
from infembed.report import load_runs, write_report

ROOT = Path(__file__).resolve().parents[1]
register_resolvers()


def pregenerate_data(cwd: Path) -> None:
    """Write the smoke run's synthetic data once, so the two parallel jobs of a batch only read it."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["debug=smoke", f"paths.root_dir={cwd}"])
    synthetic.ensure(synthetic_dir(cfg.data.train_source), **cfg.data.synthetic)


@pytest.mark.e2e
def test_grid_through_local_launcher_and_report(tmp_path):
    pregenerate_data(tmp_path)
    sweep_dir = tmp_path / "multirun"
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "-m",
            "debug=smoke",
            "logger=csv",
            "launcher=local",
            "experiment_name=e2e",
            "loss=uni_p,multi_p_i",
            "data.global_batch_size=4,8",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    runs = load_runs([sweep_dir])
    assert len(runs) == 4 and all(run.ok for run in runs), [(r.path, r.error) for r in runs if not r.ok]
    assert all({"ndcg@10", "p-mrr"} <= set(run.metrics["after"]["synthetic"]) for run in runs)
    assert {(r.overrides["loss"], r.overrides["data.global_batch_size"]) for r in runs} == {
        ("uni_p", "4"),
        ("uni_p", "8"),
        ("multi_p_i", "4"),
        ("multi_p_i", "8"),
    }

    report = write_report([sweep_dir], tmp_path / "report").read_text()
    header = (
        "| jobs | data.global_batch_size | loss | seeds (n) | synthetic/ndcg@10 (Δ) | synthetic/mrr@10 (Δ) | "
        "synthetic/p-mrr (Δ) | synthetic/instruction_sensitivity (Δ) |"
    )
    assert header in report
    rows = [line for line in report.splitlines() if line.split("|")[2:3] in ([" 4 "], [" 8 "])]
    assert len(rows) == 4
    for plot in ("metrics", "metrics_vs_batch"):
        for fmt in ("png", "pdf", "svg"):
            assert (tmp_path / "report" / f"{plot}.{fmt}").stat().st_size > 1000
