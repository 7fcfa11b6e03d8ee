"""Evaluation loop: rerank vs full retrieval, embedding cache, FollowIR p-MRR, config entry point, tables."""

import json

import pytest
import torch

from infembed.errors import ConfigError
from infembed.eval import evaluate_from_config, evaluate_synthetic
from infembed.eval.benchmarks import load_benchmark
from infembed.eval.retrieval import cache_path, encode_corpus, exact_top_k, retrieve
from infembed.eval.runner import evaluate_benchmark

from helpers.benchmarks import BagOfWordsEncoder, make_beir, make_followir, make_heldout
from helpers.compose import benchmark_spec


def test_exact_top_k_chunked_equals_full_sort():
    gen = torch.Generator().manual_seed(0)
    q, d = torch.randn(5, 8, generator=gen), torch.randn(37, 8, generator=gen)  # (Q, D), (N, D)
    scores, idx = exact_top_k(q, d, k=6, chunk_size=4)
    ref_scores, ref_idx = (q @ d.T).topk(6, dim=1)
    assert torch.allclose(scores, ref_scores) and torch.equal(idx, ref_idx)
    assert exact_top_k(q, d, k=100)[0].shape == (5, 37)  # k > N


def test_rerank_only_scores_the_pool_and_retrieve_the_whole_corpus(tmp_path):
    enc = BagOfWordsEncoder()
    bench = load_benchmark(str(make_beir(tmp_path / "toy")))
    rerank_run = evaluate_benchmark(enc, bench, ["ndcg@10"], mode="auto").run
    assert set(rerank_run["q1"]) == {"d1", "d2", "d3"}  # q1's qrels rows
    full_run = evaluate_benchmark(enc, bench, ["ndcg@10"], mode="retrieve", top_k=3).run
    assert all(len(docs) == 3 for docs in full_run.values())
    assert set(full_run["q1"]) <= set(bench.corpus)
    for qid, docs in rerank_run.items():  # same scores for docs both paths ranked
        for doc in set(docs) & set(full_run[qid]):
            assert docs[doc] == pytest.approx(full_run[qid][doc], abs=1e-6)


def test_instruction_helps_on_toy_data(tmp_path):
    enc = BagOfWordsEncoder()
    bench = load_benchmark(str(make_beir(tmp_path / "toy")))
    with_instr = evaluate_benchmark(enc, bench, ["mrr@10"]).metrics
    without = evaluate_benchmark(enc, bench, ["mrr@10"], use_instruction=False).metrics
    assert with_instr["mrr@10"] == 1.0 and without["mrr@10"] < 1.0


def test_corpus_cache_hit_and_extension(tmp_path):
    enc = BagOfWordsEncoder()
    corpus = {"a": "x y", "b": "y z", "c": "z w"}
    first = encode_corpus(enc, corpus, ["a", "b"], "key", tmp_path)
    assert enc.passages_encoded == 2 and cache_path(tmp_path, "bow-64", "key", 512).is_file()
    again = encode_corpus(enc, corpus, ["b", "a"], "key", tmp_path)
    assert enc.passages_encoded == 2  # cache hit: nothing re-encoded
    assert torch.equal(again, first.flip(0))
    encode_corpus(enc, corpus, ["a", "b", "c"], "key", tmp_path)
    assert enc.passages_encoded == 3  # only the missing doc
    encode_corpus(enc, corpus, ["a"], "other-corpus", tmp_path)
    assert enc.passages_encoded == 4  # a different corpus never shares entries


def test_followir_metrics_and_p_mrr(tmp_path):
    enc = BagOfWordsEncoder()
    bench = load_benchmark(str(make_followir(tmp_path / "fir")))
    result = evaluate_benchmark(enc, bench, ["ndcg@10", "mrr@10"])
    results, run = result.metrics, result.run
    assert set(results) == {"ndcg@10", "mrr@10", "p-mrr"}
    for name, value in results.items():  # the mean is the mean of the per-query values written beside it
        assert value == pytest.approx(sum(result.per_query[name].values()) / len(result.per_query[name]))
    assert -1 <= results["p-mrr"] <= 1
    assert set(run["q1"]) == {"a", "b", "c", "e"}  # reranked candidates
    no_instr = evaluate_benchmark(enc, bench, ["ndcg@10"], use_instruction=False).metrics
    assert no_instr["p-mrr"] == 0.0  # same text under both instructions: nothing moves


