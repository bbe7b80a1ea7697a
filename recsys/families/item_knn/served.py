"""A served item-kNN model: on-the-fly scoring and similar items over its memory-mapped neighbour files.

The files (``recsys.families.item_knn.files``) come from this node's cache (``embedding_cache``),
verified against the registry's checksums like a factor model's embeddings. ``NeighbourScores``
has the methods of ``ModelEmbeddings`` that serving uses, so tiers, re-ranking and reasons are the
same whatever family is LIVE:

- ``user_vector(user_id)``: the user's training history as a dense row over the trained products
  (None for a user unseen in training: the fallback tiers answer);
- ``score_user(vector, k, exclude)``: the sum of the neighbour rows of the user's products,
  weighted by the history (``history[u] @ S``, what precompute computes for a block of users);
- ``similar_items(product_id, k, exclude)``: the product's own neighbour row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.families.vectors.served import row_of, top_items
from recsys.families.vectors.files import EmbeddingsError
from recsys.families.item_knn.files import open_neighbour_folder


def _csr(arrays: dict[str, np.ndarray], prefix: str, rows: int, cols: int) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                         shape=(rows, cols), copy=False)


@dataclass(frozen=True)
class NeighbourScores:
    model_id: str
    user_ids: np.ndarray  # int64, strictly increasing: the users seen in training
    history: sp.csr_matrix  # (users, items) their training interactions
    item_ids: np.ndarray  # int64, strictly increasing: the products seen in training
    neighbours: sp.csr_matrix  # (items, items) top-k cosine neighbours per product

    @classmethod
    def from_arrays(cls, model_id: str, arrays: dict[str, np.ndarray]) -> NeighbourScores:
        users, items = np.asarray(arrays["user_ids"]), np.asarray(arrays["item_ids"])
        return cls(model_id, users, _csr(arrays, "history", len(users), len(items)), items,
                   _csr(arrays, "neighbour", len(items), len(items)))

    @classmethod
    def from_folder(cls, model_id: str, folder: Path) -> NeighbourScores:
        """The files of a local folder, memory-mapped read-only and checked."""
        return cls.from_arrays(model_id, open_neighbour_folder(folder))

    @property
    def dim(self) -> int:
        """Length of a user's history row (no Redis user embedding matches it: precompute writes none)."""
        return len(self.item_ids)

    def has_item(self, product_id: int) -> bool:
        return row_of(self.item_ids, product_id) is not None

    def user_vector(self, user_id: int) -> np.ndarray | None:
        i = row_of(self.user_ids, user_id)
        if i is None:
            return None
        return np.asarray(self.history[i].toarray()[0], dtype=np.float32)

    def score_user(self, vector: np.ndarray, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best products for a history row, best first, ``exclude`` left out."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise EmbeddingsError(f"history row has shape {vector.shape}, the model needs ({self.dim},)")
        rows = np.flatnonzero(vector)
        scores = np.asarray(vector[rows] @ self.neighbours[rows], dtype=np.float32).ravel() if len(rows) else \
            np.zeros(self.dim, dtype=np.float32)
        return top_items(self.item_ids, scores, k, exclude)

    def similar_items(self, product_id: int, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The product's neighbours by cosine; empty when the model does not know it."""
        i = row_of(self.item_ids, product_id)
        if i is None:
            return []
        row = self.neighbours[i]
        scores = np.full(self.dim, -np.inf)
        scores[row.indices] = row.data
        return top_items(self.item_ids, scores, k, set(exclude) | {product_id})
