"""recsys.drift.stats against slow, obvious references (the LightFM habit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.drift import stats


def slow_psi(cur, ref, pseudo=0.5):
    tc, tr = sum(cur) + pseudo * len(cur), sum(ref) + pseudo * len(ref)
    total = 0.0
    for c, r in zip(cur, ref):
        p, q = (c + pseudo) / tc, (r + pseudo) / tr
        total += (p - q) * math.log(p / q)
    return total


def slow_js(cur, ref):
    p = [c / sum(cur) for c in cur]
    q = [r / sum(ref) for r in ref]
    m = [(a + b) / 2 for a, b in zip(p, q)]

    def kl(x, y):
        return sum(a * math.log2(a / b) for a, b in zip(x, y) if a > 0)

    return math.sqrt((kl(p, m) + kl(q, m)) / 2)


def slow_gini(counts):
    n, mean = len(counts), sum(counts) / len(counts)
    if mean == 0:
        return 0.0
    return sum(abs(a - b) for a in counts for b in counts) / (2 * n * n * mean)


def slow_chi2_p(cur, ref):
    from scipy.stats import chi2

    cols = [(c, r) for c, r in zip(cur, ref) if c + r > 0]
    n_c, n_r = sum(c for c, _ in cols), sum(r for _, r in cols)
    n = n_c + n_r
    stat = 0.0
    for c, r in cols:
        for observed, row_total in ((c, n_c), (r, n_r)):
            expected = row_total * (c + r) / n
            stat += (observed - expected) ** 2 / expected
    return float(chi2.sf(stat, len(cols) - 1))


CASES = [
    ([10, 20, 30], [10, 20, 30]),
    ([50, 5, 5], [10, 20, 30]),
    ([0, 7, 3, 1], [4, 0, 9, 2]),
    ([1000, 1], [1, 1000]),
]


@pytest.mark.parametrize("cur, ref", CASES)
def test_psi_js_and_chi2_match_the_references(cur, ref):
    assert stats.psi(cur, ref) == pytest.approx(slow_psi(cur, ref), rel=1e-12, abs=1e-12)
    assert stats.js_distance(cur, ref) == pytest.approx(slow_js(cur, ref), rel=1e-9, abs=1e-9)
    assert stats.chi2_p_value(cur, ref) == pytest.approx(slow_chi2_p(cur, ref), rel=1e-9, abs=1e-12)


def test_random_vectors_match_the_references():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 15))
        cur, ref = rng.integers(0, 50, n).tolist(), rng.integers(1, 50, n).tolist()
        cur[0] += 1
        assert stats.psi(cur, ref) == pytest.approx(slow_psi(cur, ref), rel=1e-12, abs=1e-12)
        assert stats.js_distance(cur, ref) == pytest.approx(slow_js(cur, ref), rel=1e-9, abs=1e-9)
        counts = rng.integers(0, 30, n).tolist()
        assert stats.gini(counts) == pytest.approx(slow_gini(counts), rel=1e-12, abs=1e-12)


def test_identical_distributions_are_at_distance_zero_and_scale_does_not_matter():
    assert stats.psi([10, 20, 30], [100, 200, 300]) == pytest.approx(0, abs=1e-3)
    assert stats.js_distance([10, 20, 30], [100, 200, 300]) == pytest.approx(0, abs=1e-9)
    assert stats.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert stats.chi2_p_value([5], [9]) == 1.0


def test_gini_of_equal_and_of_concentrated_counts():
    assert stats.gini([3, 3, 3, 3]) == 0.0
    assert stats.gini([0, 0, 0, 12]) == pytest.approx(0.75)  # (n - 1) / n: one product takes everything
    assert stats.gini([0, 0]) == 0.0


def test_ks_on_histograms_matches_scipy_on_the_expanded_samples():
    from scipy.stats import ks_2samp

    cur, ref = {1: 30, 2: 10, 5: 4}, {1: 10, 3: 12, 8: 9}
    expanded = [np.repeat(list(h), list(h.values())) for h in (cur, ref)]
    assert stats.ks_p_value(cur, ref) == pytest.approx(ks_2samp(*expanded).pvalue)
    assert stats.ks_p_value(cur, cur) == pytest.approx(1.0)


@pytest.mark.parametrize("cur, ref, words", [
    ([1, 2], [1, 2, 3], "same non-zero length"),
    ([], [], "same non-zero length"),
    ([1, -1], [1, 1], "non-negative"),
    ([0, 0], [1, 1], "at least one count"),
    ([1, float("nan")], [1, 1], "finite"),
])
def test_bad_counts_are_refused_with_a_clear_error(cur, ref, words):
    with pytest.raises(ValueError, match=words):
        stats.psi(cur, ref)


def test_bad_gini_and_histogram_inputs():
    with pytest.raises(ValueError, match="non-empty"):
        stats.gini([])
    with pytest.raises(ValueError, match="non-negative"):
        stats.gini([1, -2])
    with pytest.raises(ValueError, match="at least one count"):
        stats.ks_p_value({}, {1: 2})
