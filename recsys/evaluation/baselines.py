"""The simple baselines every model is compared with (not model families: nothing serves them), each with
``score(users_df, products_df) -> (n, m)`` (``recsys.evaluation.measure`` scores them through it):

- ``RandomModel``: uniform random scores, seeded per user.
- ``PopularityModel``: how many users interacted with each product in training (the same list for all).
- ``TrendingModel``: the production trending list (``recsys.ranking.popular_lists.trending``: event weights over
  the last ``days`` before the end of training, halved every ``days / 2`` days); products not trending are
  ordered by all-time popularity.

The model families (``recsys.families``) are compared through the same engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, MS_PER_DAY
from recsys.data.frames import require_columns
from recsys.families.base import ModelUnavailableError

__all__ = ["ModelUnavailableError", "PopularityModel", "RandomModel", "TrendingModel"]


class PopularityModel:
    """Scores every product by how many users interacted with it in the training window (same for all users)."""

    def __init__(self, counts: pd.Series):
        self.counts = counts.astype(float)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> PopularityModel:
        """``frame``: interaction rows (``user_id, product_id``); a product counts each user once."""
        require_columns(frame, (COL_USER, COL_ITEM), "training")
        pairs = frame[[COL_USER, COL_ITEM]].drop_duplicates()
        return cls(pairs[COL_ITEM].value_counts())

    def item_scores(self, products: pd.DataFrame) -> np.ndarray:
        require_columns(products, (COL_ITEM,), "products")
        return self.counts.reindex(products[COL_ITEM].to_numpy()).fillna(0.0).to_numpy(dtype=np.float32)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        require_columns(users_df, (COL_USER,), "users")
        items = self.item_scores(products_df)
        return np.broadcast_to(items, (len(users_df), len(items))).copy()


class RandomModel:
    """Uniform random scores; a user's scores depend only on (seed, user_id), not on the batch."""

    def __init__(self, seed: int = 42):
        self.seed = int(seed)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        require_columns(users_df, (COL_USER,), "users")
        require_columns(products_df, (COL_ITEM,), "products")
        out = np.empty((len(users_df), len(products_df)), dtype=np.float32)
        for row, user in enumerate(users_df[COL_USER].to_numpy()):
            out[row] = np.random.default_rng([self.seed, int(user)]).random(len(products_df))
        return out


class TrendingModel:
    """Recent trending first (production rule), then all-time popularity; the same list for every user."""

    def __init__(self, scores: pd.Series, days: int):
        self.scores, self.days = scores, days

    @classmethod
    def fit(cls, events: pd.DataFrame, frame: pd.DataFrame, days: int = 7, now_ms: int | None = None) -> TrendingModel:
        """``events``: training events; ``frame``: training interactions; ``now_ms``: end of training."""
        from recsys.ranking.popular_lists import trending

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
