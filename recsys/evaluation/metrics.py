"""Ranking metrics as pure functions of (truth, predictions or scores, k).

- ``truth``: one array-like of relevant item indices per user (duplicates ignored);
  every user must have at least one relevant item.
- ``predictions``: int array (n_users, >= k) of item indices, best first, no repeats in a row.
- ``scores``: float array (n_users, n_items); a non-finite score marks an item that
  is not a candidate for that user (e.g. already bought) and is ignored.

Every metric returns the mean over users; ``*_per_user`` (and ``per_user``) the value of each user. Wrong shapes or values raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _check_predictions(predictions, k: int) -> np.ndarray:
    _check_k(k)
    pred = np.asarray(predictions)
    if pred.ndim != 2 or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"predictions must be a 2-D integer array, got shape {pred.shape} dtype {pred.dtype}")
    if pred.shape[1] < k:
        raise ValueError(f"predictions have {pred.shape[1]} columns, fewer than k={k}")
    top = pred[:, :k]
    if top.size and top.min() < 0:
        raise ValueError("predictions contain negative item indices")
    ordered = np.sort(top, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ValueError("a predictions row repeats an item within the top k")
    return top


def _truth_codes(truth: Sequence, n_users: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ``user * width + item`` codes of the truth, and relevant-item counts per user."""
    if len(truth) != n_users:
        raise ValueError(f"truth has {len(truth)} users, predictions/scores have {n_users}")
    items = [np.asarray(t, dtype=np.int64).ravel() for t in truth]
    lens = np.array([len(t) for t in items], dtype=np.int64)
    flat = np.concatenate(items) if items else np.empty(0, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= width):
        raise ValueError(f"truth item indices must be in [0, {width})")
    codes = np.unique(np.repeat(np.arange(n_users, dtype=np.int64), lens) * width + flat)
    n_relevant = np.bincount(codes // width, minlength=n_users) if n_users else np.zeros(0, np.int64)
    if np.any(n_relevant == 0):
        raise ValueError("every user needs at least one relevant item (drop users without any)")
    return codes, n_relevant


def _hits(truth: Sequence, predictions, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n_users, k) hit matrix and relevant-item counts per user."""
    top = _check_predictions(predictions, k)
    if top.shape[0] == 0:
        raise ValueError("no users to evaluate")
    width = int(max(top.max(), max((np.max(t) for t in truth if len(t)), default=0))) + 1
    codes, n_relevant = _truth_codes(truth, top.shape[0], width)
    pred_codes = np.arange(top.shape[0], dtype=np.int64)[:, None] * width + top
    return np.isin(pred_codes, codes), n_relevant


def precision_per_user(truth: Sequence, predictions, k: int) -> np.ndarray:
    hits, _ = _hits(truth, predictions, k)
    return hits.sum(axis=1) / k


def recall_per_user(truth: Sequence, predictions, k: int) -> np.ndarray:
    hits, n_relevant = _hits(truth, predictions, k)
    return hits.sum(axis=1) / n_relevant


def ndcg_per_user(truth: Sequence, predictions, k: int) -> np.ndarray:
    """Binary-relevance NDCG: DCG of the top k over the DCG of a perfect top k."""
    hits, n_relevant = _hits(truth, predictions, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return (hits @ discounts) / ideal


def map_per_user(truth: Sequence, predictions, k: int) -> np.ndarray:
    """Average precision: sum of precision@j at each hit j, over min(|relevant|, k)."""
    hits, n_relevant = _hits(truth, predictions, k)
    precision_at_j = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision_at_j * hits).sum(axis=1) / np.minimum(n_relevant, k)


PER_USER = {"precision": precision_per_user, "recall": recall_per_user, "ndcg": ndcg_per_user, "map": map_per_user}


def per_user(metric: str, truth: Sequence, predictions) -> np.ndarray:
    """The values of a list metric named ``name@k`` (precision, recall, ndcg, map), one per user."""
    name, _, k = metric.partition("@")
    if name not in PER_USER or not k.isdigit():
        raise ValueError(f"not a per-user list metric: {metric!r} (one of {sorted(PER_USER)} @k)")
    return PER_USER[name](truth, predictions, int(k))


def precision_at_k(truth: Sequence, predictions, k: int) -> float:
    return float(precision_per_user(truth, predictions, k).mean())


def recall_at_k(truth: Sequence, predictions, k: int) -> float:
    return float(recall_per_user(truth, predictions, k).mean())


def ndcg_at_k(truth: Sequence, predictions, k: int) -> float:
    """Binary-relevance NDCG: DCG of the top k over the DCG of a perfect top k."""
    return float(ndcg_per_user(truth, predictions, k).mean())


def map_at_k(truth: Sequence, predictions, k: int) -> float:
    """Mean average precision: sum of precision@j at each hit j, over min(|relevant|, k)."""
    return float(map_per_user(truth, predictions, k).mean())


def auc(truth: Sequence, scores) -> float:
    """Per-user ROC AUC (probability a relevant item outscores a non-relevant candidate; ties count 1/2), averaged."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] == 0:
        raise ValueError(f"scores must be a non-empty 2-D array, got shape {s.shape}")
    codes, _ = _truth_codes(truth, s.shape[0], s.shape[1])
    rows, items = np.divmod(codes, s.shape[1])
    if not np.all(np.isfinite(s[rows, items])):
        raise ValueError("a relevant item has a non-finite score (it must be a candidate)")
    bounds = np.searchsorted(rows, np.arange(s.shape[0] + 1))
    values = np.empty(s.shape[0])
    for u in range(s.shape[0]):
        row = s[u]
        negative = np.isfinite(row)
        pos_items = items[bounds[u] : bounds[u + 1]]
        negative[pos_items] = False
        neg = row[negative]
        if neg.size == 0:
            raise ValueError(f"user row {u} has no non-relevant candidate items")
        pos = row[pos_items][:, None]
        values[u] = ((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size)
    return float(values.mean())


def catalog_coverage(predictions, n_items: int, k: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one top-k list."""
    top = _check_predictions(predictions, k)
    if n_items < 1:
        raise ValueError(f"n_items must be positive, got {n_items}")
    if top.size and top.max() >= n_items:
        raise ValueError(f"predictions name item {top.max()}, beyond n_items={n_items}")
    return float(np.unique(top).size / n_items)


def intra_list_diversity(predictions, item_categories, k: int) -> float:
    """Mean share of item pairs within a top-k list whose categories differ."""
    top = _check_predictions(predictions, k)
    if k < 2:
        raise ValueError("intra-list diversity needs k >= 2")
    cats = np.asarray(item_categories)
    if cats.ndim != 1 or (top.size and top.max() >= cats.size):
        raise ValueError("item_categories must be 1-D with an entry for every predicted item")
    _, codes = np.unique(cats, return_inverse=True)
    c = codes[top]
    differ = c[:, :, None] != c[:, None, :]
    return float((differ.sum(axis=(1, 2)) / (k * (k - 1))).mean())


def novelty(predictions, item_popularity, k: int) -> float:
    """Mean self-information ``-log2 p(item)`` of recommended items; ``p`` in (0, 1] per item."""
    top = _check_predictions(predictions, k)
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1 or (top.size and top.max() >= pop.size):
        raise ValueError("item_popularity must be 1-D with an entry for every predicted item")
    p = pop[top]
    if np.any(~(p > 0) | (p > 1)):
        raise ValueError("popularity of a recommended item must be in (0, 1]")
    return float((-np.log2(p)).mean())
