"""The report tool on fabricated job directories in the results schema that both tasks write.

Each job holds ``.hydra/{overrides,config,hydra}.yaml``, ``metrics.json`` ``{"task", "before"?, "after":
{BENCH: {METRIC: value}}, "num_parameters", "config"}`` and ``per_query.json`` ``{"before"?, "after": {BENCH:
{METRIC: {query_id: value}}}}``. The CLI runs in a subprocess, as a user runs it.
"""

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from infembed.report import ReportInputError, group_configurations, load_runs, write_report
from infembed.report.__main__ import main
from infembed.report.plots import write_plots
from infembed.report.runs import expected_overrides, parse_overrides

SRC = Path(__file__).resolve().parents[1] / "src"
T_975 = {
    2: 4.302652729749464,
    1: 12.706204736174698,
}  # Student t quantile 0.975 by degrees of freedom (tables)
QUERIES = [f"q{i}" for i in range(50)]


def make_job(
    root: Path,
    num: int,
    overrides: list[str],
    after: dict | None,
    before: dict | None = None,
    choices: dict | None = None,
    task: str = "train",
    seed: int = 42,
) -> Path:
    """A job directory; ``after``/``before`` are ``{BENCH: {METRIC: {query_id: value}}}`` (None: the job crashed).

    metrics.json holds the per-query means, as the pipeline writes them.
    """
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": "${oc.env:NOPE,1}"}))
    (job / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": choices or {}}}})
    )
    if after is None:
        return job
    stages = {"after": after, **({"before": before} if before else {})}
    means = {
        s: {b: {m: float(np.mean(list(q.values()))) for m, q in ms.items()} for b, ms in v.items()}
        for s, v in stages.items()
    }
    config = {"seed": seed, "data": {"global_batch_size": 8}, "optimized_metric": "after/synthetic/p-mrr"}
    (job / "metrics.json").write_text(
        json.dumps({"task": task, **means, "num_parameters": 1000, "config": config})
    )
    (job / "per_query.json").write_text(json.dumps(stages))
    return job


def synthetic(p_mrr: np.ndarray, ndcg: np.ndarray | None = None) -> dict:
    values = {"p-mrr": dict(zip(QUERIES, p_mrr.tolist()))}
    if ndcg is not None:
        values["ndcg@10"] = dict(zip(QUERIES, ndcg.tolist()))
    return {"synthetic": values}


def write_multirun(root: Path, params: dict[str, str], task: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "multirun.yaml").write_text(
        yaml.safe_dump(
            {"hydra": {"sweeper": {"params": params}, "overrides": {"task": task}}}, sort_keys=False
        )
    )


