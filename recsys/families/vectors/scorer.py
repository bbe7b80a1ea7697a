"""The batch scorer and the published files of a vector model, and their served (memory-mapped) form."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.families.vectors.files import BLOCK_ROWS, EMBEDDING_FILES, check_increasing, open_folder, write_side
from recsys.families.vectors.served import ModelEmbeddings
from recsys.ranking.topk import fused_top

UserVectors = Callable[[pd.DataFrame, "pd.Series | None"], np.ndarray]


class VectorScorer:
    """``Scorer`` of a model with dense vectors: a block is the users' vectors, its scores their product
    with ``item_vectors`` (one row per product of ``products``), ``top`` the fused tiled selection."""

    def __init__(self, products: pd.DataFrame, item_vectors: np.ndarray, user_vectors: UserVectors):
        self.products = products
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self._user_vectors = user_vectors

    def block(self, users: pd.DataFrame, segments: pd.Series | None = None) -> np.ndarray:
        return self._user_vectors(users, segments)

    def scores(self, block: np.ndarray) -> np.ndarray:
        return np.asarray(block @ self.item_vectors.T, dtype=np.float32)

    def top(self, block: np.ndarray, n: int, seen_rows: np.ndarray, seen_cols: np.ndarray, *, tile_bytes: int,
            threads: int) -> tuple[np.ndarray, np.ndarray]:
        return fused_top(block, self.item_vectors, n, seen_rows, seen_cols, tile_bytes=tile_bytes, threads=threads)

    def user_vectors(self, block: np.ndarray) -> np.ndarray:
        return block

    def list_fields(self, user_id: int) -> dict:
        return {}

    def follows(self, user_id: int) -> int | None:
        return None


def write_model_embeddings(model, users: pd.DataFrame, products: pd.DataFrame, folder: Path,
                           block: int = BLOCK_ROWS) -> tuple[str, ...]:
    """The ``EMBEDDING_FILES`` of a vector model (``user_vectors``, ``item_vectors``, ``dim``) for these users
    and products in ``folder``, sorted by id, ``block`` rows of vectors at a time; their names in write order."""
    users = users.sort_values(COL_USER, kind="stable", ignore_index=True)
    products = products.sort_values(COL_ITEM, kind="stable", ignore_index=True)
    write_side(folder, "user", users[COL_USER].to_numpy(dtype=np.int64),
               lambda a, b: model.user_vectors(users.iloc[a:b]), model.dim, block)
    write_side(folder, "item", products[COL_ITEM].to_numpy(dtype=np.int64),
               lambda a, b: model.item_vectors(products.iloc[a:b]), model.dim, block)
    return EMBEDDING_FILES


def check_vectors(model_id: str, folder: Path) -> None:
    """A folder of ``EMBEDDING_FILES``: dtypes and shapes agree and ids strictly increase (``EmbeddingsError``)."""
    arrays = open_folder(folder)
    for side in ("user_ids", "item_ids"):
        check_increasing(arrays[side], f"{side} of model {model_id}")


def open_vectors(model_id: str, folder: Path) -> ModelEmbeddings:
    """The ``ServedModel`` of a folder of ``EMBEDDING_FILES`` (memory-mapped read-only)."""
    return ModelEmbeddings.from_folder(model_id, folder)


__all__ = ["EMBEDDING_FILES", "ModelEmbeddings", "VectorScorer", "open_vectors", "write_model_embeddings"]
