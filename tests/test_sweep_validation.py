"""Multiruns as a user launches them: every job's config is composed and validated in the launching process before
any job starts (basic, submitit-local and SLURM launchers), and a sweep on local InF-IR files (no synthetic
held-out set, so no default optimized_metric) finishes all its jobs."""

import json

import pytest

from infembed.data.synthetic import generate
from infembed.preflight import validate

from helpers import run_py
from helpers.compose import compose_in

LOSSES = "multi_i_iq, multi_p_i, multi_p_i_iq, multi_p_iq, uni_i, uni_i_iq, uni_iq, uni_p, uni_p_i, uni_p_i_iq, uni_p_iq"
BROKEN_JOB_2 = [
    ("basic", "trainer.max_steps=6,6,0", "sweep job 2 ", "trainer.max_steps=0: expected an integer >= 1"),
    ("local", "loss=uni_p,uni_iq,foo", "sweep job 2 ", f"loss=foo: no such option; expected one of {LOSSES}"),
    (
        "slurm",
        "evaluation.before=true,nope",
        "sweep job 1 ",
        "evaluation.before='nope': expected true or false",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize("launcher, sweep, job, message", BROKEN_JOB_2, ids=[b[0] for b in BROKEN_JOB_2])
def test_a_typo_in_a_later_job_stops_the_sweep_before_any_job(tmp_path, launcher, sweep, job, message):
    result = run_py(
        "-m",
        "debug=smoke",
        "logger=csv",
        f"launcher={launcher}",
        sweep,
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"ConfigError: {job}(") and message in lines[0]
    assert [p.name for p in (tmp_path / "sweep").iterdir()] == [
        "multirun.yaml"
    ]  # no job directory, no .submitit
    assert not (tmp_path / "data").exists()


@pytest.mark.e2e
def test_a_sweep_on_local_files_finishes_every_job(tmp_path):
    files = generate(tmp_path / "inf_ir", train_rows=40, eval_queries=2)
    result = run_py(
        "-m",
        "debug=smoke",
        "logger=csv",
        "data=local",
        f"data.train_source={files['train']}",
        "loss=uni_p,multi_p_i",
        "evaluation.before=false",
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for job, loss in enumerate(("uni_p", "multi_p_i")):
        metrics = json.loads((tmp_path / "sweep" / str(job) / "metrics.json").read_text())
        assert metrics["config"]["loss"]["name"] == loss and metrics["config"]["optimized_metric"] is None
    assert "optimized_metric" not in result.stdout + result.stderr


@pytest.mark.e2e
def test_evaluate_returns_no_metric_and_warns_about_none(tmp_path):
    followir = generate(tmp_path / "bench", train_rows=5, eval_queries=3)["followir"]
    result = run_py(
        "task=evaluate",
        "model=tiny",
        f"benchmark.path={followir}",
        f"hydra.run.dir={tmp_path}/ev",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stdout + result.stderr
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["config"]["optimized_metric"] is None


def test_default_optimized_metric_follows_the_data(tmp_path):
    assert compose_in(tmp_path).optimized_metric == "after/synthetic/p-mrr"
    assert compose_in(tmp_path, "data=local").optimized_metric is None
    assert compose_in(tmp_path, "task=evaluate").optimized_metric is None


OPTIMIZED = [
    (("optimized_metric=after/followir/p-mrr", "benchmark.path=/b/followir"), None),
    (("optimized_metric=before/other/ndcg@10", "benchmark.path=/b/x", "benchmark.name=other"), None),
    (
        (
            "optimized_metric='after/x (no instruction)/ndcg@10'",
            "benchmark.path=/b/x",
            "benchmark.use_instruction=both",
        ),
        None,
    ),
    (("optimized_metric=after/nope/p-mrr",), "expected one of before/synthetic/ndcg@10, "),
    (
        ("optimized_metric=before/synthetic/p-mrr", "evaluation.before=false"),
        "expected one of after/synthetic/",
    ),
    (("optimized_metric=after/synthetic/map@5",), "this run does not produce it"),
    (("optimized_metric=after/synthetic/p-mrr", "data=local"), "expected one of none"),
]


@pytest.mark.parametrize("overrides, refused", OPTIMIZED, ids=[o[0][0] for o in OPTIMIZED])
def test_optimized_metric_is_checked_against_what_the_run_writes(tmp_path, overrides, refused):
    cfg = compose_in(tmp_path, "model=tiny", *overrides)
    if refused is None:
        validate(cfg)
    else:
        with pytest.raises(ValueError, match=refused.replace("(", r"\(").replace(")", r"\)")):
            validate(cfg)
