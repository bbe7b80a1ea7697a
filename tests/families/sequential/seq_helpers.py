"""Small synthetic sequences for the sequential model's tests: product i is followed by i + 1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, PURCHASE
from recsys.families.sequential.config import SequentialConfig

N_PRODUCTS = 40
FIRST_ID = 1000  # product ids are FIRST_ID + i
SMALL = SequentialConfig(max_len=10, dim=32, layers=1, heads=1, dropout=0.1, batch_size=64, learning_rate=5e-3,
                         max_epochs=40, patience=3, threads=1, seed=7)


def products(n: int = N_PRODUCTS) -> pd.DataFrame:
    """Four categories of consecutive products (``c0``: 0..9, ...) with prices 1..2**4."""
    i = np.arange(n)
    return pd.DataFrame({COL_ITEM: FIRST_ID + i, "category": [f"c{j // 10}" for j in i],
                         "price": 2.0 ** (i // 10) + 0.5, "name": [f"p{j}" for j in i]})


def successor_events(users: int = 300, length: int = 8, seed: int = 0, n: int = N_PRODUCTS) -> pd.DataFrame:
    """Each user buys ``length`` consecutive products (mod ``n``) from a random start, one a minute."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        start = int(rng.integers(n))
        for step in range(length):
            rows.append((user + 1, FIRST_ID + (start + step) % n, PURCHASE, 1_700_000_000_000 + 60_000 * step))
    return pd.DataFrame(rows, columns=[COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP])


def probe_sequences(count: int = 40, length: int = 5, seed: int = 99, n: int = N_PRODUCTS) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[FIRST_ID + (int(s) + j) % n for j in range(length)] for s in rng.integers(n, size=count)]


def successor(sequence: list[int], n: int = N_PRODUCTS) -> int:
    return FIRST_ID + (sequence[-1] - FIRST_ID + 1) % n
