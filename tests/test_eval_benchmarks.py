"""Benchmark readers: layouts, one test per bad input (local and through run.py), hub tables, hub ids."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infembed.eval import hub
from infembed.eval.benchmarks import (
    BenchmarkDataError,
    BenchmarkWarning,
    FollowIRBenchmark,
    load_benchmark,
    qrels_pools,
    read_qrels,
)
from infembed.hub_ids import is_hub_id

from helpers.benchmarks import make_beir, make_followir, write_jsonl, write_qrels


def test_beir_folder_reads_texts_instructions_and_graded_qrels(tmp_path):
    bench = load_benchmark(str(make_beir(tmp_path / "toy")))
    assert bench.name == "toy"
    assert bench.corpus["d1"] == "Cats cats purr and sleep"  # title joined
    assert bench.instructions == {"q1": "cats purr", "q2": "dogs bark", "q3": "birds fly"}
    assert bench.qrels["q2"] == {"d2": 2, "d1": 0, "d4": 0}
    assert bench.pool_from_qrels and bench.candidates is None


def test_qrels_only_relevant_rows_is_not_a_pool(tmp_path):
    bench = load_benchmark(str(make_beir(tmp_path / "toy", with_negatives=False)))
    assert not bench.pool_from_qrels


def test_followir_folder_detected_and_changed_docs(tmp_path):
    bench = load_benchmark(str(make_followir(tmp_path / "fir")))
    assert isinstance(bench, FollowIRBenchmark)
    assert bench.changed_docs() == {"q1": ["a"], "q2": ["c"]}
    assert bench.candidates["q1"] == ["a", "b", "c", "e"]


def test_fractional_qrels_are_kept(tmp_path):
    path = tmp_path / "q.tsv"
    write_qrels(path, [("q", "a", "0.4"), ("q", "b", "1.0"), ("q", "c", "0.0")])
    assert read_qrels(path) == {"q": {"a": 0.4, "b": 1, "c": 0}}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: (r / "corpus.jsonl").unlink(), r"corpus.jsonl: file not found"),
        (lambda r: (r / "qrels" / "test.tsv").unlink(), r"test.tsv: qrels file not found"),
        (lambda r: (r / "corpus.jsonl").write_text(""), r"corpus.jsonl: empty corpus"),
        (
            lambda r: (r / "corpus.jsonl").write_text(
                '{"_id": "d1", "text": "x"}\n{"_id": "d1", "text": "y"}\n'
            ),
            r"corpus.jsonl:2: duplicate _id 'd1' \(first at .*corpus.jsonl:1\)",
        ),
        (
            lambda r: (r / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n{not json\n'),
            r"queries.jsonl:2: malformed JSON",
        ),
        (
            lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1"}\n'),
            r"corpus.jsonl:1: missing field 'text'",
        ),
        (
            lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1", "text": 3}\n'),
            r"corpus.jsonl:1: field 'text' must be a string",
        ),
        (
            lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n"),
            r"test.tsv:2: expected 3 tab-separated columns",
        ),
        (
            lambda r: (r / "qrels" / "test.tsv").write_text("q1\td1\thigh\n"),
            r"test.tsv:1: score 'high' is not a number",
        ),
        (
            lambda r: (r / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\td1\t0\n"),
            r"test.tsv:2: duplicate qrels row for query 'q1', document 'd1'",
        ),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, mutate, message):
    root = make_beir(tmp_path / "toy")
    mutate(root)
    with pytest.raises(BenchmarkDataError, match=message):
        load_benchmark(str(root))


def test_qrels_naming_unknown_documents_warn_with_file_line_and_stay_in_qrels(tmp_path):
    root = make_beir(tmp_path / "toy")
    with open(root / "qrels" / "test.tsv", "a") as handle:
        handle.write("q1\tghost\t1\nq1\tghost2\t0\n")
    with pytest.warns(
        BenchmarkWarning, match=r"test.tsv:10: document 'ghost' is not in .*corpus.jsonl \(and 1 more\)"
    ):
        bench = load_benchmark(str(root))
    assert "ghost" in bench.qrels["q1"]  # still counted by recall / the nDCG ideal, as trec_eval does
    assert "ghost" not in qrels_pools(bench)["q1"]


def test_qrels_naming_an_unknown_query_is_an_error(tmp_path):
    root = make_beir(tmp_path / "toy")
    with open(root / "qrels" / "test.tsv", "a") as handle:
        handle.write("noquery\td1\t1\n")
    with pytest.raises(BenchmarkDataError, match=r"test.tsv:10: query 'noquery' is not in .*queries.jsonl"):
        load_benchmark(str(root))


def test_duplicate_query_ids_name_both_lines(tmp_path):
    root = make_beir(tmp_path / "toy")
    write_jsonl(
        root / "queries.jsonl",
        [{"_id": "q1", "text": "a"}, {"_id": "q2", "text": "b"}, {"_id": "q1", "text": "c"}],
    )
    with pytest.raises(
        BenchmarkDataError, match=r"queries.jsonl:3: duplicate _id 'q1' \(first at .*queries.jsonl:1\)"
    ):
        load_benchmark(str(root))


@pytest.mark.parametrize(
    "og, changed, message",
    [
        (
            [("q1", "a", 1), ("q1", "b", 1), ("q2", "c", 1)],
            [("q1", "a", 0), ("q1", "b", 1)],
            r"og.tsv:4: query 'q2' has no rows in .*changed.tsv \(1 such queries\)",
        ),
        (
            [("q1", "a", 1), ("q1", "b", 1)],
            [("q1", "a", 0), ("q1", "b", 1), ("q2", "c", 0)],
            r"changed.tsv:4: query 'q2' has no rows in .*og.tsv",
        ),
        (
            [("q1", "a", 1), ("q2", "c", 1)],
            [("q1", "a", 1), ("q2", "c", 2)],
            r"changed.tsv: no document relevant in .*og.tsv is non-relevant here, so p-MRR is undefined",
        ),
    ],
    ids=["query-only-in-og", "query-only-in-changed", "nothing-changes"],
)
def test_mismatched_followir_qrels_are_an_error(tmp_path, og, changed, message):
    root = make_followir(tmp_path / "fir")
    write_qrels(root / "qrels" / "og.tsv", og)
    write_qrels(root / "qrels" / "changed.tsv", changed)
    with pytest.raises(BenchmarkDataError, match=message):
        load_benchmark(str(root))


@pytest.mark.e2e
def test_bad_benchmark_through_run_py_is_one_line_and_writes_nothing(tmp_path):
    root = make_beir(tmp_path / "toy")
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n')
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [
            sys.executable,
            str(repo / "run.py"),
            "task=evaluate",
            "model=tiny",
            "benchmark=beir",
            f"benchmark.path={root}",
            f"hydra.run.dir={tmp_path}/ev",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    printed = result.stdout + result.stderr  # Hydra's console handler logs to stdout (see the report)
    lines = [line for line in printed.splitlines() if "BenchmarkDataError" in line]
    assert len(lines) == 1 and "corpus.jsonl:2: malformed JSON" in lines[0], printed[-2000:]
    assert "Traceback" not in printed
    assert not (tmp_path / "ev" / "metrics.json").exists()
    assert not (tmp_path / "ev" / "benchmark_table.md").exists()


def test_missing_folder_and_bad_format(tmp_path):
    with pytest.raises(BenchmarkDataError, match="benchmark folder not found"):
        load_benchmark(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="benchmark format"):
        load_benchmark(str(make_beir(tmp_path / "toy")), fmt="trec")


def test_followir_requires_both_instructions(tmp_path):
    root = make_followir(tmp_path / "fir")
    write_jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "apples", "instruction_og": "x"}])
    with pytest.raises(BenchmarkDataError, match="queries.jsonl:1: missing field 'instruction_changed'"):
        load_benchmark(str(root))


def test_candidates_must_be_lists(tmp_path):
    root = make_followir(tmp_path / "fir")
    (root / "candidates.jsonl").write_text(json.dumps({"query-id": "q1", "corpus-ids": "a"}) + "\n")
    with pytest.raises(BenchmarkDataError, match="candidates.jsonl:1: field 'corpus-ids' must be a list"):
        load_benchmark(str(root))


@pytest.fixture
def fake_hub(monkeypatch):
    """A FollowIR-layout hub dataset held in memory: ``hub.table`` / ``hub.config_names`` answer from it."""
    tables = {
        "corpus": [{"_id": "a", "title": "T", "text": "x"}, {"_id": "b", "title": None, "text": "y"}],
        "queries": [
            {"_id": 1, "text": "q", "instruction_og": "io", "instruction_changed": "ic", "instruction": "i"}
        ],
        "qrels_og": [
            {"query-id": "1", "corpus-id": "a", "score": 1.0},
            {"query-id": "1", "corpus-id": "b", "score": 1},
        ],
        "qrels_changed": [
            {"query-id": "1", "corpus-id": "a", "score": 0},
            {"query-id": "1", "corpus-id": "b", "score": 1},
        ],
        "top_ranked": [{"qid": "1", "pid": "a"}, {"qid": "1", "pid": "b"}, {"qid": "1", "pid": "zz"}],
    }
    tables[None] = tables["qrels_og"]

    def table(name, config, split=None):
        if split not in (None, "test"):
            raise LookupError(f"no split {split!r}; expected one of ['test']")
        return tables[config]

    monkeypatch.setattr(hub, "config_names", lambda name: [c for c in tables if c])
    monkeypatch.setattr(hub, "table", table)
    return tables


def test_hub_tables_convert_like_local_folders(fake_hub):
    with pytest.warns(BenchmarkWarning, match=r"org/fir \(top_ranked\) row 2: document 'zz' is not in"):
        bench = load_benchmark("org/fir")
    assert isinstance(bench, FollowIRBenchmark) and bench.name == "fir"
    assert bench.corpus == {"a": "T x", "b": "y"}
    assert bench.changed_docs() == {"1": ["a"]}
    assert bench.candidates == {"1": ["a", "b"]}
    beir = load_benchmark("org/fir", fmt="beir")
    assert beir.instructions == {"1": "i"} and beir.qrels == {"1": {"a": 1, "b": 1}}


def test_hub_tables_get_the_same_checks(fake_hub):
    fake_hub["qrels_og"].append({"query-id": "1", "corpus-id": "a", "score": 0})
    with pytest.raises(
        BenchmarkDataError,
        match=r"org/fir \(qrels_og\) row 2: duplicate qrels row .* \(first at "
        r"org/fir \(qrels_og\) row 0\)",
    ):
        load_benchmark("org/fir")
    with pytest.raises(BenchmarkDataError, match=r"org/fir \(qrels_og\): no split 'dev'"):
        load_benchmark("org/fir", split="dev")


def test_one_rule_for_hub_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_hub_id("InF-IR/InF-IR") and is_hub_id("jhu-clsp/robust04-instructions")
    for local in (
        "/data/x",
        "./x",
        "~/x",
        "a/b/c",
        "x.jsonl",
        "data/train.jsonl",
        "d/*.jsonl",
        "name",
        "org/",
    ):
        assert not is_hub_id(local), local
    (tmp_path / "org" / "folder").mkdir(parents=True)
    assert not is_hub_id("org/folder")  # a folder on disk wins over the hub


def test_unknown_candidates_warn_and_are_dropped(tmp_path):
    root = make_followir(tmp_path / "fir")
    write_jsonl(
        root / "candidates.jsonl",
        [{"query-id": "q1", "corpus-ids": ["a", "ghost"]}, {"query-id": "nobody", "corpus-ids": ["a"]}],
    )
    with pytest.warns(
        BenchmarkWarning, match=r"candidates.jsonl:1: document 'ghost' is not in .* \(and 1 more\); dropped"
    ):
        bench = load_benchmark(str(root))
    assert bench.candidates == {"q1": ["a"]}
