"""Benchmark baselines with the ``score(users_df, products_df) -> (n, m)`` interface of HybridModel.

- ``TrendingModel``: the production trending list (``recsys.pipeline.lists.trending``:
  event weights over the last ``days`` before the end of training, halved every
  ``days / 2`` days); products not trending are ordered by all-time popularity.
- ``ItemKNNModel``: item-item cosine similarity of co-occurrence (two products bought
  by the same users), each product keeping its ``neighbours`` most similar ones; a
  user's score for a product is the sum of its similarities to the user's products.
- ``ALSModel``: implicit-feedback ALS of the ``implicit`` package; ``ModelUnavailableError`` when it
  is missing.

``ItemKNNModel`` and ``ALSModel`` are the served families' own classes (``recsys.families.item_knn.model``,
``recsys.families.als.model``), so what is evaluated is what the pipeline trains and serves.

Users or products unseen in training score 0 (these models have no cold start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, MS_PER_DAY
from recsys.evaluation.popularity import PopularityModel
from recsys.families.als.model import ALSModel, ModelUnavailableError
from recsys.data.frames import require_columns
from recsys.families.matrix import top_per_row
from recsys.families.item_knn.model import ItemKNNModel

__all__ = ["ALSModel", "ItemKNNModel", "ModelUnavailableError", "TrendingModel", "top_per_row"]


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
