"""Intervals and tests at the level of runs (seeds), queries and query clusters (numpy, vectorised; deterministic
given ``seed``).

- ``mean_ci``: x̄ ± t_{1-α/2, n-1} · s / √n, s the sample standard deviation (ddof 1); no interval for n = 1.
- ``sign_flip_test``: paired randomisation test of d_i = a_i − b_i. Under H0 (A and B exchangeable within each pair)
  every sign pattern ε ∈ {±1}^n is equally likely, so p = P(|mean(ε·d)| ≥ |mean(d)|), two-sided. All 2^n patterns
  are enumerated when 2^n ≤ ``permutations`` (exact p); otherwise ``permutations`` random patterns give
  p = (1 + #{|T*| ≥ |T|}) / (1 + permutations), which is never 0 (Phipson & Smyth 2010). Over seed-matched runs
  (d_s = the run-mean difference of seed s) it is the exact permutation of configuration labels within seed; over
  clusters, d_c is a cluster's sum of query differences.
- ``label_permutation_test``: unpaired randomisation test of mean(a) − mean(b) over runs: under H0 all
  C(n_a + n_b, n_a) assignments of the runs to the two configurations are equally likely; exact when there are at
  most ``permutations`` of them, otherwise sampled as above.
- ``smallest_p``: the smallest p either seed-level test can give (2 / 2^S paired; 2 / C(2S, S), or 1 / C(n_a + n_b,
  n_a) for unequal sizes, unpaired): 3 vs 3 seeds cannot go below 0.25 paired, 0.10 unpaired.
- ``crossed_bootstrap``: percentile interval of the mean (or the difference of two configurations' means) when
  runs and queries are both random: each resample draws the seeds with replacement, then the query clusters with
  replacement (a query without a cluster is its own), and scores every drawn run on the same drawn queries, since
  every run answers the same queries (the "pigeonhole" bootstrap of a crossed design, Owen 2007, Ann. Appl. Stat.).
  Its variance is exactly Σα²/S² + Σβ²/n² + Σγ²/(S n)², α, β, γ the seed, query and interaction effects of the
  two-way decomposition (a little conservative, Owen 2007). Seed-matched differences resample the seeds once for both
  configurations; one run gives the query-level bootstrap (Efron & Tibshirani 1993; Sakai 2006 for IR).
- ``holm``: Holm's (1979) step-down adjustment, p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j)) over the sorted
  p-values of a family of m tests; controls the family-wise error rate under any dependence.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy.special import stdtrit

CHUNK = 1024  # resamples drawn at once: (CHUNK, n) float64 blocks stay small for thousands of queries
TIE_TOLERANCE = (
    1e-12  # |T*| within this of |T| counts as "as extreme" (sums in another order round differently)
)


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float | None]:
    """(mean, half-width of the Student t interval); half-width None for a single value.

    The quantile comes from ``scipy.special.stdtrit`` (scipy.stats would add seconds to the CLI's start).
    """
    x = np.asarray(values, dtype=np.float64)  # (n,)
    if x.size < 2:
        return float(x.mean()), None
    half = stdtrit(x.size - 1, 0.5 + level / 2) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(half)


def sign_flip_test(a: np.ndarray, b: np.ndarray, permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of the paired randomisation (sign-flip) test of mean(a − b) = 0."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (n,)
    observed = abs(d.mean()) - TIE_TOLERANCE
    n = d.size
    if 2**n <= permutations:
        patterns = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)  # (2^n, n) every ±1 pattern
        return float(np.mean(np.abs(patterns @ d) / n >= observed))
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, permutations, CHUNK):
        signs = 1 - 2 * rng.integers(
            0, 2, size=(min(CHUNK, permutations - start), n), dtype=np.int8
        )  # (c, n)
        extreme += int(np.count_nonzero(np.abs(signs @ d) / n >= observed))
    return (1 + extreme) / (1 + permutations)


def label_permutation_test(a: np.ndarray, b: np.ndarray, permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of the unpaired permutation test of mean(a) = mean(b) (runs relabelled between A and B)."""
    pooled = np.concatenate([a, b]).astype(np.float64)  # (n_a + n_b,)
    n, n_a = pooled.size, len(a)
    observed = abs(np.mean(a) - np.mean(b)) - TIE_TOLERANCE
    if math.comb(n, n_a) <= permutations:
        chosen = np.array(list(itertools.combinations(range(n), n_a)))  # (C, n_a) every assignment to A
        in_a = np.zeros((len(chosen), n), dtype=bool)  # (C, n)
        np.put_along_axis(in_a, chosen, True, axis=1)
        return float(np.mean(np.abs(_mean_difference(in_a, pooled, n_a)) >= observed))
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, permutations, CHUNK):
        ranks = rng.random((min(CHUNK, permutations - start), n)).argsort(
            axis=1
        )  # (c, n) random permutations
        extreme += int(np.count_nonzero(np.abs(_mean_difference(ranks < n_a, pooled, n_a)) >= observed))
    return (1 + extreme) / (1 + permutations)


