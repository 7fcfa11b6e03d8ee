"""The eval suite with the real BiEncoder (tiny random BERT), the benchmark configs, BIRCO."""

from pathlib import Path

import pytest

from infembed.eval import evaluate_from_config, evaluate_synthetic
from infembed.eval.runner import CONFIG_KEYS

from helpers import tiny_bert_encoder
from helpers.benchmarks import make_beir, make_followir, make_heldout

REPO = Path(__file__).resolve().parents[1]
BIRCO = REPO.parent / "shared" / "data" / "birco"


@pytest.fixture(scope="module")
def tiny_encoder():
    return tiny_bert_encoder()


def test_tiny_bert_end_to_end_with_cache(tmp_path, tiny_encoder):
    make_beir(tmp_path / "toy")
    config = {
        "path": str(tmp_path / "toy"),
        "use_instruction": "both",
        "metrics": ["ndcg@10", "mrr@10"],
        "cache_dir": str(tmp_path / "cache"),
    }
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


def test_tiny_bert_synthetic_layout(tmp_path, tiny_encoder):
    make_followir(tmp_path / "followir")
    make_heldout(tmp_path / "heldout.jsonl")
    results = evaluate_synthetic(tiny_encoder, tmp_path).metrics
    assert set(results) == {"ndcg@10", "mrr@10", "p-mrr", "instruction_sensitivity"}
    assert -1 <= results["p-mrr"] <= 1 and 0 <= results["instruction_sensitivity"] <= 1


def test_benchmark_configs_compose_with_only_known_keys(tmp_path):
    """Compose conf/benchmark/* in a throw-away primary config (independent of the other config groups)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = tmp_path / "conf"
    (conf / "benchmark").mkdir(parents=True)
    for src in (REPO / "conf" / "benchmark").glob("*.yaml"):
        (conf / "benchmark" / src.name).write_text(src.read_text())
    (conf / "main.yaml").write_text("defaults:\n  - _self_\n  - benchmark: beir\npaths:\n  cache_dir: /c\n")
    names = sorted(p.stem for p in (conf / "benchmark").glob("*.yaml"))
    assert names == ["beir", "birco", "followir"]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for name in names:
            root = ["benchmark.root=/data/birco"] if name == "birco" else []
            cfg = compose("main", overrides=[f"benchmark={name}", *root])
            plain = OmegaConf.to_container(cfg.benchmark, resolve=True)
            assert set(plain) <= CONFIG_KEYS, name
            assert plain["cache_dir"] == "/c/embeddings"
            if name == "birco":
                assert plain["path"] == [
                    f"/data/birco/{t}" for t in ("arguana", "clinical-trial", "relic", "wtb")
                ]
                assert plain["mode"] == "rerank" and plain["metrics"] == ["ndcg@10"]


@pytest.mark.skipif(not BIRCO.is_dir(), reason="BIRCO data (../shared/data/birco) not present")
def test_birco_task_loads_as_a_rerank_pool():
    from infembed.eval.benchmarks import load_benchmark, qrels_pools

    bench = load_benchmark(str(BIRCO / "clinical-trial"), "test")
    assert len(bench.queries) == 50 and bench.pool_from_qrels
    assert set(bench.instructions.values()) and all(bench.instructions.values())
    pools = qrels_pools(bench)
    assert sum(len(p) for p in pools.values()) == sum(len(r) for r in bench.qrels.values())
    grades = {rel for rels in bench.qrels.values() for rel in rels.values()}
    assert grades == {0, 1, 2}
