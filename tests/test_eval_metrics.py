"""evaluate_run against pytrec_eval (trec_eval), p-MRR and robustness@10 against hand-computed values."""

import random

import pytest
import pytrec_eval

from infembed.eval.metrics import (
    evaluate_per_query,
    evaluate_run,
    p_mrr,
    parse_metric,
    robustness_at_10,
    trec_ranking,
)

KS = (1, 3, 5, 10, 20)


def _random_case(seed: int, max_rel: int = 3):
    """Runs with many score ties (scores on a coarse grid), graded qrels incl. unjudged and 0-labelled docs."""
    rng = random.Random(seed)
    docs = [f"d{i:03d}" for i in range(60)] + [f"x{i}" for i in range(5)]
    run, qrels = {}, {}
    for q in range(25):
        qid = f"q{q}"
        retrieved = rng.sample(docs, rng.randint(0, 30))
        run[qid] = {d: float(rng.randint(0, 6)) / 2 for d in retrieved}  # ties on purpose
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[qid] = {d: rng.randint(0, max_rel) for d in judged}
    qrels["only_in_qrels"] = {"d001": 1}
    run["only_in_run"] = {"d001": 1.0}
    return run, qrels


def _truncate(run, k):
    return {q: {d: run[q][d] for d in trec_ranking(run[q])[:k]} for q in run}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_query_values_equal_trec_eval(seed):
    run, qrels = _random_case(seed)
    names = [f"{m}@{k}" for m in ("ndcg", "map", "recall", "p") for k in KS]
    ours = evaluate_per_query(run, qrels, names)
    measures = {
        f"ndcg_cut.{','.join(map(str, KS))}",
        f"map_cut.{','.join(map(str, KS))}",
        f"recall.{','.join(map(str, KS))}",
        f"P.{','.join(map(str, KS))}",
    }
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    assert set(ours) == set(ref)  # only queries in both run and qrels, empty runs included
    trec_name = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall", "p": "P"}
    for qid in ref:
        for name in names:
            measure, k = parse_metric(name)
            assert ours[qid][name] == pytest.approx(ref[qid][f"{trec_name[measure]}_{k}"], abs=1e-12), (
                qid,
                name,
            )


@pytest.mark.parametrize("k", KS)
def test_mrr_at_k_equals_recip_rank_of_truncated_run(k):
    run, qrels = _random_case(3)
    ours = evaluate_per_query(run, qrels, [f"mrr@{k}"])
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_truncate(run, k))
    for qid in ref:
        assert ours[qid][f"mrr@{k}"] == pytest.approx(ref[qid]["recip_rank"], abs=1e-12)


def test_fractional_relevance_matches_trec_eval_on_scaled_labels():
    """pytrec_eval takes integer labels only: nDCG is scale-invariant and MAP/recall/P only test > 0."""
    run, int_qrels = _random_case(4, max_rel=10)
    frac_qrels = {q: {d: rel / 10 for d, rel in rels.items()} for q, rels in int_qrels.items()}
    names = ["ndcg@10", "map@1000", "recall@20", "p@5", "mrr@10"]
    ours = evaluate_run(run, frac_qrels, names)
    assert ours == pytest.approx(evaluate_run(run, int_qrels, names), abs=1e-12)
    ref = pytrec_eval.RelevanceEvaluator(int_qrels, {"ndcg_cut.10", "map_cut.1000"}).evaluate(run)
    assert ours["ndcg@10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in ref.values()) / len(ref), abs=1e-12)
    assert ours["map@1000"] == pytest.approx(
        sum(v["map_cut_1000"] for v in ref.values()) / len(ref), abs=1e-12
    )


def test_negative_labels_count_as_non_relevant_like_trec_eval():
    qrels = {"a": {"d1": -1, "d2": 1, "d3": 2}}
    run = {"a": {"d1": 1.0, "d2": 0.2, "d3": 0.1}}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map_cut.10"}).evaluate(run)["a"]
    ours = evaluate_run(run, qrels, ["ndcg@10", "map@10"])
    assert ours["ndcg@10"] == pytest.approx(ref["ndcg_cut_10"])
    assert ours["map@10"] == pytest.approx(ref["map_cut_10"])


def test_tie_break_is_doc_id_descending():
    assert trec_ranking({"a": 1.0, "c": 1.0, "b": 2.0, "d": 0.5}) == ["b", "c", "a", "d"]


def test_default_metrics_keys_and_bad_names():
    run, qrels = _random_case(5)
    assert set(evaluate_run(run, qrels)) == {"ndcg@10", "map@1000", "mrr@10", "recall@100", "p@5"}
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_run(run, qrels, ["ndcg@0"])
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_run(run, qrels, ["bleu"])
    with pytest.raises(ValueError, match="no query is in both"):
        evaluate_run({"x": {"d": 1.0}}, {"y": {"d": 1}})


# ---- p-MRR: hand-computed -------------------------------------------------------------------------------------------


def test_p_mrr_moved_down_and_up():
    og = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}  # ranks a1 b2 c3
    down = {"q": {"b": 3.0, "c": 2.0, "a": 1.0}}  # a: 1 -> 3
    assert p_mrr(og, down, {"q": ["a"]}) == pytest.approx(1 - 1 / 3)
    up = {"q": {"c": 3.0, "a": 2.0, "b": 1.0}}  # c: 3 -> 1
    assert p_mrr(og, up, {"q": ["c"]}) == pytest.approx(1 / 3 - 1)
    assert p_mrr(og, og, {"q": ["a", "b"]}) == 0.0


