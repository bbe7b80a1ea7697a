"""The A/B statistics against scipy's reference values and slow obvious references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from recsys.abtest.stats import (
    ArmCounts, compare_ctr, design_effect, diff_confint, min_sample_size, two_proportion_ztest,
)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [
    (120, 1000, 150, 1000), (30, 400, 31, 400), (5, 90, 19, 110), (900, 10_000, 820, 9_000), (0, 50, 3, 50)])
def test_ztest_matches_scipy_chi_square(x1, n1, x2, n2):
    got = two_proportion_ztest(x1, n1, x2, n2)
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    chi2, p, _, _ = sps.chi2_contingency(table, correction=False)
    assert got.pvalue == pytest.approx(p, rel=1e-9, abs=1e-15)
    assert got.z**2 == pytest.approx(chi2, rel=1e-9)
    assert math.copysign(1, got.z) == math.copysign(1, x2 / n2 - x1 / n1)


def test_ztest_pvalue_is_the_normal_tail_of_z():
    got = two_proportion_ztest(120, 1000, 150, 1000)
    assert got.pvalue == pytest.approx(2 * sps.norm.sf(abs(got.z)), rel=1e-12)


def test_confidence_interval_matches_the_wald_formula_with_scipy_quantiles():
    x1, n1, x2, n2 = 120, 1000, 150, 1100
    p1, p2 = x1 / n1, x2 / n2
    for alpha in (0.05, 0.01, 0.2):
        half = sps.norm.ppf(1 - alpha / 2) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        low, high = diff_confint(x1, n1, x2, n2, alpha)
        assert (low, high) == pytest.approx((p2 - p1 - half, p2 - p1 + half), rel=1e-9)


def _power(n1: int, n2: int, p1: float, p2: float, alpha: float) -> float:
    """Power of the pooled two-sided test by scipy (the reference the formula inverts)."""
    pbar = (n1 * p1 + n2 * p2) / (n1 + n2)
    se0 = math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
    se1 = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    za = sps.norm.ppf(1 - alpha / 2)
    return sps.norm.cdf((abs(p2 - p1) - za * se0) / se1) + sps.norm.cdf((-abs(p2 - p1) - za * se0) / se1)


@pytest.mark.parametrize(("baseline", "mde", "ratio"), [(0.1, 0.1, 1.0), (0.05, 0.2, 0.25), (0.3, 0.05, 1.0)])
def test_min_sample_size_is_the_smallest_with_the_power(baseline, mde, ratio):
    n1, n2 = min_sample_size(baseline, mde, alpha=0.05, power=0.8, ratio=ratio)
    p2 = baseline * (1 + mde)
    assert n2 == math.ceil(ratio * n1)
    assert _power(n1, n2, baseline, p2, 0.05) == pytest.approx(0.8, abs=0.002)
    assert _power(int(n1 * 0.95), math.ceil(ratio * int(n1 * 0.95)), baseline, p2, 0.05) < 0.8


def test_min_sample_size_textbook_value():
    # 10% -> 11% at alpha 0.05, power 0.8, equal groups: the classic ~14,750 per group
    assert min_sample_size(0.10, 0.10)[0] == pytest.approx(14_750, rel=0.01)


def test_design_effect_against_a_slow_reference():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 20, size=300)
    x = rng.binomial(n, rng.beta(1, 8, size=300))
    p = x.sum() / n.sum()
    clustered = sum((xi - p * ni) ** 2 for xi, ni in zip(x, n)) / n.sum() ** 2
    assert design_effect(x, n) == pytest.approx(max(1.0, clustered / (p * (1 - p) / n.sum())), rel=1e-12)
    assert design_effect(x, n) > 1.5  # heterogeneous users: impressions are far from independent


def test_design_effect_is_one_for_one_trial_per_user_and_for_edge_cases():
    x = np.random.default_rng(2).binomial(1, 0.2, size=500)
    assert design_effect(x, np.ones(500)) == pytest.approx(1.0, abs=1e-12)
    assert design_effect([0, 0], [3, 4]) == 1.0 and design_effect([1], [1]) == 1.0
    with pytest.raises(ValueError, match="shape"):
        design_effect([1, 2], [3])


def test_bad_input_is_refused_with_a_readable_error():
    with pytest.raises(ValueError, match="control"):
        two_proportion_ztest(11, 10, 1, 10)
    with pytest.raises(ValueError, match="baseline"):
        min_sample_size(0.0, 0.1)
    with pytest.raises(ValueError, match="mde"):
        min_sample_size(0.1, -0.1)


def test_compare_ctr_is_inconclusive_until_the_sample_size_is_reached():
    rules = {"alpha": 0.05, "mde": 0.1, "power": 0.8, "ratio": 1.0}
    small = compare_ctr(ArmCounts(100, 1000), ArmCounts(140, 1000), **rules)
    assert small["pvalue"] < 0.05 and not small["sample_size_reached"] and small["winner"] == "inconclusive"
    big = compare_ctr(ArmCounts(1500, 15_000), ArmCounts(1800, 15_000), **rules)
    assert big["sample_size_reached"] and big["winner"] == "treatment"
    assert big["ci_low"] > 0 and big["ci_low"] < big["diff"] < big["ci_high"]
    lost = compare_ctr(ArmCounts(1800, 15_000), ArmCounts(1500, 15_000), **rules)
    assert lost["winner"] == "control" and lost["ci_high"] < 0


def test_compare_ctr_shrinks_the_sample_by_the_design_effect():
    rules = {"alpha": 0.05, "mde": 0.1, "power": 0.8, "ratio": 1.0}
    plain = compare_ctr(ArmCounts(1500, 15_000), ArmCounts(1620, 15_000), **rules)
    clustered = compare_ctr(ArmCounts(1500, 15_000, 3.0), ArmCounts(1620, 15_000, 3.0), **rules)
    assert clustered["effective"]["control"] == pytest.approx(5_000)
    assert clustered["pvalue"] > plain["pvalue"] and clustered["pvalue_unadjusted"] == plain["pvalue"]
    naive = two_proportion_ztest(1500 / 3, 5000, 1620 / 3, 5000)
    assert clustered["pvalue"] == pytest.approx(naive.pvalue)
