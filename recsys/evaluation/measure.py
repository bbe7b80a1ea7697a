"""Rank the candidates of a split with one model and measure the lists.

Users are scored in blocks (memory bounded by ``BLOCK_CELLS`` scores); excluded
products get ``-inf`` (never recommended unless a user has fewer candidates than
the list is long). Ties are broken by a seeded random order of the products, so
a model that cannot tell products apart gets a random list rather than the
lowest ids. An optional ``rerank(users, columns, scores) -> list of rows`` reorders each
user's best ``candidates(depth)`` products (more when the re-ranker's ``candidates`` asks
for more), as precompute and serving do. AUC is measured on the model's scores over all
candidates (re-ranking changes order, not scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from recsys.evaluation import metrics as M
from recsys.evaluation.split import Split

BLOCK_CELLS = 2**23  # scores held at once (32 MiB of float32)
CURVE_DEPTH = 20  # curves at k = 1..CURVE_DEPTH
Rerank = Callable[[pd.DataFrame, np.ndarray, np.ndarray], list[np.ndarray]]


def candidates(depth: int) -> int:
    """How many best-scored products a re-ranker sees to fill a list of ``depth``."""
    return max(5 * depth, 100)


def _scorer(model, split: Split) -> Callable[[pd.DataFrame], np.ndarray]:
    """The block scores of ``model`` over the split's candidates: a family's model through its scorer
    (``recsys.families.base.Scorer``), a baseline (or any object) through ``score(users, products)``."""
    if hasattr(model, "scorer"):
        scorer = model.scorer(split.products, split.history)
        return lambda users: scorer.scores(scorer.block(users, split.segments))
    return lambda users: model.score(users, split.products)


def top_n(scores: np.ndarray, n: int, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of each row's ``n`` best scores, best first, ties in the order of ``order`` (a permutation)."""
    permuted = scores[:, order]
    part = np.argpartition(-permuted, n - 1, axis=1)[:, :n]
    part_scores = np.take_along_axis(permuted, part, axis=1)
    # ties: the earlier position in the permutation first
    best = np.lexsort((part, -part_scores), axis=1)
    cols = np.take_along_axis(part, best, axis=1)
    return order[cols], np.take_along_axis(part_scores, best, axis=1)


def _fill(rows: list[np.ndarray], cols: np.ndarray, depth: int) -> np.ndarray:
    """Each re-ranked row cut (or padded from ``cols`` in order) to exactly ``depth`` products."""
    out = np.empty((len(rows), depth), dtype=np.int64)
    for i, row in enumerate(rows):
        if len(row) < depth:
            row = np.concatenate([row, cols[i][~np.isin(cols[i], row)]])
        out[i] = row[:depth]
    return out


