"""Query clusters, one path: the ``cluster`` field of a benchmark's queries.jsonl → the evaluation → ``clusters.json``
beside per_query.json → the report, which resamples and tests whole clusters."""

import itertools
import json

import numpy as np
import pytest

from infembed.eval.benchmarks import BenchmarkDataError, load_benchmark
from infembed.report import compare, group_configurations, load_runs

from helpers import offline_env, run_py
from helpers.benchmarks import make_beir, make_followir, write_jsonl
from helpers.reports import make_job, per_query, report, table_rows

CLUSTERED_QUERIES = [
    {"_id": "q1", "text": "pets", "instruction": "cats purr", "cluster": "purring"},
    {"_id": "q2", "text": "pets", "instruction": "dogs bark", "cluster": "noise"},
    {"_id": "q3", "text": "animals", "instruction": "birds fly", "cluster": "noise"},
]


def test_readers_keep_the_cluster_field(tmp_path):
    beir = make_beir(tmp_path / "beir")
    write_jsonl(beir / "queries.jsonl", CLUSTERED_QUERIES)
    assert load_benchmark(str(beir)).clusters == {"q1": "purring", "q2": "noise", "q3": "noise"}
    followir = make_followir(tmp_path / "fir")
    rows = [json.loads(line) for line in (followir / "queries.jsonl").read_text().splitlines()]
    write_jsonl(followir / "queries.jsonl", [rows[0] | {"cluster": "colour"}, rows[1]])
    assert load_benchmark(str(followir)).clusters == {"q1": "colour"}  # q2 names none: its own cluster later
    assert load_benchmark(str(make_beir(tmp_path / "plain"))).clusters == {}


def test_a_cluster_that_is_not_a_string_names_file_line_and_field(tmp_path):
    beir = make_beir(tmp_path / "beir")
    write_jsonl(beir / "queries.jsonl", [*CLUSTERED_QUERIES[:2], CLUSTERED_QUERIES[2] | {"cluster": 7}])
    with pytest.raises(
        BenchmarkDataError, match=r"queries.jsonl:3: field 'cluster' must be a string, got int"
    ):
        load_benchmark(str(beir))


