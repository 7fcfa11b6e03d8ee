"""The eval suite with the real BiEncoder (tiny random BERT), the benchmark configs, BIRCO."""

import json

import pytest

from infembed.eval import evaluate_from_config, evaluate_synthetic
from infembed.eval.benchmarks import load_benchmark, qrels_pools
from infembed.pipeline import instantiate

from helpers import tiny_bert_encoder
from helpers.benchmarks import make_beir, make_followir, make_heldout
from helpers.compose import benchmark_spec, compose_train
from helpers.processes import run_py


@pytest.fixture(scope="module")
def tiny_encoder():
    return tiny_bert_encoder()


def test_tiny_bert_end_to_end_with_cache(tmp_path, tiny_encoder):
    make_beir(tmp_path / "toy")
    config = benchmark_spec(
        path=str(tmp_path / "toy"),
        use_instruction="both",
        metrics=["ndcg@10", "mrr@10"],
        cache_dir=str(tmp_path / "cache"),
    )
    first = {
        row: r.metrics
        for row, r in evaluate_from_config(tiny_encoder, config, None, show_progress=False).items()
    }
    assert list(first) == ["toy", "toy (no instruction)"]
    assert all(0 <= v <= 1 for values in first.values() for v in values.values())
    assert len(list((tmp_path / "cache").glob("corpus-*.pt"))) == 1
    again = {
        row: r.metrics
        for row, r in evaluate_from_config(tiny_encoder, config, None, show_progress=False).items()
    }
    assert again == first  # cached corpus embeddings give the same numbers


def test_corpus_cache_survives_another_pair_template(tmp_path):
    """Evaluating one model under two pair templates encodes the corpus once: one cache file, and the scores of the
    second template are those of a cold run."""
    make_beir(tmp_path / "toy")
    encoder = tiny_bert_encoder()
    config = benchmark_spec(path=str(tmp_path / "toy"), cache_dir=str(tmp_path / "cache"))
    evaluate_from_config(encoder, config, None, show_progress=False)
    encoder.text = encoder.text.replace(pair_template="Instruct: {instruction} Query: {query}")
    warm = evaluate_from_config(encoder, config, None, show_progress=False)["toy"].metrics
    assert len(list((tmp_path / "cache").glob("corpus-*.pt"))) == 1
    cold = evaluate_from_config(
        encoder, benchmark_spec(path=str(tmp_path / "toy")), None, show_progress=False
    )
    assert warm == pytest.approx(cold["toy"].metrics)


def test_tiny_bert_synthetic_layout(tmp_path, tiny_encoder):
    make_followir(tmp_path / "followir")
    make_heldout(tmp_path / "heldout.jsonl")
    results = evaluate_synthetic(tiny_encoder, tmp_path).metrics
    assert set(results) == {"ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity"}
    assert -1 <= results["p-mrr"] <= 1 and 0 <= results["instruction_sensitivity"] <= 1


def test_birco_group_evaluates_its_four_tasks_as_rerank_pools(tmp_path, tiny_encoder):
    """benchmark=birco with benchmark.root: the four test tasks under the root, each query reranking its qrels pool
    (judged non-relevant passages included), one nDCG@10 row per task; a fabricated BIRCO-shaped root."""
    tasks = ("arguana", "clinical-trial", "relic", "wtb")
    for task in tasks:
        make_beir(tmp_path / "birco" / task)
    cfg = compose_train("task=evaluate", "benchmark=birco", f"benchmark.root={tmp_path / 'birco'}")
    spec = instantiate(cfg.benchmark, cache_dir=None)
    results = evaluate_from_config(tiny_encoder, spec, None, show_progress=False)
    assert list(results) == list(tasks) and all(set(r.metrics) == {"ndcg@10"} for r in results.values())
    bench = load_benchmark(str(tmp_path / "birco" / "wtb"), "test")
    assert bench.pool_from_qrels
    pools = qrels_pools(bench)
    assert all(set(results["wtb"].run[q]) == set(pools[q]) for q in pools)  # only the pool is ranked


@pytest.mark.e2e
def test_birco_dev_experiment_scores_only_the_dev_splits(tmp_path):
    """experiment=birco_dev through run.py on a fabricated BIRCO root whose doris-mae and clinical-trial have only a
    dev split (as the real ones; the test tasks' folders are absent): one row per dev task, with and without the
    instruction, so choices can be made without BIRCO test."""
    tasks = ("doris-mae", "clinical-trial")
    for task in tasks:
        qrels = make_beir(tmp_path / "birco" / task) / "qrels"
        (qrels / "test.tsv").rename(qrels / "dev.tsv")
    result = run_py(
        "experiment=birco_dev",
        f"benchmark.root={tmp_path / 'birco'}",
        "model=tiny",
        f"hydra.sweep.dir={tmp_path / 'dev'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads((tmp_path / "dev" / "0" / "metrics.json").read_text())["after"]
    assert sorted(after) == sorted([*tasks, *(f"{t} (no instruction)" for t in tasks)])
    assert all(set(row) == {"ndcg@10"} and 0 <= row["ndcg@10"] <= 1 for row in after.values())
