"""Baselines with the ``score(users_df, products_df) -> (n, m)`` interface of HybridModel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import require_columns


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
