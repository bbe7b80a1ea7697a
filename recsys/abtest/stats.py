"""A/B statistics as pure functions: two-proportion z-test, confidence interval, sample size.

Arm 1 is the control, arm 2 the treatment; differences are ``p2 - p1``. Normal
quantiles come from the standard library (``statistics.NormalDist``); the tests
check every number against scipy.

Impressions of one user are not independent (a keen shopper clicks often), and a
z-test that treats them as independent calls an A/A test significant far more
often than ``alpha``. ``design_effect`` measures that clustering (the ratio of the
user-clustered variance of the CTR to the binomial one, Kish's design effect) and
``compare_ctr`` runs the two-proportion z-test on the effective sample sizes
``n / design_effect``; with one impression per user it is the textbook test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

import numpy as np

from recsys.constants import ARM_CONTROL, ARM_TREATMENT, WINNER_INCONCLUSIVE

_N = NormalDist()


@dataclass(frozen=True)
class ZTest:
    z: float
    pvalue: float


def _check_counts(x: float, n: float, name: str) -> None:
    if n < 0 or x < 0 or x > n:
        raise ValueError(f"{name}: need 0 <= successes <= trials, got {x} of {n}")


def two_proportion_ztest(x1: float, n1: float, x2: float, n2: float) -> ZTest:
    """Two-sided pooled z-test of ``x2/n2 - x1/n1`` (``z = 0, p = 1`` when it cannot be told apart)."""
    _check_counts(x1, n1, "control")
    _check_counts(x2, n2, "treatment")
    if n1 == 0 or n2 == 0:
        return ZTest(0.0, 1.0)
    p1, p2, pooled = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return ZTest(0.0, 1.0)
    z = (p2 - p1) / se
    return ZTest(z, 2 * _N.cdf(-abs(z)))


def diff_confint(x1: float, n1: float, x2: float, n2: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wald (unpooled) ``1 - alpha`` interval of ``p2 - p1``; ``(nan, nan)`` for an empty arm."""
    _check_counts(x1, n1, "control")
    _check_counts(x2, n2, "treatment")
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    p1, p2 = x1 / n1, x2 / n2
    half = _N.inv_cdf(1 - alpha / 2) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p2 - p1 - half, p2 - p1 + half


def min_sample_size(baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8,
                    ratio: float = 1.0) -> tuple[int, int]:
    """Trials (control, treatment) to detect ``baseline -> baseline * (1 + mde)`` with a two-sided test.

    ``ratio`` is treatment size / control size (0.25 for a 20% treatment). The usual
    normal-approximation formula for two proportions with unequal groups (Fleiss).
    """
    if not 0 < baseline < 1:
        raise ValueError(f"baseline rate must be in (0, 1), not {baseline}")
    if mde <= 0 or ratio <= 0 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"need mde > 0, ratio > 0, alpha and power in (0, 1): {mde}, {ratio}, {alpha}, {power}")
    p1, p2 = baseline, min(baseline * (1 + mde), 1 - 1e-9)
    pbar = (p1 + ratio * p2) / (1 + ratio)
    za, zb = _N.inv_cdf(1 - alpha / 2), _N.inv_cdf(power)
    root = za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
    n1 = math.ceil(root**2 / (p2 - p1) ** 2)
    return n1, math.ceil(ratio * n1)


def design_effect(successes: Sequence[float], trials: Sequence[float]) -> float:
    """Variance inflation of a pooled rate ``sum(x) / sum(n)`` when units (users) hold several trials.

    The user-clustered (ratio-estimator) variance over the binomial variance, at least 1:
    impressions are never treated as more informative than independent ones.
    """
    x, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    if x.shape != n.shape:
        raise ValueError(f"successes {x.shape} and trials {n.shape} differ in shape")
    return design_effect_of_sums(len(n), float(x.sum()), float(n.sum()), float((x * x).sum()), float((x * n).sum()),
                                 float((n * n).sum()))


def design_effect_of_sums(units: int, x: float, n: float, xx: float, xn: float, nn: float) -> float:
    """``design_effect`` from sums over the units of ``x``, ``n``, ``x * x``, ``x * n`` and ``n * n``
    (what a database aggregates), in exact rational arithmetic.

    With ``p = x / n``: the clustered variance ``sum((x_i - p n_i)^2) / n^2`` over the binomial
    ``p (1 - p) / n`` is ``(xx n^2 - 2 x n xn + x^2 nn) / (n x (n - x))``.
    """
    if units < 2 or n <= 0 or x <= 0 or x >= n:  # one unit, no trial, or a rate of 0 or 1: nothing to inflate
        return 1.0
    x, n, xx, xn, nn = (Fraction(v) for v in (x, n, xx, xn, nn))
    return max(1.0, float((xx * n * n - 2 * x * n * xn + x * x * nn) / (n * x * (n - x))))


@dataclass(frozen=True)
class ArmCounts:
    """One arm's outcome: ``successes`` of ``trials`` and their design effect."""

    successes: int
    trials: int
    design_effect: float = 1.0

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def effective_trials(self) -> float:
        return self.trials / max(self.design_effect, 1.0)

    @property
    def effective_successes(self) -> float:
        return (self.rate or 0.0) * self.effective_trials


def _required(control: ArmCounts, treatment: ArmCounts, mde: float, alpha: float, power: float,
              ratio: float) -> tuple[int, int] | None:
    baseline = control.rate if control.rate else (treatment.rate or 0.0)
    if not 0 < baseline < 1:
        return None
    return min_sample_size(baseline, mde, alpha, power, ratio)


def compare_ctr(control: ArmCounts, treatment: ArmCounts, *, alpha: float, mde: float, power: float,
                ratio: float) -> dict:
    """The z-test on effective sizes, its CI, the required size and the winner (JSON-able dict).

    ``winner`` is ``inconclusive`` until both arms reach the required effective size,
    then the better arm when ``pvalue < alpha``.
    """
    c, t = control, treatment
    test = two_proportion_ztest(c.effective_successes, c.effective_trials, t.effective_successes,
                                t.effective_trials)
    naive = two_proportion_ztest(c.successes, c.trials, t.successes, t.trials)
    low, high = diff_confint(c.effective_successes, c.effective_trials, t.effective_successes,
                             t.effective_trials, alpha)
    required = _required(c, t, mde, alpha, power, ratio)
    reached = required is not None and c.effective_trials >= required[0] and t.effective_trials >= required[1]
    winner = WINNER_INCONCLUSIVE
    if reached and test.pvalue < alpha:
        winner = ARM_TREATMENT if (t.rate or 0) > (c.rate or 0) else ARM_CONTROL
    diff = (t.rate - c.rate) if c.rate is not None and t.rate is not None else None
    return {
        "z": test.z, "pvalue": test.pvalue, "pvalue_unadjusted": naive.pvalue, "diff": diff,
        "ci_low": None if math.isnan(low) else low, "ci_high": None if math.isnan(high) else high,
        "confidence": 1 - alpha, "alpha": alpha, "mde": mde, "power": power,
        "required": None if required is None else {ARM_CONTROL: required[0], ARM_TREATMENT: required[1]},
        "effective": {ARM_CONTROL: c.effective_trials, ARM_TREATMENT: t.effective_trials},
        "design_effect": {ARM_CONTROL: c.design_effect, ARM_TREATMENT: t.design_effect},
        "sample_size_reached": reached, "winner": winner,
    }


__all__ = ["ArmCounts", "ZTest", "compare_ctr", "design_effect", "design_effect_of_sums", "diff_confint",
           "min_sample_size", "two_proportion_ztest"]
