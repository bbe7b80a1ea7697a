"""Implicit ALS (the ``implicit`` package) as a served model family: a factor model whose user and item
vectors go through the same files, precompute and on-the-fly scoring as the hybrid's.

Score of user u for item i: ``user_factors[u] @ item_factors[i]``. Only users and products seen in
training have factors (no cold start): precompute and publish serve the known users only, and a
product first seen after training scores 0. On disk: ``model.npz`` (``user_ids``, ``item_ids``,
``user_factors``, ``item_factors``) and ``model.json`` (``recsys.families.files.save_arrays``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts import ArtifactStore
from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import require_columns
from recsys.families.matrix import positions, user_item_matrix
from recsys.families.base import ModelUnavailableError
from recsys.families.files import load_arrays, save_arrays
from recsys.families.vectors.scorer import VectorScorer, write_model_embeddings

FAMILY = "als"


class ALSModel:
    """Adapter for ``implicit.als.AlternatingLeastSquares`` (confidence = ``alpha * (1 + log(weight))``)."""

    served_as, cold_start_users = "vectors", False  # informational (metadata.json): code asks the family

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray, users: pd.Index, items: pd.Index,
                 info: dict | None = None):
        self.user_factors = np.asarray(user_factors, dtype=np.float32)
        self.item_factors = np.asarray(item_factors, dtype=np.float32)
        self.users, self.items, self.info = pd.Index(users), pd.Index(items), dict(info or {})

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, factors: int = 64, regularization: float = 0.05, iterations: int = 15,
            alpha: float = 10.0, seed: int = 42, threads: int = 0, info: dict | None = None) -> ALSModel:
        try:
            from implicit.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError as exc:
            raise ModelUnavailableError(f"the 'implicit' package is not installed ({exc}); "
                                        "pip install -r requirements.txt") from exc
        weight = frame["weight"].to_numpy(dtype=float) if "weight" in frame else np.ones(len(frame))
        confidence = 1.0 + np.log(np.maximum(weight, 1.0))
        matrix, users, items = user_item_matrix(frame, confidence)
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS threads would oversubscribe
            model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                            iterations=iterations, random_state=seed, num_threads=threads,
                                            calculate_training_loss=False)
            model.fit(matrix, show_progress=False)
        to_numpy = getattr(model, "to_cpu", lambda: model)()
        return cls(np.asarray(to_numpy.user_factors), np.asarray(to_numpy.item_factors), users, items, info)

    @property
    def dim(self) -> int:
        return int(self.item_factors.shape[1])

    @property
    def known_user_ids(self) -> np.ndarray:
        return self.users.to_numpy()

    def user_vectors(self, users_df: pd.DataFrame, value_segment: pd.Series | None = None) -> np.ndarray:
        """(n, dim) float32 factors per row of ``users_df``; zeros for a user unseen in training."""
        require_columns(users_df, (COL_USER,), "users")
        rows = positions(self.users, users_df[COL_USER])
        return (self.user_factors[np.maximum(rows, 0)] * (rows >= 0)[:, None]).astype(np.float32)

    def item_vectors(self, products: pd.DataFrame) -> np.ndarray:
        """(m, dim) float32 factors per row of ``products``; zeros for a product unseen in training."""
        rows = positions(self.items, products[COL_ITEM])
        return (self.item_factors[np.maximum(rows, 0)] * (rows >= 0)[:, None]).astype(np.float32)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        return self.user_vectors(users_df) @ self.item_vectors(products_df).T

    def scorer(self, products: pd.DataFrame, history=None) -> VectorScorer:
        return VectorScorer(products, self.item_vectors(products), self.user_vectors)

    def write_served(self, users: pd.DataFrame, products: pd.DataFrame, folder: Path) -> tuple[str, ...]:
        """The published vector files of the users it was trained on (no cold start) and every product."""
        return write_model_embeddings(self, users, products, folder)

    def save(self, store: ArtifactStore, model_id: str) -> dict[str, str]:
        arrays = {"user_ids": self.users.to_numpy(dtype=np.int64), "item_ids": self.items.to_numpy(dtype=np.int64),
                  "user_factors": self.user_factors, "item_factors": self.item_factors}
        return save_arrays(store, model_id, arrays, {"family": FAMILY, "info": self.info})

    @classmethod
    def load(cls, store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> ALSModel:
        arrays, meta = load_arrays(store, model_id, checksums, FAMILY)
        return cls(arrays["user_factors"], arrays["item_factors"], pd.Index(arrays["user_ids"]),
                   pd.Index(arrays["item_ids"]), meta.get("info"))
