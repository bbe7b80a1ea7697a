"""Precompute throughput: users scored per second against 10K, 100K and 1M products.

Measured, alternately in the same run, on the same user block and item matrix:
- ``numpy``: the bare ``users @ items.T`` (the arithmetic limit of this machine);
- ``score_top``: how precompute picked candidates before the fused top-k,
  ``top_matrix(users @ items.T, 300)`` (argpartition over the dense block);
- ``fused_top``: how it picks them now, ``topk.fused_top`` (tiles of
  ``RECSYS_PRECOMPUTE_TILE_MB``, ``RECSYS_PRECOMPUTE_THREADS`` threads);
- ``faiss_knn``: ``faiss.knn`` (exhaustive inner-product search with its fused top-k), when faiss is installed;
- ``lists``: precompute's whole per-block core ``_user_lists`` (seen mask, fused top
  candidates, stock and diversity re-ranking, Candidates with reasons), no I/O.
The block size is precompute's default (2048) when the dense block of the ``numpy``
and ``score_top`` references fits in the memory budget, else the largest power of
two that fits: scores (float32), their negation and argpartition's int64 indexes,
~16 bytes per score. ``fused_top`` and ``lists`` hold at most ``threads`` tiles.

``python -m bench.bench_precompute [--sizes 10000,100000,1000000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bench import vectors
from bench.common import alternate, log, machine, quick, ratio, summary, write_result
from bench.numpy_ref import NumpyReference
from recsys.pipeline.precompute import CANDIDATE_FACTOR, Scorer, _user_lists, top_matrix
from recsys.ranking.topk import fused_top
from recsys.settings import Settings

BYTES_PER_SCORE = 16  # float32 scores + negated copy + int64 argpartition indexes
BLOCK_MEMORY_BUDGET = 2 * 2**30


def block_size(n_products: int, default: int, budget: int = BLOCK_MEMORY_BUDGET) -> int:
    """Precompute's block size if its working set fits ``budget`` bytes, else the largest power of two that does."""
    fits = max(1, budget // (BYTES_PER_SCORE * n_products))
    if default <= fits:
        return default
    return 1 << (fits.bit_length() - 1)


def make_scorer(n_products: int, settings: Settings, seed: int) -> Scorer:
    products = vectors.catalogue(n_products, seed)
    items = vectors.item_vectors(n_products, vectors.production_dim(settings), seed)
    return Scorer(model_id="bench", is_live=True, model=None, products=products, item_vectors=items,
                  settings=settings)


def measure_size(n_products: int, settings: Settings, repeats: int, ref: NumpyReference, seed: int) -> dict:
    scorer = make_scorer(n_products, settings, seed)
    block = block_size(n_products, settings.precompute_block_size)
    users = vectors.user_vectors(block, scorer.item_vectors.shape[1], seed)
    frame = pd.DataFrame({"user_id": np.arange(1, block + 1, dtype=np.int64)})
    history = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "product_id": pd.Series(dtype="int64"),
                            "event_type": pd.Series(dtype=str)})
    ref.load(users, scorer.item_vectors, f"p{n_products}")
    n_cand = CANDIDATE_FACTOR * settings.recs_per_user

    def score_top() -> float:
        start = time.perf_counter()
        top_matrix(users @ scorer.item_vectors.T, n_cand)
        return time.perf_counter() - start

    none = np.zeros(0, dtype=np.int64)

    def fused() -> float:
        start = time.perf_counter()
        fused_top(users, scorer.item_vectors, n_cand, none, none, tile_bytes=settings.precompute_tile_mb * 2**20,
                  threads=settings.precompute_threads)
        return time.perf_counter() - start

    def lists() -> float:
        start = time.perf_counter()
        out = _user_lists(scorer, frame, users, history)
        assert len(out) == block and all(len(x) == settings.recs_per_user for x in out)
        return time.perf_counter() - start

    runs = {"numpy": ref.seconds, "score_top": score_top, "fused_top": fused, "lists": lists}
    knn = _faiss_knn(users, scorer.item_vectors, n_cand)
    if knn is not None:
        runs["faiss_knn"] = knn
    ref.seconds(), score_top(), fused()  # warm-up (page faults, BLAS threads)
    secs = alternate(runs, repeats)
    rates = {name: summary([block / s for s in runs]) for name, runs in secs.items()}
    out = {"products": n_products, "dim": int(scorer.item_vectors.shape[1]), "block_users": block,
           "candidates": n_cand, "users_per_s": rates,
           "ratio_to_numpy": {name: ratio(rates[name], rates["numpy"]) for name in rates if name != "numpy"},
           "numpy_gflops": 2 * block * n_products * scorer.item_vectors.shape[1] / min(secs["numpy"]) / 1e9,
           "block_working_set_mib": round(BYTES_PER_SCORE * block * n_products / 2**20)}
    log(f"{n_products} products: " + ", ".join(f"{k} {v['median']:.0f}" for k, v in rates.items())
        + f" users/s (block {block})")
    return out


def _faiss_knn(users: np.ndarray, items: np.ndarray, k: int):
    """A timed ``faiss.knn`` (inner product, k best) on the same block, or None without faiss."""
    try:
        import faiss
    except ImportError:
        return None

    def run() -> float:
        start = time.perf_counter()
        faiss.knn(users, items, k, metric=faiss.METRIC_INNER_PRODUCT)
        return time.perf_counter() - start

    return run


def scaling(rows: list[dict]) -> dict:
    """How throughput falls with the catalogue: users/s x products (scores/s) per size, and the log-log slope."""
    out = {}
    for name in rows[0]["users_per_s"]:
        m = np.array([r["products"] for r in rows], dtype=float)
        r = np.array([r["users_per_s"][name]["median"] for r in rows])
        slope = float(np.polyfit(np.log(m), np.log(r), 1)[0]) if len(rows) > 1 else None
        out[name] = {"scores_per_s": [float(x) for x in r * m], "loglog_slope": slope}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000" if quick() else "10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3 if quick() else 5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings, ref = Settings(), NumpyReference()
    info = machine()
    try:
        rows = [measure_size(int(m), settings, args.repeats, ref, args.seed) for m in args.sizes.split(",")]
    finally:
        ref.close()
    write_result("precompute", {"machine": info, "reference": ref.describe(), "sizes": rows,
                                "scaling": scaling(rows),
                                "settings": {"recs_per_user": settings.recs_per_user,
                                             "max_per_category": settings.max_per_category,
                                             "default_block": settings.precompute_block_size,
                                             "tile_mb": settings.precompute_tile_mb,
                                             "threads": settings.precompute_threads}},
                 started, "python -m bench.bench_precompute " + " ".join(argv or []))


if __name__ == "__main__":
    main()
