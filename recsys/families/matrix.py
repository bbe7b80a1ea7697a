"""Sparse user x item matrices over the ids of a training frame, shared by the id-only families
(implicit ALS, item-kNN) in training, evaluation and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import require_columns


def positions(index: pd.Index, ids) -> np.ndarray:
    """Position of each of ``ids`` in ``index``, -1 when absent."""
    return index.get_indexer(pd.Index(np.asarray(ids)))


def user_item_matrix(frame: pd.DataFrame,
                     values: np.ndarray | None = None) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    """(users x items) CSR of ``frame`` (binary unless ``values``), with its sorted user and item indexes."""
    require_columns(frame, (COL_USER, COL_ITEM), "training")
    if frame.empty:
        raise ValueError("no training interactions")
    users, items = pd.Index(np.unique(frame[COL_USER])), pd.Index(np.unique(frame[COL_ITEM]))
    rows, cols = positions(users, frame[COL_USER]), positions(items, frame[COL_ITEM])
    data = np.ones(len(frame), dtype=np.float32) if values is None else np.asarray(values, dtype=np.float32)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    mat.sum_duplicates()
    if values is None:
        mat.data[:] = 1.0
    return mat, users, items


def gather(item_scores: np.ndarray, items: pd.Index, products: pd.DataFrame) -> np.ndarray:
    """Columns of ``item_scores`` (one per ``items``) in ``products`` order; unknown products score 0."""
    cols = positions(items, products[COL_ITEM])
    out = np.zeros((item_scores.shape[0], len(cols)), dtype=np.float32)
    known = cols >= 0
    out[:, known] = item_scores[:, cols[known]]
    return out


def rows_of(matrix: sp.csr_matrix, index: pd.Index, ids) -> sp.csr_matrix:
    """Rows of ``matrix`` (one per ``index``) for ``ids``; an id not in ``index`` gets an empty row."""
    rows = positions(index, ids)
    picked = matrix[np.maximum(rows, 0)].tocsr()
    return sp.csr_matrix(sp.diags((rows >= 0).astype(np.float32)) @ picked)


def top_per_row(mat: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties: the smaller column)."""
    coo = mat.tocoo()
    order = np.lexsort((coo.col, -coo.data, coo.row))
    rows = coo.row[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = order[(np.arange(len(order)) - starts) < n]
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=mat.shape)
