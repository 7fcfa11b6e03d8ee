"""Paired comparisons of configurations at the level where their randomness is: runs (seeds), then queries or
query clusters; Holm's adjustment over the report's family of tests.

Two configurations are compared on the queries every run of both has. Δ = mean over runs and queries of A − the
same of B. Its interval is the crossed bootstrap (seeds, then queries or clusters: ``stats.crossed_bootstrap``).
Its p-value:

- both configurations have ≥ 2 runs: a test over runs, whose null includes run-to-run variation. With the same seeds
  the runs are paired by seed (the same data order and sampling): the exact permutation of the configuration labels
  within seed (sign flips of the per-seed differences of run means); otherwise (or with ``--unpaired-seeds``) the
  exact permutation of the runs between the configurations. Pairing removes what seed-matched runs share but has
  fewer permutations: 5 matched seeds cannot reach p < 0.0625 paired, 0.008 unpaired. Few runs bound the p-value
  from below (``stats.smallest_p``), whatever the effect;
- otherwise (one run on a side): the sign-flip test over queries, or over clusters when the benchmark names them
  (``clusters.json``); it covers only query-level variation, and the table says so.

Pairs are chosen by the user (``--compare A B``) or, by default, each configuration against the baseline
(``--baseline``) or against the best configuration on the primary metric (``--metric``, default: the runs'
``optimized_metric``). All tests of one report form one family: Holm's adjustment is over all of them (``--compare A
B`` with one ``--test-metric`` is a family of one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from infembed.report.configs import Configuration
from infembed.report.runs import (
    MetricKey,
    ReportInputError,
    Run,
    metric_keys,
    parse_metric_path,
    query_clusters,
)
from infembed.report.stats import (
    cluster_labels,
    crossed_bootstrap,
    holm,
    label_permutation_test,
    sign_flip_test,
    smallest_p,
)

Pair = tuple[Configuration, Configuration]


@dataclass(frozen=True)
class Comparison:
    """A − B on one metric (values as stored, fractions) and the unit its test treats as random."""

    a: str
    b: str
    key: MetricKey
    runs: tuple[int, int]  # runs (seeds) of A and of B
    queries: int
    clusters: int | None  # clusters the queries fall into (None: the benchmark names none)
    paired: bool  # same seeds on both sides: runs paired by seed
    difference: float
    ci: tuple[float, float]
    p_value: float
    p_holm: float = float("nan")

    @property
    def seed_level(self) -> bool:
        return min(self.runs) >= 2

    @property
    def test(self) -> str:
        """What the p-value's null treats as random, in words."""
        if self.seed_level:
            floor = smallest_p(*self.runs, self.paired)
            if self.paired:
                return f"runs: {self.runs[0]} seed pairs, label flips within seed (p ≥ {floor:.3g})"
            return f"runs: {self.runs[0]} vs {self.runs[1]}, labels permuted (p ≥ {floor:.3g})"
        unit = f"{self.clusters} clusters" if self.clusters else f"{self.queries} queries"
        return f"{unit} only, sign flips (one run: run-to-run variation not covered)"


def compare(
    a: Configuration,
    b: Configuration,
    stage: str,
    key: MetricKey,
    permutations: int = 10000,
    seed: int = 0,
    pair_seeds: bool = True,
) -> Comparison | None:
    """The comparison of ``a`` and ``b`` on one metric; None when they share no per-query value.

    ``pair_seeds``: pair the runs by seed when both have the same seeds (False: never; choose before looking)."""
    queries = sorted(a.query_ids(stage, key) & b.query_ids(stage, key))
    if not queries:
        return None
    x, y = a.query_matrix(stage, key, queries), b.query_matrix(stage, key, queries)  # (S_a, n), (S_b, n)
    names = query_clusters(a.runs + b.runs, key[0])
    labels = cluster_labels(queries, names)  # (n,)
    paired = pair_seeds and a.seeds == b.seeds
    if min(len(x), len(y)) >= 2:
        run_a, run_b = x.mean(axis=1), y.mean(axis=1)  # (S_a,), (S_b,) run means on the shared queries
        test = sign_flip_test if paired else label_permutation_test
        p_value = test(run_a, run_b, permutations, seed)
    else:
        per_query = x.mean(axis=0) - y.mean(axis=0)  # (n,)
        totals = np.bincount(labels, weights=per_query)  # (k,) each cluster's sum
        p_value = sign_flip_test(totals, np.zeros_like(totals), permutations, seed)
    return Comparison(
        a.label,
        b.label,
        key,
        (len(x), len(y)),
        len(queries),
        int(labels.max()) + 1 if any(q in names for q in queries) else None,
        paired,
        float(x.mean() - y.mean()),
        crossed_bootstrap(x, y, labels, paired, permutations, seed),
        p_value,
    )


