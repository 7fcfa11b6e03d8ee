"""Paired comparisons of configurations over queries: mean difference, bootstrap interval, randomisation p-value.

Each configuration's per-query values are averaged over its seeds (on the queries every seed has); two
configurations are compared on the queries both have. Pairs are chosen by the user (``--compare A B``) or, by
default, each configuration against the baseline (``--baseline``) or against the best configuration on the primary
metric (``--metric``, default: the runs' ``optimized_metric``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infembed.report.configs import Configuration
from infembed.report.runs import MetricKey, ReportInputError, Run, metric_keys, parse_metric_path
from infembed.report.stats import paired_bootstrap_ci, sign_flip_test

Pair = tuple[Configuration, Configuration]


@dataclass(frozen=True)
class Comparison:
    """A − B on one metric over ``queries`` shared queries (values as stored, fractions)."""

    a: str
    b: str
    key: MetricKey
    queries: int
    difference: float
    ci: tuple[float, float]
    p_value: float


def compare(
    a: Configuration, b: Configuration, stage: str, key: MetricKey, permutations: int = 10000, seed: int = 0
) -> Comparison | None:
    """The paired comparison of ``a`` and ``b`` on one metric; None when they share no per-query value."""
    qa, qb = a.query_values(stage, key), b.query_values(stage, key)
    shared = sorted(set(qa) & set(qb))
    if not shared:
        return None
    x = np.array([qa[q] for q in shared])  # (n,)
    y = np.array([qb[q] for q in shared])  # (n,)
    return Comparison(
        a.label,
        b.label,
        key,
        len(shared),
        float(np.mean(x - y)),
        paired_bootstrap_ci(x, y, permutations, seed),
        sign_flip_test(x, y, permutations, seed),
    )


def primary_metric(runs: list[Run], requested: str | None) -> tuple[str, MetricKey]:
    """``requested`` (a path such as ``after/synthetic/p-mrr``), else the runs' ``optimized_metric`` when the runs
    have it, else the first after-training metric."""
    finished = [run for run in runs if run.ok]
    if requested is not None:
        stage, key = parse_metric_path(requested)
        if key not in metric_keys(finished, stage):
            raise ReportInputError(f"--metric {requested}: no finished run has it")
        return stage, key
    configured = next((run.config.get("optimized_metric") for run in finished), None)
    try:
        stage, key = parse_metric_path(str(configured))
    except ReportInputError:  # absent or not a path (an old bare name such as "p-mrr")
        return "after", metric_keys(finished)[0]
    return (stage, key) if key in metric_keys(finished, stage) else ("after", metric_keys(finished)[0])


def best_configuration(configs: list[Configuration], stage: str, key: MetricKey) -> Configuration:
    """The configuration with the highest mean over seeds of the metric."""
    scored = [(s[0], c) for c in configs if (s := c.summary(stage, key)) is not None]
    return max(scored, key=lambda item: item[0])[1]


def default_pairs(configs: list[Configuration], reference: Configuration) -> list[Pair]:
    return [(c, reference) for c in configs if c is not reference]


def compare_pairs(pairs: list[Pair], keys: list[MetricKey], permutations: int, seed: int) -> list[Comparison]:
    """Every pair on every after-training metric that both have per-query values for."""
    found = (compare(a, b, "after", key, permutations, seed) for a, b in pairs for key in keys)
    return [c for c in found if c is not None]


def comparison_table(comparisons: list[Comparison]) -> str:
    """Markdown: one row per (pair, metric); Δ and its interval ×100, p to four decimals."""
    lines = [
        "| A | B | metric | queries | Δ = A − B | 95 % CI of Δ | p |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.a} | {c.b} | {'/'.join(c.key)} | {c.queries} | {100 * c.difference:+.1f} | "
            f"[{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}] | {c.p_value:.4f} |"
        )
    return "\n".join(lines)
