"""User and item features of the hybrid model, and the sparse rows LightFM reads.

Users: country, language, device type and value segment (whale / regular / new).
Items: category, price band (fixed log2 bands, so a new product needs no stored
edges) and name tokens (lowercased words; stop-words and rare tokens dropped).

Attributes are kept in long format (``row, feature, weight``) so that building
the rows of a million users stays vectorised. A :class:`FeatureSpace` turns them
into LightFM feature rows: the identity feature of a known id plus its attribute
features, L1-normalised per row (LightFM's default); an id unseen in training
gets its attributes alone, so cold-start users and items still have a vector.

A model is trained with a subset of the attribute groups (``USER_FEATURES``,
``ITEM_FEATURES``; ``RECSYS_USER_FEATURES`` / ``RECSYS_ITEM_FEATURES``): the others
never enter its feature space, so they are dropped when its rows are built.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.constants import COL_USER
from recsys.families.hybrid.params import ITEM_FEATURES, USER_FEATURES, check_feature_names  # noqa: F401
from recsys.data.frames import ITEM_COLUMNS, USER_COLUMNS, require_columns

USER_ATTRIBUTES = {"country": "country", "language": "lang", "device_type": "device"}
ATTRIBUTE_FRAME = ("row", "feature", "weight")

STOP_WORDS = frozenset(
    "a an and are as at be by for from in into is it of on or set the to with without".split()
)
_WORD = re.compile(r"[^\W\d_]{2,}")


# --- item attributes ---------------------------------------------------------
def tokenize(name: object) -> list[str]:
    """Lowercased words of a product name (letters only, 2+ chars), stop-words dropped."""
    if not isinstance(name, str):
        return []
    return [w for w in _WORD.findall(name.lower()) if w not in STOP_WORDS]


def token_vocabulary(names: Iterable[object], *, min_count: int = 2) -> frozenset[str]:
    """Tokens found in at least ``min_count`` names (rarer tokens carry no shared signal)."""
    counts = Counter(tok for name in names for tok in set(tokenize(name)))
    return frozenset(tok for tok, n in counts.items() if n >= min_count)


def price_band(prices: pd.Series) -> pd.Series:
    """``price:<k>`` with ``2**k <= price < 2**(k+1)`` (prices below 1 in band 0); NaN for no price."""
    p = pd.to_numeric(prices, errors="coerce").astype(float)
    band = np.floor(np.log2(np.maximum(p.where(p > 0).to_numpy(), 1.0)))
    out = pd.Series("price:" + pd.Series(band, index=p.index).astype("Int64").astype(str), index=p.index)
    return out.where(p > 0)


def _long(rows: np.ndarray, features: pd.Series, weights: np.ndarray | float = 1.0) -> pd.DataFrame:
    frame = pd.DataFrame({"row": rows, "feature": features.to_numpy(dtype=object), "weight": weights})
    return frame[frame["feature"].notna()]


def _prefixed(values: pd.Series, prefix: str) -> pd.Series:
    text = values.astype("string").str.strip()
    return (prefix + ":" + text).where(text.notna() & (text != ""))


def user_attributes(users: pd.DataFrame, value_segment: pd.Series | None = None) -> pd.DataFrame:
    """Long-format attribute features (``row, feature, weight``) of each row of ``users``.

    ``value_segment`` is indexed by ``user_id``; users without one get no segment feature.
    """
    require_columns(users, USER_COLUMNS, "users")
    rows = np.arange(len(users))
    parts = [_long(rows, _prefixed(users[col], prefix)) for col, prefix in USER_ATTRIBUTES.items()]
    if value_segment is not None:
        seg = pd.Series(users[COL_USER].map(value_segment).to_numpy(), dtype=object)
        parts.append(_long(rows, _prefixed(seg, "segment")))
    return pd.concat(parts, ignore_index=True)


def item_attributes(products: pd.DataFrame, vocabulary: frozenset[str]) -> pd.DataFrame:
    """Long-format attribute features of each row of ``products``.

    Category and price band weigh 1 each; the name's in-vocabulary tokens share a
    weight of 1, so a long name does not drown the other attributes.
    """
    require_columns(products, ITEM_COLUMNS, "products")
    rows = np.arange(len(products))
    parts = [
        _long(rows, _prefixed(products["category"], "category")),
        _long(rows, price_band(products["price"].reset_index(drop=True))),
    ]
    tokens = pd.Series([[t for t in dict.fromkeys(tokenize(n)) if t in vocabulary] for n in products["name"]])
    counts = tokens.str.len().to_numpy()
    exploded = tokens.explode()
    exploded = exploded[exploded.notna()]
    tok_rows = exploded.index.to_numpy()
    parts.append(_long(tok_rows, "token:" + exploded.astype(str), 1.0 / counts[tok_rows]))
    return pd.concat(parts, ignore_index=True)


def keep_features(attributes: pd.DataFrame, groups: Iterable[str], prefixes: dict[str, str]) -> pd.DataFrame:
    """The rows of a long attribute frame whose feature belongs to one of ``groups`` (names of ``prefixes``)."""
    wanted = {prefixes[g] for g in groups}
    prefix = attributes["feature"].astype(str).str.split(":", n=1).str[0]
    return attributes[prefix.isin(wanted).to_numpy()]


# --- feature rows ------------------------------------------------------------
@dataclass
class FeatureSpace:
    """Columns of one side's LightFM feature matrix: identity features and attribute features."""

    ids: pd.Index  # ids with an identity feature, in the model's row order
    identity_cols: np.ndarray
    attributes: pd.Index  # attribute feature names
    attribute_cols: np.ndarray
    n_features: int

    @classmethod
    def from_mapping(cls, id_map: dict, feature_map: dict) -> FeatureSpace:
        """From a fitted ``lightfm.data.Dataset``'s id and feature mappings."""
        ids = sorted(id_map, key=id_map.__getitem__)
        attrs = [f for f in feature_map if f not in id_map]
        return cls(
            ids=pd.Index(ids),
            identity_cols=np.array([feature_map[i] for i in ids], dtype=np.int64),
            attributes=pd.Index(attrs, dtype=object),
            attribute_cols=np.array([feature_map[f] for f in attrs], dtype=np.int64),
            n_features=len(feature_map),
        )

    def known(self, ids: Iterable) -> np.ndarray:
        return self.ids.get_indexer(pd.Index(ids)) >= 0

    def matrix(self, ids: Iterable, attributes: pd.DataFrame) -> sp.csr_matrix:
        """Feature rows (float32 CSR, L1-normalised) for ``ids``; ``attributes`` rows index into ``ids``.

        Unknown ids get no identity feature and unknown attribute names are dropped;
        a row left with nothing is all zeros (its representation is the zero vector).
        """
        pos = self.ids.get_indexer(pd.Index(ids))
        n = len(pos)
        known = np.flatnonzero(pos >= 0)
        acol = self.attributes.get_indexer(pd.Index(attributes["feature"], dtype=object))
        keep = acol >= 0
        rows = np.concatenate([known, attributes["row"].to_numpy(dtype=np.int64)[keep]])
        cols = np.concatenate([self.identity_cols[pos[known]], self.attribute_cols[acol[keep]]])
        vals = np.concatenate([np.ones(len(known)), attributes["weight"].to_numpy(dtype=float)[keep]])
        mat = sp.csr_matrix((vals, (rows, cols)), shape=(n, self.n_features), dtype=np.float64)
        sums = np.asarray(mat.sum(axis=1)).ravel()
        scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        return sp.csr_matrix(sp.diags(scale) @ mat, dtype=np.float32)
