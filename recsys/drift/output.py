"""Drift of the model's output: a new model's lists against the LIVE model's, as pure functions.

Inputs are mappings ``user_id -> recommended product ids, best first`` (only the top ``k`` count)
and ``product_id -> popularity`` (events in the trending window). Per model:

- ``coverage``: distinct products recommended / catalogue size;
- ``gini``: Gini of how often each catalogue product is recommended (zeros included): 0 when every
  product is recommended equally often, near 1 when a few products fill every list;
- ``top_share``: share of all recommendation slots taken by the ``TOP_PRODUCTS`` most recommended;
- ``avg_popularity``: mean popularity of the recommended products, over all slots.

Between the two: ``overlap_jaccard``, the mean over common users of the Jaccard index of their two
top-k sets, and ``concentration_jump``, the model that suddenly recommends the same products to
everyone: the new model's Gini exceeds the LIVE model's by at least ``gini_jump``
(``RECSYS_DRIFT_GINI_JUMP``), or its coverage falls by at least the fraction ``coverage_drop`` of
the LIVE model's (``RECSYS_DRIFT_COVERAGE_DROP``). The second test matters when the LIVE model
already concentrates its lists: a Gini over the whole catalogue is then close to 1 and cannot rise
by much, while the number of distinct products recommended still falls tenfold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from recsys.drift import stats

TOP_PRODUCTS = 20


def _check(lists: Mapping[int, Sequence[int]], k: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not lists:
        raise ValueError(f"{what}: no users' lists to measure")


def output_metrics(lists: Mapping[int, Sequence[int]], popularity: Mapping[int, float], catalog_size: int,
                   k: int) -> dict:
    """``{users, slots, coverage, gini, top_share, avg_popularity}`` of one model's lists."""
    _check(lists, k, "output metrics")
    counts = Counter(p for items in lists.values() for p in list(items)[:k])
    if catalog_size < len(counts):
        raise ValueError(f"catalog_size {catalog_size} is smaller than the {len(counts)} products recommended")
    slots = sum(counts.values())
    per_product = np.zeros(catalog_size)
    per_product[: len(counts)] = sorted(counts.values(), reverse=True)
    pops = [popularity.get(p, 0.0) * n for p, n in counts.items()]
    return {
        "users": len(lists),
        "slots": slots,
        "coverage": len(counts) / catalog_size,
        "gini": stats.gini(per_product),
        "top_share": float(per_product[:TOP_PRODUCTS].sum() / slots) if slots else 0.0,
        "avg_popularity": float(sum(pops) / slots) if slots else 0.0,
    }


def mean_jaccard(a: Mapping[int, Sequence[int]], b: Mapping[int, Sequence[int]], k: int) -> float | None:
    """Mean Jaccard index of the top-k sets of the users in both mappings (None: no common user)."""
    _check(a, k, "jaccard")
    values = []
    for user in a.keys() & b.keys():
        x, y = set(list(a[user])[:k]), set(list(b[user])[:k])
        if x | y:
            values.append(len(x & y) / len(x | y))
    return float(np.mean(values)) if values else None


def compare_outputs(new: Mapping[int, Sequence[int]], live: Mapping[int, Sequence[int]],
                    popularity: Mapping[int, float], catalog_size: int, k: int, gini_jump: float,
                    coverage_drop: float) -> dict:
    """Both models' metrics, their overlap, the Gini change, the coverage ratio and the concentration jump
    (``jump_reasons``: ``"gini"`` and/or ``"coverage"``)."""
    for name, value in (("gini_jump", gini_jump), ("coverage_drop", coverage_drop)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    new_m = output_metrics(new, popularity, catalog_size, k)
    live_m = output_metrics(live, popularity, catalog_size, k)
    change = new_m["gini"] - live_m["gini"]
    ratio = new_m["coverage"] / live_m["coverage"] if live_m["coverage"] else None  # None: LIVE's lists are empty
    dropped = ratio is not None and ratio <= 1 - coverage_drop
    reasons = [name for name, hit in (("gini", change >= gini_jump), ("coverage", dropped)) if hit]
    return {
        "k": k,
        "new": new_m,
        "live": live_m,
        "overlap_jaccard": mean_jaccard(new, live, k),
        "gini_change": change,
        "gini_jump_threshold": gini_jump,
        "coverage_ratio": ratio,
        "coverage_drop_threshold": coverage_drop,
        "jump_reasons": reasons,
        "concentration_jump": bool(reasons),
    }
