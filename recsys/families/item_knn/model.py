"""Item-kNN as a served model family: co-occurrence cosine similarity kept as a sparse top-k
neighbour matrix, and each known user's training history.

Score of user u for product j: ``sum_{i in history(u)} sim(i, j)``, i.e. the row of the user's
history times the neighbour matrix. Precompute scores a block of users as ``history @ S`` (sparse);
the API scores a known user on the fly by summing the neighbour rows of the user's products
(``recsys.families.item_knn.served``). There is no cold start: users and products unseen in training are not
scored (publish and precompute serve the known users only; the fallback tiers answer the others).
On disk: ``model.npz`` (ids and both CSR matrices) and ``model.json``; published:
``recsys.families.item_knn.files``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.artifacts import ArtifactStore
from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import require_columns
from recsys.families.matrix import gather, positions, rows_of, top_per_row, user_item_matrix
from recsys.families.files import ModelArtifactError, load_arrays, save_arrays
from recsys.families.item_knn.files import NEIGHBOUR_FILES, write_neighbour_files
from recsys.ranking.topk import select_top

FAMILY = "item-knn"


def csr_parts(prefix: str, mat: sp.csr_matrix) -> dict[str, np.ndarray]:
    mat = sp.csr_matrix(mat, dtype=np.float32)
    mat.sort_indices()
    return {f"{prefix}_indptr": mat.indptr.astype(np.int64), f"{prefix}_indices": mat.indices.astype(np.int32),
            f"{prefix}_data": mat.data.astype(np.float32)}


def csr_of(arrays: Mapping[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """The CSR matrix of ``csr_parts`` arrays (no copy of memory-mapped arrays); ``ModelArtifactError`` when
    they do not fit ``shape``."""
    indptr, indices, data = (arrays[f"{prefix}_{p}"] for p in ("indptr", "indices", "data"))
    if (len(indptr) != shape[0] + 1 or len(indices) != len(data) or int(indptr[-1]) != len(data)
            or (len(indices) and (int(np.max(indices)) >= shape[1] or int(np.min(indices)) < 0))):
        raise ModelArtifactError(f"{prefix} matrix does not fit shape {shape}")
    return sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)


class NeighbourScorer:
    """``Scorer`` of an item-kNN model: a block is the users' sparse history rows, its scores the rows times
    the neighbour columns of ``products`` (a dense block), ``top`` the plain selection over it. No dense
    vectors: no ``embedding:*`` keys. ``scores`` is the model's own ``score`` (offline evaluation)."""

    item_vectors = None

    def __init__(self, products: pd.DataFrame, columns: sp.spmatrix, rows: Callable, score: Callable):
        self.products, self._columns, self._rows, self._score = products, columns, rows, score
        self._users: pd.DataFrame | None = None

    def block(self, users: pd.DataFrame, segments: pd.Series | None = None):
        self._users = users
        return self._rows(users)

    def scores(self, block) -> np.ndarray:
        return np.asarray(self._score(self._users, self.products), dtype=np.float32)

    def top(self, block, n: int, seen_rows: np.ndarray, seen_cols: np.ndarray, *, tile_bytes: int,
            threads: int) -> tuple[np.ndarray, np.ndarray]:
        scores = block @ self._columns.T
        scores = np.ascontiguousarray(np.asarray(scores.toarray() if sp.issparse(scores) else scores,
                                                 dtype=np.float32))
        scores[seen_rows, seen_cols] = -np.inf
        return select_top(scores, n)

    def user_vectors(self, block) -> None:
        return None

    def list_fields(self, user_id: int) -> dict:
        return {}

    def follows(self, user_id: int) -> int | None:
        return None


