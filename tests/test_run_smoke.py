"""run.py end to end as a user runs it: the debug=smoke pipeline, evaluation of its checkpoint, and user mistakes
that must stop with one line naming the key (exit 1, no traceback, nothing written)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_py as run

ROOT = Path(__file__).resolve().parents[1]
METRICS = {"ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke training run that also evaluates a second benchmark (a small FollowIR folder) before and after."""
    from infembed.data.synthetic import generate

    cwd = tmp_path_factory.mktemp("smoke")
    followir = generate(cwd / "other", train_rows=5, eval_queries=4)["followir"]
    result = run(
        "debug=smoke",
        "benchmark=followir",
        f"benchmark.path={followir}",
        "benchmark.name=other",
        f"hydra.run.dir={cwd}/run",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, result


@pytest.mark.e2e
def test_smoke_run_trains_evaluates_and_writes_results(smoke):
    cwd, result = smoke
    metrics = json.loads((cwd / "run" / "metrics.json").read_text())
    per_query = json.loads((cwd / "run" / "per_query.json").read_text())
    assert metrics["task"] == "train" and metrics["config"]["loss"]["name"] == "multi_p_i"
    for stage in ("before", "after"):
        assert set(metrics[stage]) == {
            "synthetic",
            "other",
        }  # the held-out topics and the configured benchmark
        assert "p-mrr" in metrics[stage]["other"] and 0 < len(per_query[stage]["other"]["p-mrr"]) <= 4
        values = metrics[stage]["synthetic"]
        assert set(values) == METRICS
        assert -1.0 <= values["p-mrr"] <= 1.0 and 0.0 <= values["instruction_sensitivity"] <= 1.0
        queries = per_query[stage]["synthetic"]["p-mrr"]
        assert len(queries) == 12 and sum(queries.values()) / 12 == pytest.approx(values["p-mrr"])
    assert "| synthetic | p-mrr |" in result.stdout  # the before/after table
    assert (cwd / "run" / "checkpoints" / "last.ckpt").is_file()
    assert list((cwd / "logs" / "wandb").glob("offline-run-*")), "W&B offline run missing"
    assert "batch sizes:" in result.stderr + result.stdout  # the derived-size log line


@pytest.mark.e2e
def test_checkpoint_evaluates_with_text_overrides(smoke, tmp_path):
    cwd, _ = smoke
    from infembed.data.synthetic import generate

    followir = generate(tmp_path / "synthetic", train_rows=5, eval_queries=4)["followir"]
    ckpt = cwd / "run" / "checkpoints" / "last.ckpt"
    common = ("task=evaluate", f"ckpt_path={ckpt}", f"benchmark.path={followir}")
    result = run(*common, "model.max_passage_length=64", f"hydra.run.dir={tmp_path}/ev", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["task"] == "evaluate" and "before" not in metrics
    assert {"ndcg@10", "map@1000", "p-mrr"} <= set(metrics["after"]["followir"])
    assert "| followir | p-mrr |" in result.stdout
    refused = run(*common, "model.pooling=cls", f"hydra.run.dir={tmp_path}/ev2", cwd=tmp_path)
    assert refused.returncode == 1 and "model.pooling" in refused.stderr + refused.stdout
    assert not (tmp_path / "ev2" / "metrics.json").exists()


@pytest.mark.e2e
def test_malformed_training_file_stops_before_training(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_positive": "q"\n')
    result = run(
        "debug=smoke", "data=local", f"data.train_source={bad}", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path
    )
    assert result.returncode != 0
    message = result.stderr + result.stdout
    assert "bad.jsonl" in message and "line 1" in message
    assert "Traceback" not in message
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("override, listed", [("loss=nope", "multi_p_i"), ("model=nope", "minilm")])
def test_unknown_choice_lists_valid_ones(tmp_path, override, listed):
    result = run("debug=smoke", override, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode != 0
    assert listed in result.stderr + result.stdout


WRONG = [
    ("trainer.max_steps=-1", "trainer.max_steps=-1: expected an integer >= 1"),
    ("data.global_batch_size=0", "data.global_batch_size=0: expected an integer >= 1"),
    ("data.global_batch_size=abc", "data.global_batch_size='abc': expected an integer >= 1"),
    ("trainer.precision=bf17", "trainer.precision='bf17': expected one of"),
    ("trainer.accumulate_grad_batches=3", "divisible by trainer.devices"),
    ("kernel=cuda", "kernel='cuda': expected one of auto"),
    ("loss.temperature=0", "loss.temperature=0: expected a number > 0"),
    ("optimized_metric=p-mrr", "optimized_metric='p-mrr': expected STAGE/BENCHMARK/METRIC"),
    ("model.pooling=max", "model.pooling='max': expected one of mean"),
    ("model.pair_template=only", "model.pair_template='only': expected the fields ['query', 'instruction']"),
    ("scheduler.warmup_ratio=1.5", "module.scheduler.warmup_ratio=1.5: expected a number in [0, 1)"),
    ("ckpt_path=/no/such.ckpt", "ckpt_path=/no/such.ckpt: no such checkpoint file"),
    ("+trainer.max_step=5", "trainer.max_step: not an argument of lightning.Trainer"),
    (
        "+loss.temprature=0.1",
        "loss.temprature: not an argument of infembed.losses.build_loss (did you mean loss.te",
    ),
    ("evaluation.wise_ft=2", "evaluation.wise_ft=2: expected a number in [0, 1]"),
    ("evaluation.wise_ft=0.5", "evaluation.wise_ft interpolates a trained checkpoint"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("override, expected", WRONG, ids=[o for o, _ in WRONG])
def test_wrong_command_lines_fail_with_one_line(tmp_path, override, expected):
    result = run("debug=smoke", "logger=csv", override, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    message = result.stderr + result.stdout
    assert result.returncode == 1, message[-2000:]
    assert expected in message and "Traceback" not in message
    assert not (tmp_path / "data").exists()  # failed before any data was generated
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.e2e
def test_evaluate_task_without_benchmark_is_a_clear_error(tmp_path):
    result = run("task=evaluate", "model=tiny", f"hydra.run.dir={tmp_path}/ev", cwd=tmp_path)
    assert result.returncode == 1
    assert "benchmark.path=DIR" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.e2e
def test_an_internal_error_keeps_its_traceback(tmp_path):
    """Not a UserError (a bug, a library's ValueError): run.py prints its whole traceback, not one line."""
    script = tmp_path / "buggy_run.py"
    script.write_text(
        "import runpy, sys\n"
        "import infembed.pipeline\n"
        "def shape_bug(cfg):\n"
        "    raise ValueError('shapes (3, 4) and (5, 6) not aligned')\n"
        "infembed.pipeline.run_task = shape_bug  # the bug, injected where run.py calls the pipeline\n"
        f"sys.argv = ['run.py', 'debug=smoke', 'logger=csv', 'hydra.run.dir={tmp_path}/run']\n"
        f"runpy.run_path({str(ROOT / 'run.py')!r}, run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "shape_bug" in result.stderr and "not aligned" in result.stderr
