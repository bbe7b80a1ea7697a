"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a closed-form item-item
model. With ``X`` the users x items binary interaction matrix and ``G = X'X + lambda I``, ``P = G^-1`` and
``B = -P / diag(P)`` with a zero diagonal; a user's scores are ``X[u] @ B``.

``B`` is dense (items x items); the served model keeps each item's ``neighbours`` largest weights (a sparse
matrix in item-kNN's published form: each trained user's history and the weight matrix,
``recsys.families.item_knn.files``), and evaluation scores that same sparse model, so what is measured is
what is served. Fitting holds about three ``items x items`` float64 matrices: ``MAX_ITEMS`` bounds it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.artifacts import ArtifactStore
from recsys.families.files import ModelArtifactError, load_arrays, save_arrays
from recsys.families.ease import MAX_ITEMS, NAME
from recsys.families.item_knn.model import ItemKNNModel, csr_of
from recsys.families.matrix import top_per_row, user_item_matrix



class EASEModel(ItemKNNModel):
    """The users' histories and the sparsified ``B``; scored as ``history[u] @ B`` (item-kNN's scorer)."""

    @classmethod
    def fit(cls, frame: pd.DataFrame, lam: float = 500.0, neighbours: int = 200,
            info: dict | None = None) -> EASEModel:
        if lam <= 0 or neighbours < 1:
            raise ValueError(f"EASE needs lambda > 0 and neighbours >= 1, got {lam}, {neighbours}")
        history, users, items = user_item_matrix(frame)
        if len(items) > MAX_ITEMS:
            raise ValueError(f"EASE fits {len(items):,} products in memory; its limit is {MAX_ITEMS:,}")
        gram = (history.T @ history).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += lam
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        dense = sp.csr_matrix(weights.astype(np.float32))
        dense.data = np.where(dense.data > 0, dense.data, 0.0).astype(np.float32)  # negative weights never lift
        dense.eliminate_zeros()
        return cls(history, top_per_row(dense, neighbours), users, items, info)

    def save(self, store: ArtifactStore, model_id: str) -> dict[str, str]:
        return save_arrays(store, model_id, self.arrays(), {"family": NAME, "info": self.info})

    @classmethod
    def load(cls, store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None) -> EASEModel:
        arrays, meta = load_arrays(store, model_id, checksums, NAME)
        try:
            users, items = pd.Index(arrays["user_ids"]), pd.Index(arrays["item_ids"])
            return cls(csr_of(arrays, "history", (len(users), len(items))),
                       csr_of(arrays, "neighbour", (len(items), len(items))), users, items, meta.get("info"))
        except KeyError as exc:
            raise ModelArtifactError(f"model {model_id}: EASE arrays lack {exc}") from exc