def test_followir_without_candidates_retrieves_and_rejects_rerank(tmp_path):
    enc = BagOfWordsEncoder()
    bench = load_benchmark(str(make_followir(tmp_path / "fir", candidates=False)))
    run = evaluate_benchmark(enc, bench, ["ndcg@10"], top_k=2).run
    assert all(len(docs) == 2 for docs in run.values())
    with pytest.raises(ValueError, match="mode=rerank needs a candidates.jsonl"):
        evaluate_benchmark(enc, bench, ["ndcg@10"], mode="rerank")


def test_evaluate_synthetic_layout(tmp_path):
    make_followir(tmp_path / "followir")
    make_heldout(tmp_path / "heldout.jsonl")
    result = evaluate_synthetic(BagOfWordsEncoder(), tmp_path)
    results = result.metrics
    assert set(result.per_query["instruction_sensitivity"]) == {
        str(i) for i in range(len(result.per_query["instruction_sensitivity"]))
    }
    assert set(results) == {"ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity"}
    assert results["instruction_sensitivity"] == 1.0  # P+ repeats I+ and Q+ words


def test_evaluate_from_config_several_benchmarks_one_table(tmp_path):
    make_beir(tmp_path / "toy")
    make_followir(tmp_path / "fir")
    config = benchmark_spec(
        path=[str(tmp_path / "toy"), str(tmp_path / "fir")],
        use_instruction="both",
        top_k=100,
        metrics=["ndcg@10", "map@1000"],
        batch_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    enc = BagOfWordsEncoder()
    results = {
        row: r.metrics
        for row, r in evaluate_from_config(enc, config, tmp_path / "out", show_progress=False).items()
    }
    assert list(results) == ["toy", "toy (no instruction)", "fir", "fir (no instruction)"]
    assert "p-mrr" in results["fir"] and "p-mrr" not in results["toy"]
    assert enc.passages_encoded == 4 + 4  # each corpus once: the no-instruction rows hit the cache
    assert (tmp_path / "out" / "runs" / "toy.trec").read_text().startswith("q1 Q0 d1 1 ")


def test_config_errors(tmp_path):
    enc = BagOfWordsEncoder()
    with pytest.raises(ConfigError, match="benchmark.path is not set"):
        evaluate_from_config(enc, benchmark_spec(path=None), None)
    with pytest.raises(ConfigError, match="use_instruction"):
        benchmark_spec(path=str(make_beir(tmp_path / "t")), use_instruction="yes")
    with pytest.raises(ConfigError, match="benchmark.mode"):
        benchmark_spec(path=str(tmp_path / "t"), mode="dense")
    with pytest.raises(ConfigError, match="benchmark.top_k"):
        benchmark_spec(path=str(tmp_path / "t"), top_k=0)
    with pytest.raises(ConfigError, match="benchmark.name has 2 entries for 1 paths"):
        benchmark_spec(path=str(tmp_path / "t"), name=["a", "b"])
    with pytest.raises(ValueError, match="retrieval backend"):
        retrieve(["q"], torch.ones(1, 2), ["d"], torch.ones(1, 2), 1, backend="annoy")


def test_heldout_rows_are_checked_by_the_training_schema(tmp_path):
    from infembed.data.schema import DataError
    from infembed.eval import read_heldout

    make_heldout(tmp_path / "heldout.jsonl")
    rows = (tmp_path / "heldout.jsonl").read_text().splitlines()
    broken = json.loads(rows[1])
    del broken["instruction_negative"]
    (tmp_path / "heldout.jsonl").write_text("\n".join([rows[0], json.dumps(broken), *rows[2:]]) + "\n")
    with pytest.raises(DataError, match=r"heldout.jsonl.*line 2.*instruction_negative"):
        read_heldout(tmp_path / "heldout.jsonl")
