"""The evaluated users of a split and what is counted for each: ``Split`` (one part of an
``protocol.EvalSplit``: its evaluated users x a set of candidate products) and ``build_split``.

- users: those with training interactions and a positive event in the test;
- truth: products they had a positive event on in the test (positions in ``products``);
- excluded: products the user had a "seen" event on before the cut-off (``RECSYS_EXCLUDE_SEEN``), neither
  candidates nor truth; users left without truth are dropped;
- ``history``: where a family that scores from users' recent events reads them (``recsys.families.base``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.constants import COL_ITEM, COL_USER
from recsys.data.frames import USER_COLUMNS, align_rows, value_segments
from recsys.evaluation.baselines import PopularityModel
from recsys.families.base import History


@dataclass
class Split:
    users: pd.DataFrame  # USER_COLUMNS, one row per evaluated user
    truth: list[np.ndarray]  # relevant product positions (into products) per user
    excluded: list[np.ndarray]  # products each user may not be recommended
    products: pd.DataFrame  # the catalogue, candidate order
    segments: pd.Series  # value segment per user_id, from the training window
    item_popularity: np.ndarray  # (count + 1) / (training users + 1) per product
    history: History | None = None  # users' events before the cut-off (families that read sequences)

    @property
    def n_positives(self) -> int:
        return int(sum(len(t) for t in self.truth))


def _grouped_positions(pairs: pd.DataFrame, users: pd.Index, products: pd.Index) -> list[np.ndarray]:
    """Per user of ``users``: positions in ``products`` of its pairs' products (unknown products dropped)."""
    rows, cols = users.get_indexer(pairs[COL_USER]), products.get_indexer(pairs[COL_ITEM])
    keep = (rows >= 0) & (cols >= 0)
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(len(users) + 1))
    grouped = cols[order]  # once: each user's slice is a view of this one array
    return [grouped[bounds[i] : bounds[i + 1]] for i in range(len(users))]


def build_split(frame: pd.DataFrame, positives: pd.DataFrame, bought: pd.DataFrame,
                users: pd.DataFrame, products: pd.DataFrame) -> Split:
    """Pure: the evaluation split from the training frame, the day's positives and past purchases."""
    products = products.sort_values(COL_ITEM).reset_index(drop=True)
    catalogue = pd.Index(products[COL_ITEM])
    trained = pd.Index(pd.unique(frame[COL_USER]))
    candidates = pd.Index(pd.unique(positives[COL_USER]))
    candidates = candidates[candidates.isin(trained)].sort_values()
    truth = _grouped_positions(positives, candidates, catalogue)
    excluded = _grouped_positions(bought, candidates, catalogue)
    truth = [np.setdiff1d(t, x) for t, x in zip(truth, excluded)]
    keep = np.array([len(t) > 0 for t in truth], dtype=bool)
    ids = candidates[keep]
    eval_users = align_rows(ids, users, COL_USER, USER_COLUMNS)
    counts = PopularityModel.fit(frame).item_scores(products).astype(float)
    return Split(
        users=eval_users,
        truth=[t for t, k in zip(truth, keep) if k],
        excluded=[x for x, k in zip(excluded, keep) if k],
        products=products,
        segments=value_segments(frame, eval_users),
        item_popularity=(counts + 1.0) / (len(trained) + 1.0),
    )
