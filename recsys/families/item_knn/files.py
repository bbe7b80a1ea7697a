"""The published form of an item-kNN model: plain ``.npy`` files that can be memory-mapped.

Files under ``models/<model_id>/`` (written by publish, in this order, ``neighbour_data.npy`` last):
- ``user_ids.npy`` int64 strictly increasing (the users seen in training), and their history as a CSR
  matrix over the trained products: ``history_indptr.npy`` int64, ``history_indices.npy`` int32,
  ``history_data.npy`` float32;
- ``item_ids.npy`` int64 strictly increasing (the products seen in training), and the top-k neighbour
  matrix ``S`` (row i: the products most similar to product i and their cosine) as
  ``neighbour_indptr.npy``, ``neighbour_indices.npy``, ``neighbour_data.npy``.

A user's scores are ``history[u] @ S``. Every file is checked against the checksums the registry
recorded at publish before it is parsed, like the vector files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.families.vectors.files import EmbeddingsError, check_increasing, load_folder


from recsys.families.item_knn.names import NEIGHBOUR_FILES, NEIGHBOUR_MARKER  # noqa: F401  (re-exported)


def write_neighbour_files(arrays: dict[str, np.ndarray], folder: Path) -> None:
    """The ``NEIGHBOUR_FILES`` of ``ItemKNNModel.arrays()`` in ``folder``."""
    for name in NEIGHBOUR_FILES:
        np.save(folder / name, arrays[name.removesuffix(".npy")])


def check_neighbours(arrays: dict[str, np.ndarray], where: str) -> None:
    """Dtypes, lengths and index ranges agree (``EmbeddingsError`` otherwise); ids strictly increasing."""
    users, items = arrays["user_ids"], arrays["item_ids"]
    for side, n_rows in (("history", len(users)), ("neighbour", len(items))):
        indptr, indices, data = (arrays[f"{side}_{p}"] for p in ("indptr", "indices", "data"))
        if (indptr.dtype != np.int64 or indices.dtype != np.int32 or data.dtype != np.float32
                or len(indptr) != n_rows + 1 or len(indices) != len(data) or int(indptr[-1]) != len(data)):
            raise EmbeddingsError(f"{where}: the {side} matrix does not fit {n_rows} rows")
        if len(indices) and (int(indices.max()) >= len(items) or int(indices.min()) < 0):
            raise EmbeddingsError(f"{where}: the {side} matrix points past the {len(items)} products")
    for side, ids in (("user_ids", users), ("item_ids", items)):
        if ids.dtype != np.int64 or ids.ndim != 1:
            raise EmbeddingsError(f"{where}: {side} are {ids.dtype} {ids.shape}, not 1-d int64")
        check_increasing(ids, f"{side} of {where}")


def open_neighbour_folder(folder: Path, mmap_mode: str | None = "r") -> dict[str, np.ndarray]:
    """The arrays of a folder of ``NEIGHBOUR_FILES`` (memory-mapped read-only by default), checked."""
    arrays = load_folder(folder, NEIGHBOUR_FILES, mmap_mode)
    check_neighbours(arrays, str(folder))
    return arrays
