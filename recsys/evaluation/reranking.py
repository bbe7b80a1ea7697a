"""The production re-ranking, applied offline to the hybrid's lists as a user would get them.

1. Precompute: the best ``CANDIDATE_FACTOR x recs_per_user`` products (seen products masked),
   then ``recsys.ranking.rerank.precompute_rows``, the function ``recsys.pipeline.precompute`` calls:
   the popular-products boost (weight ``trending_weight``, popularity = events per product over the
   last ``trending_days`` before the cut-off), out-of-stock products last, at most
   ``max_per_category`` per category per block, cut to ``recs_per_user``.
2. Serving (Tier 1): ``recsys.ranking.rerank.rerank`` with the rules of the settings
   (``recsys.serving.tiers.rerank_config``) and the user's session as the API seeds it from the
   latest ``HISTORY_EVENTS`` events before the cut-off (``recsys.serving.session_state.seed_fields``):
   cross-sell, browsed categories, margin, freshness (product age at the cut-off), stock, diversity.

Not reproduced offline: the cross-sell candidates serving adds from bestseller lists, and the
fallback tiers for users below ``personalized_min_events`` (the table measures the model's list).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, HISTORY_EVENTS, MS_PER_DAY
from recsys.ranking.rerank import CANDIDATE_FACTOR, Candidate, RerankConfig, precompute_rows, rerank
from recsys.settings import DEFAULTS, Settings



def recent_counts(events: pd.DataFrame, products: pd.DataFrame, now_ms: int, days: int) -> np.ndarray:
    """Events per product (``products`` order) in ``[now - days, now)``."""
    recent = events[(events[COL_TIMESTAMP] < now_ms) & (events[COL_TIMESTAMP] >= now_ms - days * MS_PER_DAY)]
    counts = recent.groupby(COL_ITEM).size()
    return counts.reindex(products[COL_ITEM].to_numpy()).fillna(0).to_numpy(dtype=np.int64)


def _age_days(products: pd.DataFrame, now_ms: int) -> np.ndarray:
    if "created_at" not in products:
        return np.full(len(products), np.nan)
    created = pd.to_datetime(products["created_at"], utc=True)
    ms = ((created - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=float)
    return np.maximum(0.0, (now_ms - ms) / MS_PER_DAY)


def sessions(events: pd.DataFrame, user_ids, categories: pd.Series) -> dict[int, tuple[tuple, list]]:
    """Per user: (browsed categories, purchased categories) of the session the API would seed."""
    from recsys.serving.session_state import parse_session, seed_fields

    mine = events[events[COL_USER].isin(user_ids)].sort_values(COL_TIMESTAMP, ascending=False, kind="stable")
    latest = mine.groupby(COL_USER, sort=False).head(HISTORY_EVENTS)
    category_of = categories.to_dict().get
    out = {}
    for user, rows in latest.groupby(COL_USER, sort=False):
        recent = list(zip(rows[COL_ITEM].tolist(), rows[COL_EVENT_TYPE].tolist()))
        state = parse_session(seed_fields(recent, lambda pid: category_of(pid) or ""))
        bought = [c for c in dict.fromkeys(category_of(p) for p in state.purchased) if c]
        out[int(user)] = (state.categories, bought)
    return out


class ServingReranker:
    """``rerank(users, columns, scores) -> rows``: precompute's then serving's re-ranking of each list.

    ``candidates``: how many best-scored products it needs per user (as precompute scores)."""

    def __init__(self, products: pd.DataFrame, history: pd.DataFrame, now_ms: int, rules: RerankConfig,
                 user_ids, trending_weight: float = 0.0, trending_days: int = 7, recs_per_user: int = 100,
                 new_product_days: int = 14) -> None:
        self.rules, self.trending_weight = rules, trending_weight
        self.recs_per_user, self.new_product_days = recs_per_user, new_product_days
        self.candidates = CANDIDATE_FACTOR * recs_per_user
        self.popularity = recent_counts(history, products, now_ms, trending_days)
        self.categories = products["category"].astype(str).to_numpy()
        self.codes = pd.factorize(self.categories)[0].astype(np.int64)
        self.in_stock = products["in_stock"].fillna(True).to_numpy(dtype=bool) if "in_stock" in products \
            else np.ones(len(products), dtype=bool)
        self.margin = products["margin"].fillna(0.0).to_numpy(dtype=float) if "margin" in products \
            else np.zeros(len(products))
        self.age = _age_days(products, now_ms)
        by_id = pd.Series(self.categories, index=products[COL_ITEM].to_numpy())
        self.sessions = sessions(history, user_ids, by_id[~by_id.index.duplicated()])

    def _candidate(self, j: int, score: float) -> Candidate:
        age = None if np.isnan(self.age[j]) else float(self.age[j])
        return Candidate(int(j), score, self.categories[j], bool(self.in_stock[j]), float(self.margin[j]),
                         age is not None and age < self.new_product_days, "", age, int(self.popularity[j]))

    def __call__(self, users: pd.DataFrame, cols: np.ndarray, scores: np.ndarray) -> list[np.ndarray]:
        cols, scores, kept_rows = precompute_rows(cols, scores, self.popularity, self.trending_weight, self.codes,
                                                  self.in_stock, self.rules.max_per_category, self.recs_per_user)
        score_of = [dict(zip(c.tolist(), s.tolist())) for c, s in zip(cols, scores)]
        out = []
        for i, (user, kept) in enumerate(zip(users[COL_USER].tolist(), kept_rows)):
            browsed, bought = self.sessions.get(int(user), ((), []))
            items = [self._candidate(j, score_of[i][j]) for j in kept.tolist()]
            ranked = rerank(items, self.rules, session_categories=browsed, purchased_categories=bought)
            out.append(np.array([c.product_id for c in ranked], dtype=np.int64))
        return out


def serving_rules(max_per_category: int | None, freshness_weight: float, new_days: int,
                  settings: Settings = DEFAULTS) -> RerankConfig:
    """The serving rules of the settings with the hybrid configuration's tunable knobs."""
    from recsys.serving.tiers import rerank_config

    rules = rerank_config(settings)
    return dataclasses.replace(rules, max_per_category=max_per_category, freshness_weight=freshness_weight,
                               new_days=new_days)
