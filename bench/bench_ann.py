"""Exact scoring against an approximate nearest-neighbour index at 10M products (faiss).

For the same queries (user vectors) and the same item matrix:
- ``exact``: precompute's way, ``top_matrix(users @ items.T, 300)`` in blocks, next to
  the bare ``users @ items.T`` of the same blocks (``numpy``);
- ``faiss_flat``: faiss' exact inner-product search (BLAS + heaps), k=300;
- ``ivf``: ``IndexIVFFlat`` (inner product), several ``nprobe``: recall of the true top 10
  in its top 10 and in its top 300 (the candidates precompute re-ranks), queries/s, build time;
- ``ivf_gaussian_worst_case``: the same IVF on unstructured Gaussian vectors (a smaller catalogue);
- ``hnsw``: ``IndexHNSWFlat`` (inner product) on the largest catalogue its build time allows.

``python -m bench.bench_ann [--products 10000000] [--hnsw-products 1000000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench import vectors
from bench.common import alternate, blas_info, log, machine, quick, summary, write_result
from recsys.pipeline.precompute import top_matrix

K_TRUE, K_CAND = 10, 300
EXACT_BLOCK = 16  # users per exact block at 10M products: 16 x 10M x 12 bytes ~ 2 GB


def exact_top(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    out = [top_matrix(users[i:i + EXACT_BLOCK] @ items.T, k)[0] for i in range(0, len(users), EXACT_BLOCK)]
    return np.vstack(out)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of each row's true top-k found in ``found`` (any order), averaged."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


def exact_rates(users: np.ndarray, items: np.ndarray, repeats: int) -> dict:
    block = users[:EXACT_BLOCK]

    def ours() -> float:
        start = time.perf_counter()
        top_matrix(block @ items.T, K_CAND)
        return EXACT_BLOCK / (time.perf_counter() - start)

    def numpy_ref() -> float:
        start = time.perf_counter()
        block @ items.T
        return EXACT_BLOCK / (time.perf_counter() - start)

    runs = alternate({"numpy": numpy_ref, "exact": ours}, repeats)
    return {name: summary(vals) for name, vals in runs.items()}


def search_rate(index, queries: np.ndarray, k: int, repeats: int) -> tuple[dict, np.ndarray]:
    found = None
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, found = index.search(queries, k)
        rates.append(len(queries) / (time.perf_counter() - start))
    return summary(rates), found


def ivf_index(items: np.ndarray, nlist: int, seed: int):
    import faiss

    d = items.shape[1]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = items[np.sort(rng.choice(len(items), min(len(items), 50 * nlist), replace=False))]
    start = time.perf_counter()
    index.train(sample)
    train_s = time.perf_counter() - start
    index.add(items)
    return index, {"nlist": nlist, "train_seconds": train_s, "build_seconds": time.perf_counter() - start,
                   "train_points": len(sample)}


def measure_ivf(items, queries, truth, nprobes, repeats, seed) -> dict:
    nlist = 4096 if len(items) >= 4_000_000 else 1024
    index, build = ivf_index(items, nlist, seed)
    log(f"IVF{nlist} built in {build['build_seconds']:.0f}s")
    rows = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        rate, found = search_rate(index, queries, K_CAND, repeats)
        _, top10 = index.search(queries[:len(truth)], K_TRUE)
        rows.append({"nprobe": nprobe, "users_per_s": rate, "recall_at_10": recall(top10, truth),
                     "recall_top10_in_300": recall(found[:len(truth)], truth)})
        log(f"IVF nprobe={nprobe}: {rate['median']:.0f} users/s, recall@10 {rows[-1]['recall_at_10']:.3f}")
    return {**build, "memory_gib": len(items) * items.shape[1] * 4 / 2**30, "nprobe": rows}


def measure_hnsw(items, queries, n_truth, efs, repeats, m_links=32) -> dict:
    import faiss

    truth = exact_top(queries[:n_truth], items, K_TRUE)
    index = faiss.IndexHNSWFlat(items.shape[1], m_links, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    start = time.perf_counter()
    index.add(items)
    build = time.perf_counter() - start
    log(f"HNSW{m_links} on {len(items)} items built in {build:.0f}s")
    rows = []
    for ef in efs:
        index.hnsw.efSearch = max(ef, K_CAND)
        rate, found = search_rate(index, queries, K_CAND, repeats)
        index.hnsw.efSearch = ef
        _, top10 = index.search(queries[:n_truth], K_TRUE)
        rows.append({"ef_search": ef, "users_per_s_k300": rate, "recall_at_10": recall(top10, truth),
                     "recall_top10_in_300": recall(found[:n_truth], truth)})
    return {"products": len(items), "M": m_links, "ef_construction": 40, "build_seconds": build,
            "build_items_per_s": len(items) / build, "ef": rows}


def main(argv: list[str] | None = None) -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000 if quick() else 10_000_000)
    parser.add_argument("--hnsw-products", type=int, default=100_000 if quick() else 1_000_000,
                        help="catalogue size of the HNSW build (0: skip); its build is the slow part")
    parser.add_argument("--gaussian-products", type=int, default=200_000 if quick() else 1_000_000,
                        help="catalogue size of the worst case (i.i.d. Gaussian vectors, IVF only; 0: skip)")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--truth-queries", type=int, default=100 if quick() else 200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = machine()
    dim = vectors.production_dim()
    items = vectors.item_vectors(args.products, dim, args.seed)
    queries = vectors.user_vectors(args.queries, dim, args.seed, offset=1)
    log(f"{args.products} x {dim} items generated; exact ground truth for {args.truth_queries} users")
    t0 = time.perf_counter()
    truth = exact_top(queries[:args.truth_queries], items, K_TRUE)
    exact = exact_rates(queries, items, args.repeats)
    log(f"exact {exact['exact']['median']:.1f} users/s (truth in {time.perf_counter() - t0:.0f}s)")
    flat = faiss.IndexFlatIP(dim)
    flat.add(items)
    flat_rate, _ = search_rate(flat, queries[:32], K_CAND, args.repeats)
    del flat
    ivf = measure_ivf(items, queries, truth, [4, 16, 64], args.repeats, args.seed)
    worst = None
    if args.gaussian_products:
        del items
        items = vectors.gaussian_items(args.gaussian_products, dim, args.seed)
        worst = measure_ivf(items, queries, exact_top(queries[:args.truth_queries], items, K_TRUE),
                            [4, 16, 64, 256], args.repeats, args.seed)
        worst["products"] = args.gaussian_products
    hnsw = None
    if args.hnsw_products:
        if worst is not None:
            items = vectors.item_vectors(args.hnsw_products, dim, args.seed)
        hnsw = measure_hnsw(items[:args.hnsw_products], queries, args.truth_queries, [64, 256], args.repeats)
    write_result("ann", {"machine": info, "blas": blas_info(), "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
                         "products": args.products, "dim": dim, "queries": args.queries,
                         "truth_queries": args.truth_queries, "candidates_k": K_CAND, "exact": exact,
                         "faiss_flat": {"users_per_s": flat_rate}, "ivf": ivf, "hnsw": hnsw,
                         "ivf_gaussian_worst_case": worst,
                         "data": "clustered synthetic vectors (bench/vectors.py)"},
                 started, "python -m bench.bench_ann " + " ".join(argv or []))


if __name__ == "__main__":
    main()
