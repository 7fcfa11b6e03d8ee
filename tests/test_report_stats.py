"""The report's statistics against direct computations: t intervals, sign-flip p-values, bootstrap intervals."""

import itertools
import math
import statistics

import numpy as np
import pytest

from infembed.report.stats import crossed_bootstrap, mean_ci, sign_flip_test


def brute_force_p(d: list[float]) -> float:
    """Fraction of the 2^n sign patterns whose |mean| reaches the observed one (itertools, no numpy)."""
    observed = abs(sum(d))
    sums = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(s >= observed - 1e-9 for s in sums) / len(sums)


def test_mean_ci_is_the_student_t_interval():
    assert mean_ci([0.4]) == (0.4, None)
    mean, half = mean_ci([0.1, 0.3])
    assert mean == pytest.approx(0.2) and half == pytest.approx(
        12.706204736 * statistics.stdev([0.1, 0.3]) / math.sqrt(2)
    )
    values = [0.52, 0.55, 0.49, 0.61, 0.50]
    mean, half = mean_ci(values)
    assert half == pytest.approx(2.776445105 * statistics.stdev(values) / math.sqrt(5))  # t_{0.975, 4}


@pytest.mark.parametrize("seed", range(4))
def test_exact_sign_flip_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random(7), rng.random(7)
    assert sign_flip_test(a, b, permutations=128) == pytest.approx(brute_force_p(list(a - b)))


def test_exact_sign_flip_by_hand():
    # d = (1, 1, 1, 3): |Σ ε d| ≥ 6 only for all + or all −: p = 2/16
    assert sign_flip_test(np.array([1.0, 1, 1, 3]), np.zeros(4)) == 0.125
    assert sign_flip_test(np.zeros(5), np.zeros(5)) == 1.0


def test_random_sign_flips_estimate_the_exact_p_and_are_reproducible():
    rng = np.random.default_rng(11)
    d = rng.normal(0.1, 0.5, size=14)  # 2^14 = 16384 patterns > 10000: the random branch
    p = sign_flip_test(d, np.zeros(14), permutations=10000, seed=3)
    assert p == pytest.approx(brute_force_p(list(d)), abs=0.02)
    assert p == sign_flip_test(d, np.zeros(14), permutations=10000, seed=3)
    assert p != sign_flip_test(d, np.zeros(14), permutations=10000, seed=4)


def test_random_sign_flips_never_give_zero_and_keep_ties():
    x = np.linspace(0.2, 0.8, 50)
    assert sign_flip_test(x + 0.3, x, permutations=999) == 1 / 1000  # every flip is less extreme: 1 / (1 + R)
    assert sign_flip_test(x, x.copy(), permutations=999) == 1.0


def test_bootstrap_interval_matches_the_normal_interval_for_many_queries():
    rng = np.random.default_rng(5)
    a = rng.normal(0.5, 0.2, size=400)
    b = a - rng.normal(0.05, 0.1, size=400)
    low, high = crossed_bootstrap(a[None], b[None], resamples=4000, seed=0)  # one run each: queries only
    d = a - b
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.15 * half)
    assert (low, high) == crossed_bootstrap(a[None], b[None], resamples=4000, seed=0)
    assert crossed_bootstrap(a[None] + 0.1, a[None], resamples=100) == pytest.approx((0.1, 0.1))
