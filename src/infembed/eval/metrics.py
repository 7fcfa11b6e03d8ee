"""Ranking metrics with trec_eval's exact semantics, FollowIR's p-MRR and InstructIR's robustness@10.

Inputs are plain dicts: ``run = {qid: {docid: score}}``, ``qrels = {qid: {docid: relevance}}``.

trec_eval conventions reproduced here (checked against ``pytrec_eval`` in ``tests/test_eval_metrics.py``):

- ranking: score descending, ties broken by document id descending (trec_eval's ``strcmp`` on docnos);
- a document is relevant when its relevance is > 0 (trec_eval's default ``relevance_level`` 1 for integer labels;
  fractional labels such as 0.4 count as relevant); unjudged documents are non-relevant;
- only queries present in both the run and the qrels are evaluated (``pytrec_eval`` behaviour; trec_eval without
  ``-c``); a qrels query with no relevant document still counts, with every metric 0; the reported value is the mean
  over the evaluated queries.

Metric names (``k`` optional; without it the whole run is used):

- ``ndcg@k``   = DCG@k / IDCG@k, DCG@k = Σ_{r≤k} g_r / log2(r + 1), g = max(relevance, 0) (trec_eval ``ndcg_cut``:
  gain = the relevance label, graded or fractional; the ideal ranking sorts all qrels labels, cut at k);
- ``map@k``    = (1/R) Σ_{r≤k, doc_r relevant} P@r, R = number of relevant documents in the qrels (``map_cut``);
- ``mrr@k``    = 1 / rank of the first relevant document within the top k, else 0 (``recip_rank`` on the run cut
  at k);
- ``recall@k`` = |relevant ∩ top k| / R (``recall``), 0 when R = 0;
- ``p@k``      = |relevant ∩ top k| / k (``P``; k is the divisor even when fewer documents were retrieved).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS = ("ndcg@10", "map@1000", "mrr@10", "recall@100", "p@5")
MEASURES = ("ndcg", "map", "mrr", "recall", "p")
_METRIC_RE = re.compile(r"^(ndcg|map|mrr|recall|p)(?:@(\d+))?$", re.IGNORECASE)


def parse_metric(name: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ``"map"`` -> ``("map", None)`` (no cut-off)."""
    match = _METRIC_RE.match(name.strip())
    if match is None or (match.group(2) is not None and int(match.group(2)) < 1):
        raise ValueError(
            f"unknown metric {name!r}; expected one of {MEASURES} optionally followed by @k (k >= 1)"
        )
    return match.group(1).lower(), int(match.group(2)) if match.group(2) else None


