"""run.py as a user runs it on a benchmark whose queries are longer than max_pair_length (256): with the default
``model.truncation=query`` the instruction changes the scores, with ``end`` it never reaches the model."""

import json

import pytest

from helpers import run_py
from helpers.benchmarks import make_long_query_beir


def scores(run_file) -> list[str]:
    """The (query, document, score) columns of a TREC run file."""
    return [" ".join(line.split()[i] for i in (0, 2, 4)) for line in run_file.read_text().splitlines()]


@pytest.mark.e2e
@pytest.mark.parametrize("truncation", ["query", "end"])
def test_the_instruction_of_a_long_query_changes_the_scores(tmp_path, truncation):
    bench = make_long_query_beir(tmp_path / "long")
    result = run_py(
        "debug=smoke",
        "logger=csv",
        "task=evaluate",
        "benchmark=beir",
        f"benchmark.path={bench}",
        "benchmark.use_instruction=both",
        f"model.truncation={truncation}",
        f"hydra.run.dir={tmp_path}/ev",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = tmp_path / "ev" / "runs"
    with_instruction, without = scores(runs / "long.trec"), scores(runs / "long_(no_instruction).trec")
    assert len(with_instruction) == len(without) == 18
    assert (with_instruction != without) == (truncation == "query")
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["config"]["model"]["truncation"] == truncation
    assert {"long", "long (no instruction)"} <= set(metrics["after"])


@pytest.mark.e2e
def test_an_unknown_truncation_stops_with_one_line(tmp_path):
    result = run_py("debug=smoke", "model.truncation=start", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    message = result.stderr + result.stdout
    assert result.returncode == 1
    assert "model.truncation='start': expected one of query, end" in message and "Traceback" not in message
    assert not (tmp_path / "data").exists()  # stopped before any data was generated
