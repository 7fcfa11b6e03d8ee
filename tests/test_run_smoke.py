"""run.py end to end: the debug=smoke pipeline, and a user mistake that must stop it cleanly."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*overrides, cwd):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_smoke_run_trains_evaluates_and_writes_metrics(tmp_path):
    result = run("debug=smoke", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for stage in ("before", "after"):
        assert {"ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity"} <= set(metrics[stage])
        assert -1.0 <= metrics[stage]["p-mrr"] <= 1.0
        assert 0.0 <= metrics[stage]["instruction_sensitivity"] <= 1.0
    assert "| p-mrr |" in result.stdout  # the before/after table
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "logs" / "wandb").glob("offline-run-*")), "W&B offline run missing"
    assert "batch sizes:" in result.stderr + result.stdout  # the derived-size log line


def test_malformed_training_file_stops_before_training(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_positive": "q"\n')
    result = run("debug=smoke", "data=local", f"data.train_source={bad}", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode != 0
    message = result.stderr + result.stdout
    assert "bad.jsonl" in message and "line 1" in message
    assert "Traceback" not in message
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("override, listed", [("loss=nope", "multi_p_i"), ("model=nope", "minilm")])
def test_unknown_choice_lists_valid_ones(tmp_path, override, listed):
    result = run("debug=smoke", override, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode != 0
    assert listed in result.stderr + result.stdout


def test_evaluate_task_writes_flat_metrics(tmp_path):
    from infembed.data.synthetic import generate

    followir = generate(tmp_path / "synthetic", train_rows=5, eval_queries=4)["followir"]
    result = run("task=evaluate", "model=tiny", f"benchmark.path={followir}", f"hydra.run.dir={tmp_path}/ev", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"ndcg@10", "map@1000", "p-mrr"} <= set(metrics)
    assert "| followir |" in result.stdout


def test_evaluate_task_without_benchmark_is_a_clear_error(tmp_path):
    result = run("task=evaluate", "model=tiny", f"hydra.run.dir={tmp_path}/ev", cwd=tmp_path)
    assert result.returncode == 1
    assert "benchmark.path=DIR" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