def primary_metric(runs: list[Run], requested: str | None) -> tuple[str, MetricKey]:
    """``requested`` (a path such as ``after/synthetic/p-mrr``), else the runs' ``optimized_metric`` when the runs
    have it, else the first after-training metric."""
    finished = [run for run in runs if run.ok]
    if requested is not None:
        return checked_metric(finished, requested, "--metric")
    configured = next((run.config.get("optimized_metric") for run in finished), None)
    try:
        stage, key = parse_metric_path(str(configured))
    except ReportInputError:  # absent or not a path (an old bare name such as "p-mrr")
        return "after", metric_keys(finished)[0]
    return (stage, key) if key in metric_keys(finished, stage) else ("after", metric_keys(finished)[0])


def checked_metric(finished: list[Run], path: str, option: str) -> tuple[str, MetricKey]:
    """``path`` parsed; an error naming ``option`` when no finished run has it."""
    stage, key = parse_metric_path(path)
    if key not in metric_keys(finished, stage):
        raise ReportInputError(f"{option} {path}: no finished run has it")
    return stage, key


def best_configuration(configs: list[Configuration], stage: str, key: MetricKey) -> Configuration:
    """The configuration with the highest mean over seeds of the metric."""
    scored = [(s[0], c) for c in configs if (s := c.summary(stage, key)) is not None]
    return max(scored, key=lambda item: item[0])[1]


def default_pairs(configs: list[Configuration], reference: Configuration) -> list[Pair]:
    return [(c, reference) for c in configs if c is not reference]


def compare_pairs(
    pairs: list[Pair], keys: list[MetricKey], permutations: int, seed: int, pair_seeds: bool = True
) -> list[Comparison]:
    """Every pair on every after-training metric of ``keys`` that both have per-query values for, with the
    Holm-adjusted p-values of this family."""
    found = (compare(a, b, "after", key, permutations, seed, pair_seeds) for a, b in pairs for key in keys)
    family = [c for c in found if c is not None]
    return [replace(c, p_holm=p) for c, p in zip(family, holm([c.p_value for c in family]))]


def comparison_table(comparisons: list[Comparison], alpha: float) -> str:
    """Markdown: one row per (pair, metric); Δ and its interval ×100, raw and Holm p; bold: Holm p < ``alpha``."""
    lines = [
        "| A | B | metric | runs (A, B) | queries (clusters) | Δ = A − B | 95 % CI of Δ | p | p (Holm) | p's random unit |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in comparisons:
        survives = c.p_holm < alpha
        delta, holm_p = f"{100 * c.difference:+.1f}", f"{c.p_holm:.4f}"
        queries = f"{c.queries} ({c.clusters})" if c.clusters else str(c.queries)
        lines.append(
            f"| {c.a} | {c.b} | {'/'.join(c.key)} | {c.runs[0]}, {c.runs[1]} | {queries} | "
            f"{_bold(delta, survives)} | [{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}] | {c.p_value:.4f} | "
            f"{_bold(holm_p, survives)} | {c.test} |"
        )
    return "\n".join(lines)


def _bold(text: str, bold: bool) -> str:
    return f"**{text}**" if bold else text
