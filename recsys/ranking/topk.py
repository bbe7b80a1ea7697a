"""Fused top-k for precompute: each user's ``n`` best products, scored tile by tile.

A block of users is cut into tiles of ``RECSYS_PRECOMPUTE_TILE_MB`` of scores
(``tile_users x products``), scored with one matrix product each, in
``RECSYS_PRECOMPUTE_THREADS`` threads (BLAS and the numpy steps below release
the GIL), so memory stays bounded whatever the catalogue size (a 1M-product
catalogue is 64 users a tile at 256 MB). In each tile:

1. the products a user already saw (``RECSYS_EXCLUDE_SEEN``) are set to -inf;
2. a threshold per user: the products are split into ``GROUPS_PER_K * n``
   strided groups, and the ``n``-th largest of the groups' maxima is a score
   that at least ``n`` products reach (each maximum is a distinct product);
3. the products at or above it (about ``n`` of them) are the candidates, and
   a stable sort of each user's candidates alone (score descending, then
   product index ascending) gives the top ``n``.

No ``users x products`` sort: one vectorised max and one comparison per score
instead of argpartition's selection. Ties are broken by the lower product
index, so the result is deterministic (tests compare it with a full sort).

faiss (``faiss.knn`` / ``IndexFlatIP``) was measured for this and was slower
than the numpy product alone on this machine at k = 300 (bench/README.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

GROUPS_PER_K = 4  # groups per kept item: ~ n candidates per user, a few percent more with clustered scores


def tile_rows(n_products: int, tile_bytes: int, itemsize: int = 4) -> int:
    """Users per tile so that a tile of scores holds at most ``tile_bytes`` (at least one user)."""
    return max(1, tile_bytes // max(1, n_products * itemsize))


def select_top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` (-inf: excluded), the columns of the ``n`` best finite scores (score descending,
    then column ascending) and those scores; rows with fewer than ``n`` finite scores are padded with column 0
    and -inf. ``scores`` must be C-contiguous."""
    rows, m = scores.shape
    floor = np.finfo(scores.dtype).min  # -inf never passes the threshold
    groups = GROUPS_PER_K * n
    per_group = m // groups
    if per_group >= 2:
        maxima = scores[:, : groups * per_group].reshape(rows, per_group, groups).max(axis=1)
        threshold = np.maximum(np.partition(maxima, groups - n, axis=1)[:, groups - n], floor)
    else:  # a small catalogue: every finite score is a candidate
        threshold = np.full(rows, floor, dtype=scores.dtype)
    flat = np.flatnonzero(scores >= threshold[:, None])
    row, col = np.divmod(flat, m)  # row ascending, then column ascending
    counts = np.bincount(row, minlength=rows)
    slot = np.arange(len(row)) - (np.cumsum(counts) - counts)[row]
    width = max(int(counts.max(initial=0)), n)  # ~n; at most the tile's width when a row's scores all tie
    negated = np.full((rows, width), np.inf, dtype=scores.dtype)
    negated[row, slot] = -scores.ravel()[flat]
    candidates = np.zeros((rows, width), dtype=np.int64)
    candidates[row, slot] = col
    order = np.argsort(negated, axis=1, kind="stable")[:, :n]  # equal scores keep the lower column first
    cols = np.take_along_axis(candidates, order, axis=1)
    top = -np.take_along_axis(negated, order, axis=1)  # padding: -inf
    return cols, top


def fused_top(vectors: np.ndarray, item_vectors: np.ndarray, n: int, seen_rows: np.ndarray,
              seen_cols: np.ndarray, *, tile_bytes: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``select_top(vectors @ item_vectors.T with (seen_rows, seen_cols) at -inf, n)`` without the dense
    ``users x products`` matrix: tiles of at most ``tile_bytes`` of scores, ``threads`` at a time.

    Returns ``(columns, scores)``, both ``users x min(n, products)``.
    """
    users, m = len(vectors), len(item_vectors)
    n = min(n, m)
    dtype = np.result_type(vectors.dtype, item_vectors.dtype)
    cols = np.zeros((users, n), dtype=np.int64)
    top = np.full((users, n), -np.inf, dtype=dtype)
    order = np.argsort(seen_rows, kind="stable")
    seen_rows, seen_cols = np.asarray(seen_rows)[order], np.asarray(seen_cols)[order]
    step = tile_rows(m, tile_bytes, dtype.itemsize)
    starts = range(0, users, step)

    def tile(start: int) -> None:
        stop = min(start + step, users)
        scores = vectors[start:stop] @ item_vectors.T
        lo, hi = np.searchsorted(seen_rows, [start, stop])
        scores[seen_rows[lo:hi] - start, seen_cols[lo:hi]] = -np.inf
        cols[start:stop], top[start:stop] = select_top(scores, n)

    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            list(pool.map(tile, starts))
    else:
        for start in starts:
            tile(start)
    return cols, top
