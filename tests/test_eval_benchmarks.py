"""Benchmark readers: layouts, bad input, hub row conversion."""
import json

import pytest

from test_eval_helpers import make_beir, make_followir, write_jsonl, write_qrels
from infembed.eval.benchmarks import (
    BenchmarkDataError,
    BenchmarkWarning,
    FollowIRBenchmark,
    load_benchmark,
    read_qrels,
)
from infembed.eval.hub import beir_from_rows, followir_from_rows


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
        (lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{"_id": "d1", "text": "y"}\n'),
         r"corpus.jsonl:2: duplicate _id 'd1' \(first on line 1\)"),
        (lambda r: (r / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n{not json\n'),
         r"queries.jsonl:2: malformed JSON"),
        (lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1"}\n'), r"corpus.jsonl:1: missing field 'text'"),
        (lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1", "text": 3}\n'),
         r"corpus.jsonl:1: field 'text' must be a string"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n"),
         r"test.tsv:2: expected 3 tab-separated columns"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("q1\td1\thigh\n"),
         r"test.tsv:1: score 'high' is not a number"),
        (lambda r: (r / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\td1\t0\n"),
         r"test.tsv:2: duplicate qrels row for query 'q1', document 'd1'"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, mutate, message):
    root = make_beir(tmp_path / "toy")
    mutate(root)
    with pytest.raises(BenchmarkDataError, match=message):
        load_benchmark(str(root))


def test_dangling_qrels_warn_with_counts_and_stay_out_of_pools(tmp_path):
    root = make_beir(tmp_path / "toy")
    with open(root / "qrels" / "test.tsv", "a") as handle:
        handle.write("q1\tghost\t1\nq1\tghost2\t0\nnoquery\td1\t1\n")
    with pytest.warns(BenchmarkWarning, match="1 queries not in queries.jsonl and 2 rows with documents not in"):
        bench = load_benchmark(str(root))
    from infembed.eval.benchmarks import qrels_pools

    assert "ghost" in bench.qrels["q1"]  # still counted by recall / the nDCG ideal, as trec_eval does
    assert "ghost" not in qrels_pools(bench)["q1"]
    assert "noquery" not in bench.queries


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


def test_hub_rows_convert_like_local_folders():
    corpus = [{"_id": "a", "title": "T", "text": "x"}, {"_id": "b", "title": "", "text": "y"}]
    queries = [{"_id": 1, "text": "q", "instruction_og": "io", "instruction_changed": "ic"}]
    og = [{"query-id": "1", "corpus-id": "a", "score": 1.0}, {"query-id": "1", "corpus-id": "b", "score": 1.0}]
    changed = [{"query-id": "1", "corpus-id": "a", "score": 0.0}, {"query-id": "1", "corpus-id": "b", "score": 1.0}]
    top = [{"qid": "1", "pid": "a"}, {"qid": "1", "pid": "b"}, {"qid": "1", "pid": "zz"}]
    bench = followir_from_rows("robust04", corpus, queries, og, changed, top)
    assert bench.corpus == {"a": "T x", "b": "y"}
    assert bench.changed_docs() == {"1": ["a"]}
    assert bench.candidates == {"1": ["a", "b"]}
    beir = beir_from_rows("x", corpus, [{"_id": "1", "text": "q", "instruction": "i"}], og)
    assert beir.instructions == {"1": "i"} and beir.qrels == {"1": {"a": 1, "b": 1}}


def test_unknown_candidates_warn_and_are_dropped(tmp_path):
    root = make_followir(tmp_path / "fir")
    write_jsonl(root / "candidates.jsonl", [{"query-id": "q1", "corpus-ids": ["a", "ghost"]},
                                            {"query-id": "nobody", "corpus-ids": ["a"]}])
    with pytest.warns(BenchmarkWarning, match="1 queries not in queries.jsonl and 1 rows"):
        bench = load_benchmark(str(root))
    assert bench.candidates == {"q1": ["a"]}
