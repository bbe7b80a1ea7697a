"""Distances between two distributions and concentration of a list of counts: pure functions.

Every function takes plain counts (one array per distribution, same order of values),
checks them at the boundary with a ``ValueError`` and returns a float.

- ``psi``: population stability index, ``sum((p - q) * ln(p / q))`` over the values, with
  ``p``/``q`` the current/reference shares after adding ``PSEUDO_COUNT`` to every count (so a
  value absent on one side has a finite term). Usual reading: < 0.1 stable, 0.1-0.25 moderate,
  > 0.25 large.
- ``js_distance``: Jensen-Shannon distance (square root of the divergence, base 2), in [0, 1].
- ``chi2_p_value``: p-value of the chi-square test of homogeneity of the two count vectors.
- ``ks_p_value``: two-sample Kolmogorov-Smirnov test of two integer histograms.
- ``gini``: Gini coefficient of non-negative counts (0 = all equal, -> 1 = one value takes all).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

PSEUDO_COUNT = 0.5


def _pair(current, reference) -> tuple[np.ndarray, np.ndarray]:
    cur, ref = np.asarray(current, dtype=float), np.asarray(reference, dtype=float)
    if cur.ndim != 1 or cur.shape != ref.shape or cur.size == 0:
        raise ValueError(f"two 1-d count vectors of the same non-zero length are needed, got {cur.shape}, {ref.shape}")
    if not (np.isfinite(cur).all() and np.isfinite(ref).all()) or (cur < 0).any() or (ref < 0).any():
        raise ValueError("counts must be finite and non-negative")
    if cur.sum() == 0 or ref.sum() == 0:
        raise ValueError("each distribution needs at least one count")
    return cur, ref


def shares(counts, pseudo_count: float = 0.0) -> np.ndarray:
    """``(counts + pseudo_count) / total``."""
    c = np.asarray(counts, dtype=float) + pseudo_count
    return c / c.sum()


def psi(current, reference) -> float:
    cur, ref = _pair(current, reference)
    p, q = shares(cur, PSEUDO_COUNT), shares(ref, PSEUDO_COUNT)
    return float(np.sum((p - q) * np.log(p / q)))


def js_distance(current, reference) -> float:
    cur, ref = _pair(current, reference)
    return float(jensenshannon(shares(cur), shares(ref), base=2))


def chi2_p_value(current, reference) -> float:
    """1.0 when fewer than two values are seen (nothing can differ)."""
    cur, ref = _pair(current, reference)
    seen = (cur + ref) > 0
    if seen.sum() < 2:
        return 1.0
    _, p_value, _, _ = stats.chi2_contingency(np.vstack([cur[seen], ref[seen]]), correction=False)
    return float(p_value)


def ks_p_value(current_hist: dict[int, int], reference_hist: dict[int, int]) -> float:
    """KS test of two histograms ``{value: how many}`` (e.g. users by their number of events)."""
    samples = []
    for hist in (current_hist, reference_hist):
        if not hist or sum(hist.values()) == 0:
            raise ValueError("each histogram needs at least one count")
        if any(n < 0 for n in hist.values()):
            raise ValueError("histogram counts must be non-negative")
        values = np.fromiter(hist.keys(), dtype=float, count=len(hist))
        samples.append(np.repeat(values, np.fromiter(hist.values(), dtype=np.int64, count=len(hist))))
    return float(stats.ks_2samp(samples[0], samples[1]).pvalue)


def gini(counts) -> float:
    """Gini of ``counts`` (e.g. how often each catalogue product is recommended, zeros included)."""
    x = np.asarray(counts, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"counts must be a non-empty 1-d array, got shape {x.shape}")
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("counts must be finite and non-negative")
    total = x.sum()
    if total == 0:
        return 0.0
    x = np.sort(x)
    n = x.size
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * total))
