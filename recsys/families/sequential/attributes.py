"""Product attributes as embedding indices (numpy only: the scoring side uses them too).

Price band: ``1 + clip(floor(log2(max(price, 1))), 0, N_PRICE_BANDS - 1)`` (the hybrid's log2 bands,
``recsys.families.hybrid.features.price_band``, so a new product needs no stored edges); 0 = no or a bad price.
Category: ``1 + position`` in the model's category list; 0 = missing or not in the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from recsys.families.sequential.config import N_PRICE_BANDS


def price_band_index(prices: Iterable) -> np.ndarray:
    p = np.asarray(list(prices) if not isinstance(prices, np.ndarray) else prices, dtype=np.float64)
    ok = np.isfinite(p) & (p > 0)
    band = np.floor(np.log2(np.maximum(np.where(ok, p, 1.0), 1.0)))
    return np.where(ok, 1 + np.clip(band, 0, N_PRICE_BANDS - 1), 0).astype(np.int64)


def category_index(categories: Iterable, known: Sequence[str]) -> np.ndarray:
    position = {name: i + 1 for i, name in enumerate(known)}
    return np.fromiter((position.get(c, 0) if isinstance(c, str) else 0 for c in categories), dtype=np.int64)
