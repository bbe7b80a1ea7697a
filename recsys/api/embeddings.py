"""The LIVE model's embeddings held in memory: on-the-fly scoring and similar items.

``models/<model_id>/embeddings.npz`` (written by publish) holds ``user_ids``,
``user_vectors``, ``item_ids``, ``item_vectors``; the score of user u for item i
is ``user_vectors[u] @ item_vectors[i]``. Item similarity is the cosine of the
item embeddings without the bias column. Items never seen in training have
vectors from their features (hybrid), so new products are scored too.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from recsys.artifacts import ArtifactStore, model_key

EMBEDDINGS_FILE = "embeddings.npz"


class EmbeddingsError(ValueError):
    """An embeddings file that does not have the documented arrays."""


@dataclass(frozen=True)
class ModelEmbeddings:
    model_id: str
    user_ids: np.ndarray
    user_vectors: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    item_unit: np.ndarray  # L2-normalised item embeddings without the bias column
    user_index: dict[int, int]
    item_index: dict[int, int]

    @classmethod
    def from_arrays(cls, model_id: str, user_ids, user_vectors, item_ids, item_vectors) -> ModelEmbeddings:
        user_ids, item_ids = np.asarray(user_ids, dtype=np.int64), np.asarray(item_ids, dtype=np.int64)
        user_vectors = np.asarray(user_vectors, dtype=np.float32)
        item_vectors = np.asarray(item_vectors, dtype=np.float32)
        if item_vectors.ndim != 2 or len(item_ids) != len(item_vectors):
            raise EmbeddingsError(f"item_vectors {item_vectors.shape} do not match {len(item_ids)} item_ids")
        if user_vectors.ndim != 2 or len(user_ids) != len(user_vectors):
            raise EmbeddingsError(f"user_vectors {user_vectors.shape} do not match {len(user_ids)} user_ids")
        if len(user_ids) and user_vectors.shape[1] != item_vectors.shape[1]:
            raise EmbeddingsError(f"user dim {user_vectors.shape[1]} != item dim {item_vectors.shape[1]}")
        emb = item_vectors[:, :-1] if item_vectors.shape[1] > 1 else item_vectors
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        unit = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
        return cls(model_id=model_id, user_ids=user_ids, user_vectors=user_vectors, item_ids=item_ids,
                   item_vectors=item_vectors, item_unit=unit,
                   user_index={int(u): i for i, u in enumerate(user_ids)},
                   item_index={int(p): i for i, p in enumerate(item_ids)})

    @classmethod
    def from_npz(cls, model_id: str, data: bytes) -> ModelEmbeddings:
        with np.load(io.BytesIO(data)) as npz:
            missing = {"user_ids", "user_vectors", "item_ids", "item_vectors"} - set(npz.files)
            if missing:
                raise EmbeddingsError(f"{EMBEDDINGS_FILE} of {model_id} lacks {sorted(missing)}")
            return cls.from_arrays(model_id, npz["user_ids"], npz["user_vectors"], npz["item_ids"],
                                   npz["item_vectors"])

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def user_vector(self, user_id: int) -> np.ndarray | None:
        i = self.user_index.get(user_id)
        return None if i is None else self.user_vectors[i]

    def _top(self, scores: np.ndarray, k: int, exclude: Collection[int]) -> list[tuple[int, float]]:
        scores = scores.astype(np.float64, copy=True)
        for pid in exclude:
            i = self.item_index.get(pid)
            if i is not None:
                scores[i] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.item_ids[i]), float(scores[i])) for i in top]

    def score_user(self, vector: np.ndarray, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``k`` best items for a user vector, best first, ``exclude`` left out."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise EmbeddingsError(f"user vector has shape {vector.shape}, the model needs ({self.dim},)")
        return self._top(self.item_vectors @ vector, k, exclude)

    def similar_items(self, product_id: int, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """Items closest to ``product_id`` by cosine; empty when the model does not know it."""
        i = self.item_index.get(product_id)
        if i is None:
            return []
        return self._top(self.item_unit @ self.item_unit[i], k, set(exclude) | {product_id})


def load_embeddings(store: ArtifactStore, model_id: str) -> ModelEmbeddings:
    """Read ``models/<model_id>/embeddings.npz`` (blocking: call it in a thread)."""
    return ModelEmbeddings.from_npz(model_id, store.get_bytes(model_key(model_id, EMBEDDINGS_FILE)))
