"""The one results schema: the writer, the metric-path lookup sweepers use, the before/after table."""

import json

import pytest

from infembed.errors import ConfigError
from infembed.eval.runner import EvalResult
from infembed.results import check_metric_path, lookup, results_table, write_results


def result(**per_query) -> EvalResult:
    out = EvalResult({}, {})
    for metric, values in per_query.items():
        out.add(metric, values)
    return out


STAGES = {
    "before": {"synthetic": result(**{"p-mrr": {"q1": 0.0, "q2": 0.2}})},
    "after": {"synthetic": result(**{"p-mrr": {"q1": 0.5, "q2": 0.3}}), "wtb/v2": result(ndcg={"a": 1.0})},
}


def test_writer_writes_metrics_and_per_query_values(tmp_path):
    payload = write_results(tmp_path, "train", STAGES, 123, {"seed": 1})
    assert json.loads((tmp_path / "metrics.json").read_text()) == payload
    assert payload["after"]["synthetic"]["p-mrr"] == pytest.approx(0.4) and payload["task"] == "train"
    assert payload["num_parameters"] == 123 and payload["config"] == {"seed": 1}
    per_query = json.loads((tmp_path / "per_query.json").read_text())
    assert per_query["before"]["synthetic"]["p-mrr"] == {"q1": 0.0, "q2": 0.2}
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_metric_paths_address_stage_benchmark_and_metric(tmp_path):
    payload = write_results(tmp_path, "train", STAGES, 1, {})
    assert lookup(payload, "before/synthetic/p-mrr") == pytest.approx(0.1)
    assert lookup(payload, "after/synthetic/p-mrr") == pytest.approx(0.4)
    assert lookup(payload, "after/wtb/v2/ndcg") == 1.0  # a benchmark name may contain '/'
    with pytest.raises(ConfigError, match="available: .*after/synthetic/p-mrr"):
        lookup(payload, "after/synthetic/ndcg@10")
    for bad in ("p-mrr", "after/p-mrr", "during/synthetic/p-mrr"):
        with pytest.raises(ConfigError, match="STAGE/BENCHMARK/METRIC"):
            check_metric_path(bad)


def test_table_has_one_row_per_benchmark_and_metric(tmp_path):
    table = results_table(write_results(tmp_path, "train", STAGES, 1, {}))
    assert "| synthetic | p-mrr | 10.0 | 40.0 | +30.0 |" in table
    assert "| wtb/v2 | ndcg | – | 100.0 |  |" in table