def trec_ranking(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval order: score descending, then document id descending."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def _ndcg(ranking: Sequence[str], rels: Mapping[str, float], k: int | None) -> float:
    dcg = sum(max(rels.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
    ideal = sorted((max(rel, 0) for rel in rels.values()), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _query_metric(measure: str, k: int | None, ranking: list[str], rels: Mapping[str, float]) -> float:
    top = ranking[:k]
    hits = [rels.get(doc, 0) > 0 for doc in top]  # (k,) relevance flags of the top k
    num_rel = sum(rel > 0 for rel in rels.values())
    if measure == "ndcg":
        return _ndcg(ranking, rels, k)
    if measure == "map":
        found, total = 0, 0.0
        for rank, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                total += found / rank
        return total / num_rel if num_rel else 0.0
    if measure == "mrr":
        return next((1.0 / rank for rank, hit in enumerate(hits, start=1) if hit), 0.0)
    if measure == "recall":
        return sum(hits) / num_rel if num_rel else 0.0
    return sum(hits) / (k if k is not None else max(len(ranking), 1))  # p


def evaluate_per_query(
    run: Run, qrels: Qrels, metrics: Iterable[str] | None = None
) -> dict[str, dict[str, float]]:
    """``{qid: {metric: value}}`` for every query present in both ``run`` and ``qrels``."""
    names = list(metrics) if metrics is not None else list(DEFAULT_METRICS)
    parsed = [(name, *parse_metric(name)) for name in names]
    results = {}
    for qid in sorted(set(run) & set(qrels)):
        ranking = trec_ranking(run[qid])
        results[qid] = {name: _query_metric(measure, k, ranking, qrels[qid]) for name, measure, k in parsed}
    return results


def evaluate_run(run: Run, qrels: Qrels, metrics: Iterable[str] | None = None) -> dict[str, float]:
    """Mean of each metric over the queries in both run and qrels (see the module docstring for definitions).

    ``metrics`` defaults to ``("ndcg@10", "map@1000", "mrr@10", "recall@100", "p@5")``; returned keys are the
    names as given. Raises ``ValueError`` when no query is in both.
    """
    names = list(metrics) if metrics is not None else list(DEFAULT_METRICS)
    per_query = evaluate_per_query(run, qrels, names)
    if not per_query:
        raise ValueError(
            f"no query is in both the run ({len(run)} queries) and the qrels ({len(qrels)} queries)"
        )
    return {name: sum(values[name] for values in per_query.values()) / len(per_query) for name in names}


def _rank_of(ranking: Sequence[str], positions: Mapping[str, int], doc: str) -> int:
    return positions.get(doc, len(ranking)) + 1  # absent: run length + 1


def _pair_score(rank_og: int, rank_new: int) -> float:
    """FollowIR's per-document score: R_new/R_og - 1 when not moved down (≤ 0), else 1 - R_og/R_new (> 0)."""
    return rank_new / rank_og - 1.0 if rank_og >= rank_new else 1.0 - rank_og / rank_new


def p_mrr_per_query(
    original_run: Run, changed_run: Run, changed_docs: Mapping[str, Iterable[str]]
) -> dict[str, float]:
    """FollowIR's per-query p-MRR ``{qid: mean over d of s(q, d)}`` (see :func:`p_mrr` for s and the rules)."""
    per_query, skipped = {}, []
    for qid, docs in changed_docs.items():
        docs = list(docs)
        if not docs:
            continue
        if qid not in original_run or qid not in changed_run:
            skipped.append(qid)
            continue
        og, new = trec_ranking(original_run[qid]), trec_ranking(changed_run[qid])
        og_pos, new_pos = {d: i for i, d in enumerate(og)}, {d: i for i, d in enumerate(new)}
        scores = [_pair_score(_rank_of(og, og_pos, d), _rank_of(new, new_pos, d)) for d in docs]
        per_query[qid] = sum(scores) / len(scores)
    if skipped:
        warnings.warn(
            f"p-MRR: {len(skipped)} queries with changed documents are missing from a run; skipped",
            stacklevel=2,
        )
    if not per_query:
        raise ValueError("p-MRR: no query has both changed documents and results in both runs")
    return per_query


def p_mrr(original_run: Run, changed_run: Run, changed_docs: Mapping[str, Iterable[str]]) -> float:
    """FollowIR's p-MRR as a fraction in [-1, 1] (papers print it x100).

    For each query q and each document d in ``changed_docs[q]`` (relevant under the original instruction, not under
    the changed one), with 1-based ranks R_og (``original_run``) and R_new (``changed_run``) in trec_eval order
    (score descending, ties by document id descending; a document absent from a run ranks at run length + 1):

        s(q, d) = R_new / R_og - 1   if R_og >= R_new   (moved up or stayed)
                = 1 - R_og / R_new   otherwise          (moved down: the instruction change was followed)

    p-MRR = mean over queries of (mean over d of s(q, d)). Queries with no changed document are ignored; a query
    missing from either run is skipped with a warning (as FollowIR does). Raises ``ValueError`` when nothing is left.
    """
    per_query = p_mrr_per_query(original_run, changed_run, changed_docs)
    return sum(per_query.values()) / len(per_query)


def robustness_at_10(
    runs_by_variant: Run, qrels_by_variant: Qrels, groups: Mapping[str, Sequence[str]]
) -> float:
    """InstructIR's robustness@10: mean over base queries of the minimum nDCG@10 over their instruction variants.

    Args:
        runs_by_variant: ``{variant_qid: {docid: score}}`` — one run per (instruction, query) variant.
        qrels_by_variant: ``{variant_qid: {docid: relevance}}``.
        groups: ``{base_qid: [variant_qid, ...]}`` — the variants that share one base query.

    robustness@10 = (1/|groups|) Σ_b min_{v ∈ groups[b]} nDCG@10(v). Every variant must be in both the run and the
    qrels (``ValueError`` otherwise): a missing variant has no defined worst case.
    """
    if not groups:
        raise ValueError("robustness@10: no groups given")
    per_query = evaluate_per_query(runs_by_variant, qrels_by_variant, ["ndcg@10"])
    minima = []
    for base, variants in groups.items():
        missing = [v for v in variants if v not in per_query]
        if not variants or missing:
            raise ValueError(
                f"robustness@10: group {base!r} has variants missing from the run or qrels: {missing}"
            )
        minima.append(min(per_query[v]["ndcg@10"] for v in variants))
    return sum(minima) / len(minima)


__all__ = [
    "DEFAULT_METRICS",
    "evaluate_per_query",
    "evaluate_run",
    "p_mrr",
    "parse_metric",
    "robustness_at_10",
    "trec_ranking",
]