def _mean_difference(in_a: np.ndarray, pooled: np.ndarray, n_a: int) -> np.ndarray:
    """mean of the runs marked A − mean of the others, per row of ``in_a`` (c, n)."""
    total_a = in_a @ pooled  # (c,)
    return total_a / n_a - (pooled.sum() - total_a) / (pooled.size - n_a)


def smallest_p(n_a: int, n_b: int, paired: bool) -> float:
    """The smallest p-value the seed-level test can reach with these numbers of runs."""
    if paired:
        return min(1.0, 2 / 2**n_a)
    return min(1.0, (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a))


def cluster_labels(queries: Sequence[str], clusters: dict[str, str]) -> np.ndarray:
    """(n,) integer cluster of each query, in order of first appearance; a query without a cluster is its own."""
    names = [
        ("cluster", clusters[q]) if q in clusters else ("query", q) for q in queries
    ]  # lone queries apart
    index = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return np.array([index[name] for name in names], dtype=np.int64)


def crossed_bootstrap(
    a: np.ndarray,
    b: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    paired: bool = False,
    resamples: int = 10000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of mean(a) − mean(b) (of mean(a) without ``b``) over resampled seeds and clusters.

    ``a``: (S_a, n) per-run, per-query values of one configuration; ``b``: (S_b, n) the other's on the same queries
    (``paired``: the same seeds in the same order, resampled together); ``clusters``: (n,) integer cluster per query
    (default: every query its own).
    """
    a = np.asarray(a, dtype=np.float64)
    clusters = np.arange(a.shape[1]) if clusters is None else np.asarray(clusters)
    rng = np.random.default_rng(seed)
    estimates = []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        seeds_a = _counts(rng, size, a.shape[0])  # (c, S_a) times each seed is drawn
        seeds_b = None if b is None else seeds_a if paired else _counts(rng, size, len(b))  # (c, S_b)
        weights = _counts(rng, size, int(clusters.max()) + 1)[:, clusters]  # (c, n) times each query is drawn
        estimate = _weighted_mean(a, seeds_a, weights)  # (c,)
        if b is not None:
            estimate = estimate - _weighted_mean(np.asarray(b, dtype=np.float64), seeds_b, weights)
        estimates.append(estimate)
    low, high = np.quantile(np.concatenate(estimates), [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)


def _counts(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """(size, n) multinomial counts: n draws with replacement from n items, ``size`` times."""
    draws = (
        rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
    )  # (size, n) item ids, offset per row
    return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)


def _weighted_mean(values: np.ndarray, seeds: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Σ_s Σ_q w_s v_sq w_q / (Σ w_s Σ w_q) per resample: values (S, n), seeds (c, S), queries (c, n) → (c,)."""
    totals = np.einsum("cs,sn,cn->c", seeds, values, queries)
    return totals / (seeds.sum(axis=1) * queries.sum(axis=1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=np.float64)  # (m,)
    order = np.argsort(p, kind="stable")
    steps = (p.size - np.arange(p.size)) * p[order]  # (m − j + 1) p_(j)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted.tolist()