def test_p_mrr_ties_broken_by_doc_id_descending():
    og = {"q": {"a": 1.0, "b": 1.0}}  # tie: b rank 1, a rank 2
    new = {"q": {"a": 1.0, "b": 0.5}}  # a rank 1
    assert p_mrr(og, new, {"q": ["a"]}) == pytest.approx(1 / 2 - 1)  # moved up 2 -> 1
    assert p_mrr(og, new, {"q": ["b"]}) == pytest.approx(1 - 1 / 2)  # moved down 1 -> 2


def test_p_mrr_missing_docs_rank_after_the_run():
    og = {"q": {"a": 3.0, "b": 2.0}}
    new = {"q": {"b": 3.0, "c": 2.0, "d": 1.0}}  # a absent: rank 3 + 1 = 4
    assert p_mrr(og, new, {"q": ["a"]}) == pytest.approx(1 - 1 / 4)
    # absent from the original run: rank 2 + 1 = 3; new rank 2 -> moved up
    assert p_mrr(og, new, {"q": ["c"]}) == pytest.approx(2 / 3 - 1)


def test_p_mrr_mean_per_query_then_over_queries():
    og = {"q1": {"a": 2.0, "b": 1.0}, "q2": {"a": 2.0, "b": 1.0}}
    new = {"q1": {"b": 2.0, "a": 1.0}, "q2": {"a": 2.0, "b": 1.0}}
    # q1: a 1->2 (+0.5), b 2->1 (-0.5) -> mean 0 ; q2: a stays (0) ; q3 has no changed docs: ignored
    got = p_mrr(og, new, {"q1": ["a", "b"], "q2": ["a"], "q3": []})
    assert got == pytest.approx(0.0)
    got = p_mrr(og, new, {"q1": ["a"], "q2": ["a"]})  # (0.5 + 0) / 2
    assert got == pytest.approx(0.25)


def test_p_mrr_missing_query_warns_and_empty_raises():
    og = {"q": {"a": 1.0}}
    with pytest.warns(UserWarning, match="1 queries"):
        assert p_mrr(og, {"q": {"a": 1.0}}, {"q": ["a"], "lost": ["a"]}) == 0.0
    with pytest.raises(ValueError, match="no query"):
        p_mrr(og, og, {"q": []})


def test_robustness_at_10_takes_min_over_variants():
    qrels = {"v1": {"a": 1}, "v2": {"a": 1}, "w1": {"b": 1}}
    run = {"v1": {"a": 2.0, "b": 1.0}, "v2": {"b": 2.0, "a": 1.0}, "w1": {"b": 1.0}}
    got = robustness_at_10(run, qrels, {"v": ["v1", "v2"], "w": ["w1"]})
    assert got == pytest.approx((1 / 1.584962500721156 + 1.0) / 2)  # min(1, 1/log2 3), 1
    with pytest.raises(ValueError, match="missing"):
        robustness_at_10(run, qrels, {"v": ["v1", "nope"]})