class ItemKNNModel:
    """Co-occurrence cosine item-kNN: ``score(u, j) = sum_{i in history(u)} sim(i, j)``."""

    served_as, cold_start_users = "neighbours", False  # informational (metadata.json): code asks the family

    def __init__(self, history: sp.csr_matrix, similarity: sp.csr_matrix, users: pd.Index, items: pd.Index,
                 info: dict | None = None):
        self.history, self.similarity = sp.csr_matrix(history), sp.csr_matrix(similarity)
        self.users, self.items, self.info = pd.Index(users), pd.Index(items), dict(info or {})

    @classmethod
    def fit(cls, frame: pd.DataFrame, neighbours: int = 100, info: dict | None = None) -> ItemKNNModel:
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        history, users, items = user_item_matrix(frame)
        co = (history.T @ history).tocsr()
        norms = np.sqrt(co.diagonal())
        co.setdiag(0.0)
        co.eliminate_zeros()
        inv = sp.diags(1.0 / np.maximum(norms, 1e-12))
        cosine = sp.csr_matrix(inv @ co @ inv, dtype=np.float32)
        return cls(history, top_per_row(cosine, neighbours), users, items, info)

    @property
    def dim(self) -> int:
        """Length of a user's history row: the products seen in training."""
        return len(self.items)

    @property
    def known_user_ids(self) -> np.ndarray:
        return self.users.to_numpy()

    def user_vectors(self, users_df: pd.DataFrame, value_segment: pd.Series | None = None) -> sp.csr_matrix:
        """(n, dim) sparse history rows of ``users_df`` (empty for a user unseen in training)."""
        require_columns(users_df, (COL_USER,), "users")
        return rows_of(self.history, self.users, users_df[COL_USER])

    def item_vectors(self, products: pd.DataFrame) -> sp.csc_matrix:
        """(m, dim) sparse: per product of ``products``, its similarity to every trained product (the columns
        of the neighbour matrix), so that ``user_vectors @ item_vectors.T`` is ``history @ S``."""
        cols = positions(self.items, products[COL_ITEM])
        picked = self.similarity[:, np.maximum(cols, 0)] @ sp.diags((cols >= 0).astype(np.float32))
        return sp.csc_matrix(picked.T)

    def score(self, users_df: pd.DataFrame, products_df: pd.DataFrame) -> np.ndarray:
        require_columns(users_df, (COL_USER,), "users")
        picked = rows_of(self.history, self.users, users_df[COL_USER])
        return gather((picked @ self.similarity).toarray(), self.items, products_df)

    def scorer(self, products: pd.DataFrame, history=None) -> NeighbourScorer:
        return NeighbourScorer(products, self.item_vectors(products), self.user_vectors, self.score)

    def write_served(self, users: pd.DataFrame, products: pd.DataFrame, folder: Path) -> tuple[str, ...]:
        """The neighbour files (``recsys.families.item_knn.files``): every trained user's history and the
        neighbour matrix (the API scores ``history[u] @ S``)."""
        write_neighbour_files(self.arrays(), folder)
        return NEIGHBOUR_FILES

    def arrays(self) -> dict[str, np.ndarray]:
        """Ids (sorted) and both matrices as CSR parts (what ``model.npz`` and the published files hold)."""
        return {"user_ids": self.users.to_numpy(dtype=np.int64), "item_ids": self.items.to_numpy(dtype=np.int64),
                **csr_parts("history", self.history), **csr_parts("neighbour", self.similarity)}

    def save(self, store: ArtifactStore, model_id: str) -> dict[str, str]:
        return save_arrays(store, model_id, self.arrays(), {"family": FAMILY, "info": self.info})

    @classmethod
    def load(cls, store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> ItemKNNModel:
        arrays, meta = load_arrays(store, model_id, checksums, FAMILY)
        try:
            users, items = pd.Index(arrays["user_ids"]), pd.Index(arrays["item_ids"])
            history = csr_of(arrays, "history", (len(users), len(items)))
            similarity = csr_of(arrays, "neighbour", (len(items), len(items)))
        except KeyError as exc:
            raise ModelArtifactError(f"model {model_id}: item-kNN arrays lack {exc}") from exc
        return cls(history, similarity, users, items, meta.get("info"))