def report(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "infembed.report", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown rows whose first cell is ``first_cell``."""
    cells = [
        [c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]
    return [c for c in cells if c[0] == first_cell]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    """loss a, b × seed 1, 2, 3 and loss c (seed 1 finished, 2 crashed, 3 never started); a separate evaluate job.

    Per query: a = u + e_seed with Σ_seed e = 0; b = a + 0.3 + noise (a large consistent shift); c = a's seed mean
    (identical per-query values, so a vs c has p = 1).
    """
    rng = np.random.default_rng(7)
    u = rng.uniform(0.2, 0.6, size=50)
    noise = rng.uniform(-0.05, 0.05, size=50)
    e = {1: -0.02 * rng.random(50), 3: 0.01 * rng.random(50)}
    e[2] = -(e[1] + e[3])
    a_mean = np.mean([u + e[s] for s in (1, 2, 3)], axis=0)  # (50,) exactly what the tool averages for loss a
    before = synthetic(np.full(50, 0.1), np.full(50, 0.4))
    root = tmp_path_factory.mktemp("study") / "multirun"
    write_multirun(root, {"loss": "a,b,c", "seed": "1,2,3"}, ["sweep=s"])
    values = {}
    for num, (loss, seed) in enumerate((loss, seed) for loss in "abc" for seed in (1, 2, 3)):
        values[loss, seed] = {"a": u + e[seed], "b": u + e[seed] + 0.3 + noise, "c": a_mean}[loss]
        if (loss, seed) == ("c", 3):
            continue  # never started
        after = (
            None if (loss, seed) == ("c", 2) else synthetic(values[loss, seed], 0.5 + values[loss, seed] / 2)
        )
        make_job(
            root, num, ["sweep=s", f"loss={loss}", f"seed={seed}"], after, before, {"loss": loss}, seed=seed
        )
    evaluate = tmp_path_factory.mktemp("evaluate")
    make_job(evaluate, 0, ["task=evaluate", "ckpt_path=/ckpt/last.ckpt"], synthetic(u - 0.1), task="evaluate")
    out = root.parent / "out"
    result = report(root, evaluate, "--out", out, "--title", "Study")
    return {"root": root, "evaluate": evaluate, "out": out, "result": result, "values": values, "u": u}


@pytest.mark.e2e
def test_configurations_show_mean_and_crossed_bootstrap_interval(study):
    assert study["result"].returncode == 0, study["result"].stderr
    text = study["result"].stdout
    assert (
        "written: " in text
        and "| jobs | loss | task | ckpt_path | seeds (n) | synthetic/ndcg@10 (Δ) |" in text
    )
    for loss in "ab":
        (row,) = rows(text, {"a": "0, 1, 2", "b": "3, 4, 5"}[loss])
        assert row[1:5] == [loss, "–", "–", "1, 2, 3 (3)"]
        p_mrr = [
            float(np.mean(study["values"][loss, s])) for s in (1, 2, 3)
        ]  # metrics.json value of each seed
        change = statistics.mean(p_mrr) - 0.1
        mean = (
            f"**{100 * statistics.mean(p_mrr):.1f}**"
            if loss == "b"
            else f"{100 * statistics.mean(p_mrr):.1f}"
        )
        assert row[6].startswith(f"{mean} [") and row[6].endswith(f"] ({100 * change:+.1f})")
        low, high = (float(x) for x in row[6].split("[")[1].split("]")[0].split(","))
        assert low < 100 * statistics.mean(p_mrr) < high
    (row_c,) = rows(text, "6")
    assert row_c[4] == "1 (1)" and "[" in row_c[6]  # one seed: an interval over queries
    (row_eval,) = rows(text, "0")  # the evaluate job is finished: no "before", so no change
    assert row_eval[1:4] == ["–", "evaluate", "/ckpt/last.ckpt"]
    assert row_eval[6].startswith(f"{100 * np.mean(study['u'] - 0.1):.1f} [")
    assert "8 of 10 runs finished, 4 configurations" in text


@pytest.mark.e2e
def test_failed_and_never_started_runs_are_listed(study):
    text = study["result"].stdout
    assert "- `loss=c seed=2` in" in text and "no metrics.json" in text
    assert "- `loss=c seed=3` in" in text and "never started (expected by multirun.yaml)" in text
    assert "task=evaluate" not in text.split("## Failed or missing runs")[1]


@pytest.mark.e2e
def test_paired_tests_against_the_best_configuration(study):
    text = study["result"].stdout
    assert "each configuration against the best on after/synthetic/p-mrr, `loss=b`" in text
    tested = {
        (r[1], r[2])
        for r in rows(text, "loss=a")
        + rows(text, "loss=c")
        + rows(text, "task=evaluate ckpt_path=/ckpt/last.ckpt")
    }
    assert tested == {("loss=b", "synthetic/p-mrr"), ("loss=b", "synthetic/ndcg@10")}
    (row,) = [r for r in rows(text, "loss=a") if r[2] == "synthetic/p-mrr"]
    seed_mean = {
        x: np.mean([study["values"][x, s] for s in (1, 2, 3)], axis=0) for x in "ab"
    }  # (50,) per loss
    assert row[3:5] == ["3, 3", "50"]
    assert row[5] == f"{100 * np.mean(seed_mean['a'] - seed_mean['b']):+.1f}"
    assert float(row[7]) == 0.25  # a large consistent shift, but 3 seed pairs cannot give less (2 / 2^3)
    assert row[9] == "runs: 3 seed pairs, label flips within seed (p ≥ 0.25)"
    low, high = (float(x) for x in row[6].strip("[]").split(","))
    assert low < 100 * np.mean(seed_mean["a"] - seed_mean["b"]) < high < 0


@pytest.mark.e2e
def test_identical_per_query_values_give_p_one(study, tmp_path):
    result = report(
        study["root"], "--out", tmp_path, "--compare", "loss=a", "loss=c", "--permutations", "2000"
    )
    assert result.returncode == 0, result.stderr
    (row,) = [
        line for line in result.stdout.splitlines() if line.startswith("| loss=a | loss=c | synthetic/p-mrr")
    ]
    assert "| 3, 1 | 50 | +0.0 | [" in row  # the interval resamples a's seeds: not a point
    assert "| 1.0000 | 1.0000 | 50 queries only, sign flips (one run" in row


@pytest.mark.e2e
def test_sign_flip_p_value_is_exact_for_three_queries(tmp_path):
    """d = (0.1, −0.1, 0.2): of the 8 sign patterns, |Σ ε d| ≥ 0.2 for 6 (sums ±0.2, ±0.4, ±0.2) → p = 6/8."""
    root = tmp_path / "tiny"
    three = ["q0", "q1", "q2"]
    for num, (loss, values) in enumerate([("x", [0.5, 0.3, 0.6]), ("y", [0.4, 0.4, 0.4])]):
        make_job(root, num, [f"loss={loss}"], {"synthetic": {"p-mrr": dict(zip(three, values))}})
    result = report(root, "--out", tmp_path / "out", "--compare", "loss=x", "loss=y")
    assert result.returncode == 0, result.stderr
    assert "| loss=x | loss=y | synthetic/p-mrr | 1, 1 | 3 | +6.7 |" in result.stdout
    row = result.stdout.split("| loss=x | loss=y | synthetic/p-mrr |")[1].splitlines()[0]
    assert "| 0.7500 | 0.7500 | 3 queries only" in row  # a family of one: Holm changes nothing


@pytest.mark.e2e
def test_baseline_and_unknown_configuration(study, tmp_path, capsys):
    assert (
        main([str(study["root"]), "--out", str(tmp_path), "--baseline", "loss=c", "--permutations", "100"])
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "against the baseline `loss=c`" in out and "| loss=b | loss=c | synthetic/p-mrr | 3, 1 | 50 |" in out
    )
    assert main([str(study["root"]), "--out", str(tmp_path), "--compare", "loss=a", "loss=z"]) == 1
    assert (
        "configuration 'loss=z' matches no configuration (known: loss=a; loss=b; loss=c)"
        in capsys.readouterr().err
    )


@pytest.mark.e2e
def test_plots_carry_the_intervals(study, monkeypatch, tmp_path):
    """The bar plot's error bars are the table's intervals; PDF and SVG lie beside the PNG."""
    import matplotlib.axes

    text = study["result"].stdout
    assert (study["out"] / "metrics.png").read_bytes()[
        :8
    ] == b"\x89PNG\r\n\x1a\n" and "](metrics.png)" in text
    assert (study["out"] / "metrics.pdf").read_bytes()[:4] == b"%PDF"
    assert b"<svg" in (study["out"] / "metrics.svg").read_bytes()[:1000]
    assert not (study["out"] / "metrics_vs_batch.png").exists()  # one batch size: no batch plot
    bars = []
    monkeypatch.setattr(matplotlib.axes.Axes, "bar", lambda self, x, h, **kw: bars.append((h, kw["yerr"])))
    configs = group_configurations(load_runs([study["root"]]))
    write_plots(configs, [("synthetic", "p-mrr")], tmp_path, 2000, 0)
    height, ((below,), (above,)) = bars[0]
    p_mrr_a = [float(np.mean(study["values"]["a", s])) for s in (1, 2, 3)]
    assert height == pytest.approx(100 * statistics.mean(p_mrr_a))
    low, high = configs[0].interval("after", ("synthetic", "p-mrr"), 2000, 0)
    assert (height - below, height + above) == pytest.approx((100 * low, 100 * high))


def test_without_per_query_values_the_cell_is_the_t_interval_over_seeds(tmp_path):
    root = tmp_path / "r"
    means = [0.2, 0.3, 0.5]
    for num, value in enumerate(means):
        job = make_job(root, num, ["loss=x", f"seed={num}"], synthetic(np.full(50, value)), seed=num)
        (job / "per_query.json").unlink()
    text = write_report([root], tmp_path / "out").read_text()
    half = T_975[2] * statistics.stdev(means) / math.sqrt(3)
    (row,) = rows(text, "0, 1, 2")
    assert row[-1] == f"**{100 * statistics.mean(means):.1f}** ± {100 * half:.1f}"
    assert "`synthetic`: no per-query values" in text


def test_model_plot_uses_parameter_count(tmp_path):
    root = tmp_path / "m"
    for num, model in enumerate(["tiny", "minilm"]):
        make_job(root, num, [f"model={model}"], synthetic(np.full(50, 0.1 * num)), choices={"model": model})
    write_report([root], tmp_path / "out")
    assert all((tmp_path / "out" / f"metrics_vs_model.{fmt}").is_file() for fmt in ("png", "pdf", "svg"))


@pytest.mark.e2e
def test_malformed_metrics_is_one_clear_error(tmp_path):
    job = make_job(tmp_path / "r", 0, ["loss=x"], None)
    (job / "metrics.json").write_text("{not json")
    result = report(tmp_path / "r", "--out", tmp_path / "out")
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: {job / 'metrics.json'}: not valid JSON (line 1: ")


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"after": {"p-mrr": 0.5}}',
            "after/p-mrr = 0.5, expected an object {METRIC: value}",
        ),  # the old flat schema
        ('{"before": {}, "after": {}}', 'no "after" results (expected {"after": {BENCH: {METRIC: value}}})'),
        ('{"after": {"synthetic": {"p-mrr": "high"}}}', "after/synthetic/p-mrr = 'high', expected a number"),
        ("[1]", "expected a JSON object, got list"),
    ],
)
def test_metrics_schema_errors_name_file_and_field(tmp_path, capsys, content, message):
    job = make_job(tmp_path / "r", 0, ["loss=x"], None)
    (job / "metrics.json").write_text(content)
    assert main([str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"error: {job / 'metrics.json'}: {message}\n"


def test_bad_inputs_exit_with_one_line(tmp_path, capsys):
    def error(*args) -> str:
        assert main([str(a) for a in args]) == 1
        return capsys.readouterr().err

    assert "no such directory" in error(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert "no Hydra job directories" in error(tmp_path / "empty")
    job = make_job(tmp_path / "bad", 0, ["loss=x"], None)
    (job / ".hydra" / "overrides.yaml").write_text("loss: x\n")
    assert "overrides.yaml: expected a YAML list" in error(tmp_path / "bad")
    job = make_job(tmp_path / "pq", 0, ["loss=x"], synthetic(np.zeros(50)))
    (job / "per_query.json").write_text('{"after": {"synthetic": {"p-mrr": {"q0": null}}}}')
    assert "per_query.json: after/synthetic/p-mrr/q0 = None, expected a number" in error(tmp_path / "pq")
    (job / "per_query.json").unlink()
    make_job(tmp_path / "pq", 1, ["loss=y"], synthetic(np.zeros(50)))
    assert "expected STAGE/BENCHMARK/METRIC" in error(tmp_path / "pq", "--metric", "after/p-mrr")
    assert "--metric after/arguana/p-mrr: no finished run has it" in error(
        tmp_path / "pq", "--metric", "after/arguana/p-mrr"
    )


def test_expected_jobs_match_hydras_basic_sweeper(tmp_path):
    """The grid expansion (no hydra._internal in the tool) equals Hydra's own, range sweeps and later keys included."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = {"loss": "uni_p,multi_p_i", "seed": "range(1,4)", "data.global_batch_size": "8"}
    task = ["sweep=s", "data.global_batch_size=16,32", "+extra=1"]
    write_multirun(tmp_path, params, task)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()] + task)
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    assert expected_overrides(tmp_path) == [parse_overrides(job) for job in jobs] and len(jobs) == 12
    write_multirun(tmp_path, {"lr": "interval(0.1,1)"}, [])
    assert expected_overrides(tmp_path) is None  # not a grid (an Optuna-style search): nothing expected
    write_multirun(tmp_path, {"lr": "choice(0.1"}, [])
    with pytest.raises(ReportInputError, match=r"multirun.yaml: unreadable sweep overrides"):
        expected_overrides(tmp_path)


