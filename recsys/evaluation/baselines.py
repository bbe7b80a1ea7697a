"""Benchmark baselines with the ``score(users_df, products_df) -> (n, m)`` interface of HybridModel.

- ``TrendingModel``: the production trending list (``recsys.pipeline.lists.trending``:
  event weights over the last ``days`` before the end of training, halved every
  ``days / 2`` days); products not trending are ordered by all-time popularity.
- ``ItemKNNModel``: item-item cosine similarity of co-occurrence (two products bought
  by the same users), each product keeping its ``neighbours`` most similar ones; a
  user's score for a product is the sum of its similarities to the user's products.
- ``ALSModel``: implicit-feedback ALS of the ``implicit`` package (an extra benchmark
  dependency, ``requirements-bench.txt``); ``ModelUnavailableError`` when it is missing.

Users or products unseen in training score 0 (these models have no cold start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, MS_PER_DAY
from recsys.evaluation.popularity import PopularityModel
from recsys.model.features import require_columns


class ModelUnavailableError(RuntimeError):
    """A benchmark model cannot run here (e.g. its optional package is not installed)."""


def _positions(index: pd.Index, ids) -> np.ndarray:
    return index.get_indexer(pd.Index(np.asarray(ids)))


def _user_item_matrix(frame: pd.DataFrame,
                      values: np.ndarray | None = None) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    """(users x items) CSR of ``frame`` (binary unless ``values``), with its user and item indexes."""
    require_columns(frame, (COL_USER, COL_ITEM), "training")
    if frame.empty:
        raise ValueError("no training interactions")
    users, items = pd.Index(np.unique(frame[COL_USER])), pd.Index(np.unique(frame[COL_ITEM]))
    rows, cols = _positions(users, frame[COL_USER]), _positions(items, frame[COL_ITEM])
    data = np.ones(len(frame), dtype=np.float32) if values is None else np.asarray(values, dtype=np.float32)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    mat.sum_duplicates()
    if values is None:
        mat.data[:] = 1.0
    return mat, users, items


def _gather(item_scores: np.ndarray, items: pd.Index, products: pd.DataFrame) -> np.ndarray:
    """Columns of ``item_scores`` (one per ``items``) in ``products`` order; unknown products score 0."""
    cols = _positions(items, products[COL_ITEM])
    out = np.zeros((item_scores.shape[0], len(cols)), dtype=np.float32)
    known = cols >= 0
    out[:, known] = item_scores[:, cols[known]]
    return out


class TrendingModel:
    """Recent trending first (production rule), then all-time popularity; the same list for every user."""

    def __init__(self, scores: pd.Series, days: int):
        self.scores, self.days = scores, days

    @classmethod
    def fit(cls, events: pd.DataFrame, frame: pd.DataFrame, days: int = 7, now_ms: int | None = None) -> TrendingModel:
        """``events``: training events; ``frame``: training interactions; ``now_ms``: end of training."""
        from recsys.pipeline.lists import trending

        require_columns(events, (COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP), "events")
        if days < 1:
            raise ValueError(f"trending days must be >= 1, got {days}")
        end = int(events[COL_TIMESTAMP].max()) + 1 if now_ms is None else now_ms
        recent = events[(events[COL_TIMESTAMP] < end) & (events[COL_TIMESTAMP] >= end - days * MS_PER_DAY)]
        counts = (recent.assign(age_days=(end - 1 - recent[COL_TIMESTAMP]) // MS_PER_DAY)
                  .groupby([COL_ITEM, COL_EVENT_TYPE, "age_days"]).size().rename("events").reset_index())
        popularity = PopularityModel.fit(frame).counts
        catalog = pd.DataFrame({COL_ITEM: popularity.index, "in_stock": True})
        top = trending(counts, catalog, days, limit=len(catalog)).set_index(COL_ITEM)["score"]
        rank = top.rank(method="dense").reindex(popularity.index).fillna(0.0)  # 0 = not trending
        return cls(rank * (popularity.max() + 1.0) + popularity, days)  # lexicographic: trend rank, popularity

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        require_columns(users_df, (COL_USER,), "users")
        items = self.scores.reindex(products_df[COL_ITEM].to_numpy()).fillna(0.0).to_numpy(dtype=np.float32)
        return np.broadcast_to(items, (len(users_df), len(items))).copy()


def top_per_row(mat: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties: the smaller column)."""
    coo = mat.tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows = coo.row[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = order[(np.arange(len(order)) - starts) < n]
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=mat.shape)


class ItemKNNModel:
    """Co-occurrence cosine item-kNN: ``score(u, j) = sum_{i in history(u)} sim(i, j)``."""

    def __init__(self, history: sp.csr_matrix, similarity: sp.csr_matrix, users: pd.Index, items: pd.Index):
        self.history, self.similarity, self.users, self.items = history, similarity, users, items

    @classmethod
    def fit(cls, frame: pd.DataFrame, neighbours: int = 100) -> ItemKNNModel:
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        history, users, items = _user_item_matrix(frame)
        co = (history.T @ history).tocsr()
        norms = np.sqrt(co.diagonal())
        co.setdiag(0.0)
        co.eliminate_zeros()
        inv = sp.diags(1.0 / np.maximum(norms, 1e-12))
        cosine = sp.csr_matrix(inv @ co @ inv, dtype=np.float32)
        return cls(history, top_per_row(cosine, neighbours), users, items)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        require_columns(users_df, (COL_USER,), "users")
        rows = _positions(self.users, users_df[COL_USER])
        picked = self.history[np.maximum(rows, 0)].multiply((rows >= 0)[:, None].astype(np.float32)).tocsr()
        return _gather((picked @ self.similarity).toarray(), self.items, products_df)


class ALSModel:
    """Adapter for ``implicit.als.AlternatingLeastSquares`` (confidence = ``alpha * (1 + log(weight))``)."""

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray, users: pd.Index, items: pd.Index):
        self.user_factors, self.item_factors, self.users, self.items = user_factors, item_factors, users, items

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, factors: int = 64, regularization: float = 0.05, iterations: int = 15,
            alpha: float = 10.0, seed: int = 42, threads: int = 0) -> ALSModel:
        try:
            from implicit.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError as exc:
            raise ModelUnavailableError(f"the 'implicit' package is not installed ({exc}); "
                                        "pip install -r requirements-bench.txt") from exc
        weight = frame["weight"].to_numpy(dtype=float) if "weight" in frame else np.ones(len(frame))
        confidence = 1.0 + np.log(np.maximum(weight, 1.0))
        matrix, users, items = _user_item_matrix(frame, confidence)
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS threads would oversubscribe
            model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                            iterations=iterations, random_state=seed, num_threads=threads,
                                            calculate_training_loss=False)
            model.fit(matrix, show_progress=False)
        to_numpy = getattr(model, "to_cpu", lambda: model)()
        return cls(np.asarray(to_numpy.user_factors), np.asarray(to_numpy.item_factors), users, items)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        require_columns(users_df, (COL_USER,), "users")
        rows = _positions(self.users, users_df[COL_USER])
        vectors = self.user_factors[np.maximum(rows, 0)] * (rows >= 0)[:, None]
        return _gather(vectors @ self.item_factors.T, self.items, products_df)
