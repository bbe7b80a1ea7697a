"""Synthetic embeddings and catalogues at production size, for the scoring and ANN benchmarks.

Vectors have the production shape of ``HybridModel``: ``no_components`` LightFM
dimensions plus one column (``[embedding, item_bias]`` for items,
``[embedding, 1.0]`` for users). They are clustered like trained embeddings
are (products of one category lie near each other): every item is a cluster
centre plus noise, every user a mix of one to three centres plus noise. Pure
Gaussian vectors would be the worst case for an ANN index; trained ones are
clustered, so this is the closer stand-in (stated in the README).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.settings import Settings

CATEGORIES = 40
CHUNK = 1_000_000
NOISE = 1.0  # noise norm ~ centre norm: clusters overlap, as trained embeddings do


def production_dim(settings: Settings | None = None) -> int:
    """Length of a user or item vector in production: LightFM components + 1."""
    return (settings or Settings()).no_components + 1


def centres(n_clusters: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 1])
    return (rng.standard_normal((n_clusters, dim - 1)) / np.sqrt(dim - 1)).astype(np.float32)


def item_vectors(m: int, dim: int, seed: int, n_clusters: int = 1024) -> np.ndarray:
    """(m, dim) float32: cluster centre + noise, last column a small item bias. Built in chunks of
    ``CHUNK`` rows (one random stream each) to keep the temporaries small."""
    c = centres(n_clusters, dim, seed)
    out = np.empty((m, dim), dtype=np.float32)
    for start in range(0, m, CHUNK):
        rng = np.random.default_rng([seed, 2, start])
        n = min(CHUNK, m - start)
        which = rng.integers(0, n_clusters, n)
        noise = rng.standard_normal((n, dim - 1), dtype=np.float32) * np.float32(NOISE / np.sqrt(dim - 1))
        out[start:start + n, :-1] = c[which] + noise
        out[start:start + n, -1] = rng.normal(0.0, 0.1, n).astype(np.float32)
    return out


def user_vectors(n: int, dim: int, seed: int, n_clusters: int = 1024, offset: int = 0) -> np.ndarray:
    """(n, dim) float32: a mix of 1-3 cluster centres + noise, last column 1.0."""
    c = centres(n_clusters, dim, seed)
    rng = np.random.default_rng([seed, 3, offset])
    mix = np.zeros((n, dim - 1), dtype=np.float32)
    k = rng.integers(1, 4, n)
    for j in range(3):
        pick = rng.integers(0, n_clusters, n)
        mix += np.where((k > j)[:, None], c[pick], 0.0).astype(np.float32)
    mix += rng.standard_normal((n, dim - 1), dtype=np.float32) * np.float32(NOISE / np.sqrt(dim - 1))
    return np.hstack([mix, np.ones((n, 1), dtype=np.float32)])


def gaussian_items(m: int, dim: int, seed: int) -> np.ndarray:
    """(m, dim) float32 i.i.d. Gaussian: no structure at all, the worst case for an ANN index."""
    rng = np.random.default_rng([seed, 5])
    out = rng.standard_normal((m, dim), dtype=np.float32) / np.float32(np.sqrt(dim - 1))
    out[:, -1] *= 0.1
    return out


def catalogue(m: int, seed: int) -> pd.DataFrame:
    """A products frame with the columns precompute's re-ranking and reasons read."""
    rng = np.random.default_rng([seed, 4])
    age = rng.exponential(120.0, m)
    return pd.DataFrame({
        "product_id": np.arange(1, m + 1, dtype=np.int64),
        "category": pd.Categorical.from_codes(rng.integers(0, CATEGORIES, m),
                                              [f"Category {i}" for i in range(CATEGORIES)]).astype(str),
        "in_stock": rng.random(m) > 0.05,
        "margin": rng.uniform(0.05, 0.5, m),
        "is_new": age < 14,
        "age_days": age,
        "popularity": rng.poisson(20, m),
    })