@pytest.mark.e2e
def test_evaluation_writes_clusters_and_the_report_counts_them(tmp_path):
    """Two seeds of a random tiny model evaluated on a clustered benchmark: each job writes clusters.json, and the
    report states 3 queries in 2 clusters with 2 seeds."""
    beir = make_beir(tmp_path / "beir")
    write_jsonl(beir / "queries.jsonl", CLUSTERED_QUERIES)
    sweep = tmp_path / "ev"
    result = run_py(
        "-m",
        "task=evaluate",
        "model=tiny",
        "logger=csv",
        "benchmark=beir",
        f"benchmark.path={beir}",
        "benchmark.cache_dir=null",
        "seed=1,2",
        "optimized_metric=after/beir/ndcg@10",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for job in ("0", "1"):
        assert json.loads((sweep / job / "clusters.json").read_text()) == {
            "beir": {"q1": "purring", "q2": "noise", "q3": "noise"}
        }
    printed = report(sweep, "--out", tmp_path / "report")
    assert printed.returncode == 0, printed.stderr
    assert "- **Seeds (runs)**: 2 per configuration." in printed.stdout
    assert "- `beir`: 3 queries in 2 clusters (resampled and tested as units)." in printed.stdout


def clustered_study(root, seeds=(1,)):
    """Configurations x, y on 96 queries in 12 clusters of 8; y − x moves whole clusters."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 96)
    cluster_shift = np.repeat(rng.normal(0.02, 0.05, 12), 8)  # (96,)
    clusters = {"synthetic": {f"q{i}": f"pair{i // 8}" for i in range(96)}}
    for num, (loss, seed) in enumerate(itertools.product("xy", seeds)):
        values = base + (cluster_shift if loss == "y" else 0) + rng.normal(0, 0.01, 96)
        make_job(root, num, [f"loss={loss}", f"seed={seed}"], {"synthetic": {"p-mrr": per_query(values)}},
                 clusters=clusters, seed=seed)  # fmt: skip
    return base, cluster_shift


def test_one_seed_tests_whole_clusters(tmp_path):
    """With one run a side the p-value is the exact sign-flip test over the 12 cluster sums (4096 patterns)."""
    clustered_study(tmp_path / "r")
    configs = group_configurations(load_runs([tmp_path / "r"]))
    result = compare(configs[1], configs[0], "after", ("synthetic", "p-mrr"))
    x, y = (c.query_matrix("after", ("synthetic", "p-mrr"), [f"q{i}" for i in range(96)])[0] for c in configs)
    sums = (y - x).reshape(12, 8).sum(axis=1)  # (12,)
    patterns = np.array(list(itertools.product((1, -1), repeat=12)))  # (4096, 12)
    exact = np.mean(np.abs(patterns @ sums) >= abs(sums.sum()) - 1e-12)
    assert (result.queries, result.clusters) == (96, 12) and result.p_value == pytest.approx(exact)
    assert result.test == "12 clusters only, sign flips (one run: run-to-run variation not covered)"


@pytest.mark.e2e
def test_report_shows_clusters_in_the_tests(tmp_path):
    clustered_study(tmp_path / "r", seeds=(1, 2, 3))
    printed = report(tmp_path / "r", "--out", tmp_path / "out", "--compare", "loss=y", "loss=x")
    assert printed.returncode == 0, printed.stderr
    (row,) = table_rows(printed.stdout, "loss=y")
    assert row[3:5] == ["3, 3", "96 (12)"]
    assert row[9] == "runs: 3 seed pairs, label flips within seed (p ≥ 0.25)"
    assert "- `synthetic`: 96 queries in 12 clusters" in printed.stdout


def test_runs_that_disagree_on_a_cluster_are_one_error(tmp_path):
    clustered_study(tmp_path / "r")
    (tmp_path / "r" / "1" / "clusters.json").write_text(json.dumps({"synthetic": {"q0": "other"}}))
    printed = report(tmp_path / "r", "--out", tmp_path / "out")
    assert printed.returncode == 1 and "Traceback" not in printed.stderr
    assert printed.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'r' / '1' / 'clusters.json'}: synthetic/q0 = 'other', but "
        f"{tmp_path / 'r' / '0' / 'clusters.json'} has 'pair0'; expected every run to name the same clusters"
    ]


def test_malformed_clusters_file_names_file_and_field(tmp_path):
    clustered_study(tmp_path / "r")
    (tmp_path / "r" / "0" / "clusters.json").write_text(json.dumps({"synthetic": {"q0": 3}}))
    printed = report(tmp_path / "r", "--out", tmp_path / "out")
    assert printed.returncode == 1
    assert (
        f"{tmp_path / 'r' / '0' / 'clusters.json'}: synthetic/q0 = 3, expected a cluster name"
        in printed.stderr
    )


def test_metrics_of_one_benchmark_with_other_units_are_described_apart(tmp_path):
    """The synthetic benchmark's p-MRR is per query (clustered), its instruction sensitivity per held-out row."""
    rng = np.random.default_rng(1)
    clusters = {"synthetic": {f"q{i}": f"pair{i % 4}" for i in range(20)}}
    for num in range(2):
        after = {
            "synthetic": {
                "p-mrr": per_query(rng.random(20)),
                "instruction_sensitivity": per_query(rng.integers(0, 2, 40), prefix=""),
            }
        }
        make_job(tmp_path / "r", num, [f"loss=l{num}"], after, clusters=clusters)
    printed = report(tmp_path / "r", "--out", tmp_path / "out")
    assert printed.returncode == 0, printed.stderr
    assert (
        "- `synthetic`: p-mrr: 20 queries in 4 clusters (resampled and tested as units); instruction_sensitivity: "
        "40 queries (no clusters named: queries are the unit)." in printed.stdout
    )
    rows = {r[2]: r for r in table_rows(printed.stdout, "loss=l0") if len(r) == 10}
    assert rows["synthetic/p-mrr"][4] == "20 (4)" and rows["synthetic/instruction_sensitivity"][4] == "40"


@pytest.mark.e2e
def test_training_with_a_clustered_benchmark_writes_and_logs_clusters(tmp_path):
    """debug=smoke with a clustered benchmark beside the synthetic one: the job writes clusters.json, and the W&B
    results artifact (staged offline under WANDB_DATA_DIR) carries it."""
    beir = make_beir(tmp_path / "beir")
    write_jsonl(beir / "queries.jsonl", CLUSTERED_QUERIES)
    run_dir = tmp_path / "run"
    env = offline_env(WANDB_DATA_DIR=str(tmp_path / "wandb_data"))
    result = run_py(
        "debug=smoke", "benchmark=beir", f"benchmark.path={beir}", "benchmark.cache_dir=null",
        f"hydra.run.dir={run_dir}", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    written = (run_dir / "clusters.json").read_text()
    clusters = json.loads(written)
    assert clusters["beir"] == {"q1": "purring", "q2": "noise", "q3": "noise"}
    assert set(clusters) == {"beir", "synthetic"} and all("+" in c for c in clusters["synthetic"].values())
    staged = [
        p.read_text() for p in (tmp_path / "wandb_data").rglob("*") if p.is_file() and p.stat().st_size < 4096
    ]
    assert written in staged
