"""In-process A/A and A/B repetitions through the statistics of ``results`` (fast, no API).

Each repetition is a new test id (a fresh hash split of the same shoppers), a number
of impressions per shopper (``1 + Poisson``) and clicked impressions drawn from each
shopper's true probability of clicking the list its arm's model shows; then the
design effects and ``compare_ctr`` exactly as ``results.summarize`` computes them.
An A/A test (both arms the same lists) must be called significant in about ``alpha``
of the repetitions; a truly better treatment should win most of them.
"""

from __future__ import annotations

import numpy as np

from recsys.serving.assignment import assign_arm
from recsys.abtest.stats import ArmCounts, compare_ctr, design_effect
from recsys.constants import ARM_TREATMENT, WINNER_INCONCLUSIVE


def list_ctr(shoppers, user_ids, lists: dict[int, list[int]]) -> np.ndarray:
    """Each shopper's true probability of clicking at least one item of their list."""
    return np.array([shoppers.expected_ctr(u, lists[u]) for u in user_ids])


def one_repetition(rng: np.random.Generator, test_id: int, user_ids: np.ndarray, ctr: dict[str, np.ndarray],
                   *, fraction: float, visits_mean: float, rules: dict) -> dict:
    """One simulated test: the arms' counts and ``compare_ctr``'s verdict."""
    arms = np.array([assign_arm(test_id, int(u), fraction) == ARM_TREATMENT for u in user_ids])
    n = 1 + rng.poisson(visits_mean - 1, size=len(user_ids)) if visits_mean > 1 else np.ones(len(user_ids), int)
    p = np.where(arms, ctr["treatment"], ctr["control"])
    x = rng.binomial(n, p)
    counts = {}
    for name, mask in (("control", ~arms), ("treatment", arms)):
        counts[name] = ArmCounts(int(x[mask].sum()), int(n[mask].sum()), design_effect(x[mask], n[mask]))
    out = compare_ctr(counts["control"], counts["treatment"], ratio=fraction / (1 - fraction), **rules)
    naive = compare_ctr(ArmCounts(counts["control"].successes, counts["control"].trials),
                        ArmCounts(counts["treatment"].successes, counts["treatment"].trials),
                        ratio=fraction / (1 - fraction), **rules)
    return {"pvalue": out["pvalue"], "pvalue_unadjusted": out["pvalue_unadjusted"], "winner": out["winner"],
            "naive_winner": naive["winner"], "reached": out["sample_size_reached"]}


def repeat(shoppers, user_ids, lists: dict[str, dict[int, list[int]]], *, repetitions: int, fraction: float = 0.5,
           visits_mean: float = 4.0, alpha: float = 0.05, mde: float = 0.1, power: float = 0.8,
           seed: int = 0) -> dict:
    """Repeat a test ``repetitions`` times; rates of significance (adjusted and naive) and of winners."""
    user_ids = np.asarray(user_ids)
    ctr = {arm: list_ctr(shoppers, user_ids, arm_lists) for arm, arm_lists in lists.items()}
    rules = {"alpha": alpha, "mde": mde, "power": power}
    rng = np.random.default_rng(seed)
    runs = [one_repetition(rng, 10_000 + i, user_ids, ctr, fraction=fraction, visits_mean=visits_mean, rules=rules)
            for i in range(repetitions)]
    p = np.array([r["pvalue"] for r in runs])
    naive = np.array([r["pvalue_unadjusted"] for r in runs])
    return {"repetitions": repetitions, "users": len(user_ids), "alpha": alpha,
            "true_ctr": {arm: float(v.mean()) for arm, v in ctr.items()},
            "significant_rate": float((p < alpha).mean()),
            "significant_rate_unadjusted": float((naive < alpha).mean()),
            "winner_rate": float(np.mean([r["winner"] != WINNER_INCONCLUSIVE for r in runs])),
            "naive_winner_rate": float(np.mean([r["naive_winner"] != WINNER_INCONCLUSIVE for r in runs])),
            "treatment_win_rate": float(np.mean([r["winner"] == ARM_TREATMENT for r in runs])),
            "reached_rate": float(np.mean([r["reached"] for r in runs]))}
