"""Events -> per-user product sequences, the item vocabulary, training windows and the validation split.

- Signal: events with a positive weight (``EVENT_WEIGHTS``: views, clicks, carts, wishlists,
  purchases; not returns or impressions), in time order per user (ties keep the log's order).
- ``distinct``: only a user's first event on each product is kept.
- Vocabulary: the products of the training sequences; index 0 pads, 1 is "unknown", the
  first product is ``FIRST_ITEM``. Each carries its category and price band (``attributes``).
- Training pairs: a user's sequence without its newest product, cut from the end into
  windows of ``max_len`` inputs, each position predicting the next product.
- Validation (early stopping): each user's newest product, predicted from the ones before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER
from recsys.data.frames import SIGNAL_EVENTS, require_columns
from recsys.families.sequential.attributes import category_index, price_band_index
from recsys.families.sequential.config import FIRST_ITEM, PAD, UNKNOWN



def user_sequences(events: pd.DataFrame, distinct: bool = True) -> dict[int, np.ndarray]:
    """``{user_id: product ids in time order}`` from the signal events of ``events``."""
    require_columns(events, (COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP), "events")
    rows = events.loc[events[COL_EVENT_TYPE].isin(SIGNAL_EVENTS) & events[COL_USER].notna()
                      & events[COL_ITEM].notna(), [COL_USER, COL_ITEM, COL_TIMESTAMP]]
    rows = rows.sort_values([COL_USER, COL_TIMESTAMP], kind="stable")
    if distinct:
        rows = rows.drop_duplicates([COL_USER, COL_ITEM], keep="first")
    users = rows[COL_USER].to_numpy(dtype=np.int64)
    items = rows[COL_ITEM].to_numpy(dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.array([], dtype=np.int64)
    return {int(users[s]): part for s, part in zip(starts, np.split(items, starts[1:]))}


@dataclass
class ItemVocab:
    """The products the model knows, with their attribute indices (row r = vocabulary index FIRST_ITEM + r)."""

    product_ids: np.ndarray  # int64
    categories: list[str]  # category index c + 1 = categories[c]
    item_categories: np.ndarray  # int64 per product
    item_bands: np.ndarray  # int64 per product

    def __post_init__(self):
        self._index = pd.Index(self.product_ids)

    def __len__(self) -> int:
        return len(self.product_ids)

    @property
    def size(self) -> int:
        """Embedding rows: padding, unknown and the products."""
        return FIRST_ITEM + len(self.product_ids)

    def indices(self, product_ids) -> np.ndarray:
        """Vocabulary index of each product id (``UNKNOWN`` for ids not in the vocabulary)."""
        pos = self._index.get_indexer(pd.Index(np.asarray(product_ids, dtype=np.int64)))
        return np.where(pos >= 0, pos + FIRST_ITEM, UNKNOWN).astype(np.int64)

    def attribute_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Category and band index per vocabulary index (0 for padding and unknown)."""
        zeros = np.zeros(FIRST_ITEM, dtype=np.int64)
        return np.r_[zeros, self.item_categories], np.r_[zeros, self.item_bands]


def build_vocab(product_ids: np.ndarray, products: pd.DataFrame) -> ItemVocab:
    """Vocabulary of ``product_ids`` (sorted, unique) with category and price from ``products``."""
    require_columns(products, (COL_ITEM, "category", "price"), "products")
    ids = np.unique(np.asarray(product_ids, dtype=np.int64))
    attrs = products.drop_duplicates(COL_ITEM).set_index(COL_ITEM).reindex(ids)
    categories = sorted({c for c in attrs["category"] if isinstance(c, str)})
    return ItemVocab(ids, categories, category_index(attrs["category"], categories),
                     price_band_index(attrs["price"].to_numpy(dtype=np.float64)))


def left_pad(sequence: np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` entries of ``sequence``, left-padded with ``PAD``."""
    out = np.full(length, PAD, dtype=np.int64)
    tail = sequence[-length:]
    if len(tail):
        out[length - len(tail):] = tail
    return out


@dataclass
class TrainingData:
    inputs: np.ndarray  # (windows x max_len) vocabulary indices
    targets: np.ndarray  # (windows x max_len) next product per position, PAD where none
    val_inputs: np.ndarray  # (users x max_len)
    val_targets: np.ndarray  # (users,)


def _windows(seq: np.ndarray, max_len: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out, end = [], len(seq)
    while end >= 2:
        start = max(0, end - max_len - 1)
        out.append((left_pad(seq[start:end - 1], max_len), left_pad(seq[start + 1:end], max_len)))
        end -= max_len
    return out


def make_training_data(sequences: list[np.ndarray], max_len: int, min_sequence: int = 2) -> TrainingData:
    """Windows and the leave-last-out validation of ``sequences`` (vocabulary indices, time order).

    A user with more than ``min_sequence`` products gives its newest one to validation;
    shorter sequences (at least ``min_sequence``) are all training."""
    pairs, val_x, val_y = [], [], []
    for seq in sequences:
        if len(seq) < min_sequence:
            continue
        if len(seq) > min_sequence:
            val_x.append(left_pad(seq[:-1], max_len))
            val_y.append(seq[-1])
            seq = seq[:-1]
        pairs.extend(_windows(seq, max_len))
    if not pairs:
        raise ValueError(f"no user has a sequence of at least {min_sequence} products: nothing to train on")
    x, y = (np.stack(side) for side in zip(*pairs))
    empty = np.zeros((0, max_len), dtype=np.int64)
    return TrainingData(x, y, np.stack(val_x) if val_x else empty, np.array(val_y, dtype=np.int64))
