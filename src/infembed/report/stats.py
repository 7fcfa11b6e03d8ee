"""Intervals over seeds and paired tests over queries (numpy, vectorised; deterministic given ``seed``).

- ``mean_ci``: x̄ ± t_{1-α/2, n-1} · s / √n, s the sample standard deviation (ddof 1); no interval for n = 1.
- ``sign_flip_test``: paired randomisation test of d_q = a_q − b_q. Under H0 (A and B exchangeable on each query)
  every sign pattern ε ∈ {±1}^n is equally likely, so p = P(|mean(ε·d)| ≥ |mean(d)|), two-sided. All 2^n patterns
  are enumerated when 2^n ≤ ``permutations`` (exact p); otherwise ``permutations`` random patterns give
  p = (1 + #{|T*| ≥ |T|}) / (1 + permutations), which is never 0 (Phipson & Smyth 2010).
- ``paired_bootstrap_ci``: percentile interval of mean(d) over ``resamples`` resamples of the queries with
  replacement (Efron & Tibshirani 1993; as in Sakai 2006 for IR).
"""

from __future__ import annotations

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


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, resamples: int = 10000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a − b), resampling queries (pairs stay together)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (n,)
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            d[rng.integers(0, d.size, size=(min(CHUNK, resamples - start), d.size))].mean(axis=1)  # (c,)
            for start in range(0, resamples, CHUNK)
        ]
    )  # (resamples,)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)
