"""A served model's embeddings: on-the-fly scoring and similar items, over memory-mapped files.

A published model's ``.npy`` files (``recsys.families.vectors.files``) are downloaded
once per node into ``<var_dir>/embeddings/<model_id>/`` (``embedding_cache``) and
mapped read-only after their SHA-256 matched the registry's record, so every worker of the node shares one copy in the page cache
and only the pages a request touches are resident. Ids are found with
``np.searchsorted`` on the sorted id arrays (no per-worker dict). A model published
by an earlier version (one ``embeddings.npz``) is read whole into memory, as before.

The score of user u for item i is ``user_vectors[u] @ item_vectors[i]``. Item
similarity is the cosine of the item embeddings without the bias column, computed
per query from ``item_norms``. Items never seen in training have vectors from their
features (hybrid), so new products are scored too. An item-kNN model is published as a
neighbour matrix instead; ``load_embeddings`` returns a ``recsys.families.item_knn.served.NeighbourScores``
for it, with the same methods.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.families.vectors.files import (
    LEGACY_FILE, EmbeddingsError, arrays_from_npz, body_norms, check_arrays, check_increasing, open_folder,
)

__all__ = ["EmbeddingsError", "ModelEmbeddings", "top_items"]


def row_of(ids: np.ndarray, key) -> int | None:
    """Position of ``key`` in the strictly increasing ``ids``, None when absent."""
    try:
        key = operator.index(key)
    except TypeError:
        return None
    i = int(np.searchsorted(ids, key))
    return i if i < len(ids) and int(ids[i]) == key else None


def top_items(item_ids: np.ndarray, scores: np.ndarray, k: int,
              exclude: Collection[int]) -> list[tuple[int, float]]:
    """The ``k`` best ``(item id, score)`` of ``scores`` (one per ``item_ids``), best first, ``exclude`` left out."""
    scores = scores.astype(np.float64, copy=True)
    for pid in exclude:
        i = row_of(item_ids, pid)
        if i is not None:
            scores[i] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(item_ids[i]), float(scores[i])) for i in top]


@dataclass(frozen=True)
class ModelEmbeddings:
    model_id: str
    user_ids: np.ndarray  # int64, strictly increasing
    user_vectors: np.ndarray  # float32 (users, dim), row i belongs to user_ids[i]
    item_ids: np.ndarray  # int64, strictly increasing
    item_vectors: np.ndarray  # float32 (items, dim)
    item_norms: np.ndarray  # float32 L2 norm of each item vector without the bias column

    @classmethod
    def from_arrays(cls, model_id: str, user_ids, user_vectors, item_ids, item_vectors) -> ModelEmbeddings:
        """In memory, from arrays in any order (sorted by id here; duplicated ids are refused)."""
        arrays = {}
        for side, ids, vectors in (("user", user_ids, user_vectors), ("item", item_ids, item_vectors)):
            ids, vectors = np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or len(ids) != len(vectors):
                raise EmbeddingsError(f"{side}_vectors {vectors.shape} do not match {len(ids)} {side}_ids")
            order = np.argsort(ids, kind="stable")
            arrays[f"{side}_ids"], arrays[f"{side}_vectors"] = ids[order], vectors[order]
            check_increasing(arrays[f"{side}_ids"], f"{side}_ids of {model_id}")
        check_arrays(arrays, model_id)
        return cls(model_id=model_id, item_norms=body_norms(arrays["item_vectors"]), **arrays)

    @classmethod
    def from_npz(cls, model_id: str, data: bytes) -> ModelEmbeddings:
        """A legacy ``embeddings.npz`` read whole."""
        return cls.from_arrays(model_id, **arrays_from_npz(data, f"{LEGACY_FILE} of {model_id}"))

    @classmethod
    def from_folder(cls, model_id: str, folder: Path) -> ModelEmbeddings:
        """The files of a local folder, memory-mapped read-only (plain ndarray views of the maps)."""
        arrays = open_folder(folder)
        return cls(model_id=model_id, **{name: np.asarray(a) for name, a in arrays.items()})

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def has_item(self, product_id: int) -> bool:
        return row_of(self.item_ids, product_id) is not None

    def user_vector(self, user_id: int) -> np.ndarray | None:
        i = row_of(self.user_ids, user_id)
        return None if i is None else np.array(self.user_vectors[i])

    def _top(self, scores: np.ndarray, k: int, exclude: Collection[int]) -> list[tuple[int, float]]:
        return top_items(self.item_ids, scores, k, exclude)

    def score_user(self, vector: np.ndarray, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best items for a user vector, best first, ``exclude`` left out."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise EmbeddingsError(f"user vector has shape {vector.shape}, the model needs ({self.dim},)")
        return self._top(self.item_vectors @ vector, k, exclude)

    def similar_items(self, product_id: int, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """Items closest to ``product_id`` by cosine; empty when the model does not know it."""
        i = row_of(self.item_ids, product_id)
        if i is None:
            return []
        query = np.array(self.item_vectors[i], dtype=np.float32)
        if self.dim > 1:
            query[-1] = 0.0  # the bias column takes no part in the cosine
        dots = self.item_vectors @ query
        denom = self.item_norms * self.item_norms[i]
        cosine = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
        return self._top(cosine, k, set(exclude) | {product_id})