def rank(model, split: Split, depth: int, *, seed: int, groups: dict[str, np.ndarray] | None = None,
         rerank: Rerank | None = None, blocks: Callable[[Iterable], Iterable] = iter,
         with_auc: bool = True, block_size: int | None = None) -> tuple[np.ndarray, dict]:
    """``(top, auc)``: the (users x ``depth``) lists and the mean AUC overall (``"all"``) and per group
    (``None`` without ``with_auc``)."""
    n_users, n_items = len(split.users), len(split.products)
    if not 1 <= depth <= n_items:
        raise ValueError(f"list depth {depth} must be in [1, {n_items}]")
    score = _scorer(model, split)
    order = np.random.default_rng(seed).permutation(n_items)
    masks = {"all": np.ones(n_users, dtype=bool)} | dict(groups or {})
    auc_sums = dict.fromkeys(masks, 0.0)
    width = min(n_items, max(candidates(depth), getattr(rerank, "candidates", 0))) if rerank else depth
    block = max(1, min(block_size or BLOCK_CELLS, BLOCK_CELLS // n_items))
    tops = []
    for start in blocks(range(0, n_users, block)):
        stop = min(start + block, n_users)
        scores = np.array(score(split.users.iloc[start:stop]), dtype=np.float32)
        excluded = split.excluded[start:stop]
        rows = np.repeat(np.arange(stop - start), [len(x) for x in excluded])
        scores[rows, np.concatenate(excluded).astype(np.int64)] = -np.inf
        truth = split.truth[start:stop]
        for name, mask in masks.items() if with_auc else ():
            sub = np.flatnonzero(mask[start:stop])
            if sub.size:
                auc_sums[name] += M.auc([truth[i] for i in sub], scores[sub]) * sub.size
        cols, col_scores = top_n(scores, width, order)
        if rerank:
            cols = _fill(rerank(split.users.iloc[start:stop], cols, col_scores), cols, depth)
        tops.append(cols)
    auc = {name: float(auc_sums[name] / mask.sum()) if mask.sum() and with_auc else None
           for name, mask in masks.items()}
    return np.vstack(tops), auc


def list_metrics(truth: list[np.ndarray], top: np.ndarray, k: int) -> dict:
    return {
        f"precision@{k}": M.precision_at_k(truth, top, k),
        f"recall@{k}": M.recall_at_k(truth, top, k),
        f"ndcg@{k}": M.ndcg_at_k(truth, top, k),
        f"map@{k}": M.map_at_k(truth, top, k),
    }


def curves(truth: list[np.ndarray], top: np.ndarray, depth: int = CURVE_DEPTH) -> dict[str, list[float]]:
    """Precision, recall and NDCG at k = 1..depth."""
    ks = range(1, min(depth, top.shape[1]) + 1)
    return {
        "k": list(ks),
        "precision": [M.precision_at_k(truth, top, k) for k in ks],
        "recall": [M.recall_at_k(truth, top, k) for k in ks],
        "ndcg": [M.ndcg_at_k(truth, top, k) for k in ks],
    }


def measure(model, split: Split, k: int, *, seed: int, groups: dict[str, np.ndarray] | None = None,
            rerank: Rerank | None = None, with_curves: bool = True, with_auc: bool = True, blocks=iter,
            block_size: int | None = None, values_of: tuple[str, ...] = ()) -> dict:
    """Every metric of ``model`` on ``split`` at ``k``, the curves, and the metrics of each group: the one
    engine of the nightly gate, model selection, tuning, ``evaluate`` and the lab tools. ``values_of``
    (list metrics such as ``"ndcg@10"``) adds ``"per_user"``: those metrics' values per user of the split,
    from the same lists (the selection's bootstrap intervals)."""
    depth = min(max(k, CURVE_DEPTH if with_curves else k), len(split.products))
    top, auc = rank(model, split, depth, seed=seed, groups=groups, rerank=rerank, blocks=blocks, with_auc=with_auc,
                    block_size=block_size)
    categories = split.products["category"].astype(str).to_numpy()
    out = list_metrics(split.truth, top, k) | {
        "auc": auc["all"],
        "coverage": M.catalog_coverage(top, len(split.products), k),
        "diversity": M.intra_list_diversity(top, categories, k) if k > 1 else None,
        "novelty": M.novelty(top, split.item_popularity, k),
        "users": len(split.users),
    }
    if values_of:
        out["per_user"] = {metric: M.per_user(metric, split.truth, top) for metric in values_of}
    if with_curves:
        out["curves"] = curves(split.truth, top)
    out["groups"] = {}
    for name, mask in (groups or {}).items():
        rows = np.flatnonzero(mask)
        if rows.size:
            sub = [split.truth[i] for i in rows]
            out["groups"][name] = list_metrics(sub, top[rows], k) | {"auc": auc[name], "users": int(rows.size)}
    return out


def evaluate_model(model, split: Split, k: int = 10, block_size: int | None = None, *, seed: int = 42,
                   rerank: Rerank | None = None) -> dict:
    """``measure`` at ``k`` without curves or groups (the nightly gate's metrics of one model)."""
    if not 1 <= k < len(split.products):
        raise ValueError(f"k must be in [1, {len(split.products)}) for a catalogue of {len(split.products)} "
                         f"products, got {k}")
    if len(split.users) == 0:
        raise ValueError("the evaluation split has no users")
    out = measure(model, split, k, seed=seed, rerank=rerank, with_curves=False, block_size=block_size)
    out.pop("groups", None)
    return out