def test_evaluations_of_checkpoints_group_by_their_training_jobs(tmp_path):
    """task=evaluate jobs of a seed sweep's checkpoints are the sweep's configurations, seeds as replicates; the
    checkpoint path may be relative to the evaluation's working directory; the untrained model keeps ckpt_path; a
    training job that skipped its own "before" evaluation trained the same model."""
    train = tmp_path / "train"
    jobs = (["loss=a", "seed=1"], ["loss=a", "seed=2", "evaluation.before=false"], ["loss=b", "experiment=t"])
    for num, overrides in enumerate(jobs):
        make_job(train, num, overrides, synthetic(np.full(50, 0.5)))
    (train / "2" / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": 7}))
    ev = tmp_path / "ev"
    ckpts = [
        "null",
        f"{train}/0/checkpoints/last.ckpt",
        f"{train}/1/checkpoints/last.ckpt",
        "train/2/checkpoints/last.ckpt",
    ]
    write_multirun(ev, {}, ["experiment=e", "ckpt_path=" + ",".join(ckpts)])
    for num, (ckpt, value) in enumerate(zip(ckpts, (0.2, 0.4, 0.6, 0.9))):
        job = make_job(
            ev, num, ["experiment=e", f"ckpt_path={ckpt}"], synthetic(np.full(50, value)), task="evaluate"
        )
        (job / ".hydra" / "hydra.yaml").write_text(
            yaml.safe_dump({"hydra": {"runtime": {"cwd": str(tmp_path)}}})
        )
    runs = load_runs([ev])
    assert all(
        run.ok for run in runs
    )  # matched to multirun.yaml by the launched overrides: none "never started"
    configs = {c.label: c for c in group_configurations(runs)}
    assert set(configs) == {"ckpt_path=null", "loss=a", "loss=b trained:experiment=t"}
    assert [r.seed for r in configs["loss=a"].runs] == ["1", "2"]
    assert configs["loss=a"].summary("after", ("synthetic", "p-mrr"))[0] == pytest.approx(0.5)
    assert [r.seed for r in configs["loss=b trained:experiment=t"].runs] == ["7"]
