"""Evaluate a trained model on the temporal hold-out day, next to the LIVE model and popularity.

Protocol (one split, the same for every model):
- training window: the candidate's ``[day - window_days + 1, day)``;
- users: those with training interactions in that window and a positive event on ``day``;
- truth: products they had a positive event on (``recsys.constants.POSITIVE_EVENTS``) on ``day``;
- candidates: every product, minus those the user had a "seen" event on before ``day``
  (``RECSYS_EXCLUDE_SEEN``, by default PURCHASE; also dropped from the truth; users left
  without truth are dropped).
Users are scored in blocks of at most ``BLOCK_CELLS`` scores, so memory stays bounded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from recsys.artifacts import ArtifactStore
from recsys.constants import COL_ITEM, COL_USER, POSITIVE_EVENTS, PURCHASE
from recsys.db.models import UserEvent
from recsys.evaluation import metrics as M
from recsys.evaluation.popularity import PopularityModel
from recsys.families.registry import ScoringWindow, load_model
from recsys.data.frames import USER_COLUMNS, align_rows, value_segments
from recsys.families.hybrid.model import HybridModel
from recsys.families.hybrid.fit import TrainParams
from recsys.data.frames import load_products, load_training_frame, load_users
from recsys.settings import get_settings
from recsys.timeutil import day_bounds_ms, day_start_ms

BLOCK_SIZE = 1024  # users per block at most...
BLOCK_CELLS = 1 << 23  # ...and at most this many (user, product) scores (32 MB of float32) per block


@dataclass
class Split:
    users: pd.DataFrame  # USER_COLUMNS, one row per evaluated user
    truth: list[np.ndarray]  # relevant product positions (into products) per user
    excluded: list[np.ndarray]  # products each user may not be recommended
    products: pd.DataFrame  # the catalogue, candidate order
    segments: pd.Series  # value segment per user_id, from the training window
    item_popularity: np.ndarray  # (count + 1) / (training users + 1) per product

    @property
    def n_positives(self) -> int:
        return int(sum(len(t) for t in self.truth))


def _pairs(engine: Engine, stmt) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(stmt).all(), columns=[COL_USER, COL_ITEM])


def load_holdout(engine: Engine, day: dt.date,
                 seen_types: tuple[str, ...] = (PURCHASE,)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Positive (user, product) pairs of ``day`` and, for those users, products seen before ``day``
    (an event of ``seen_types``)."""
    start, end = day_bounds_ms(day)
    e = UserEvent
    day_users = select(e.user_id).where(e.timestamp >= start, e.timestamp < end, e.event_type.in_(POSITIVE_EVENTS))
    positives = _pairs(engine, select(e.user_id, e.product_id).distinct().where(
        e.timestamp >= start, e.timestamp < end, e.event_type.in_(POSITIVE_EVENTS),
        e.user_id.is_not(None), e.product_id.is_not(None)))
    bought = _pairs(engine, select(e.user_id, e.product_id).distinct().where(
        e.timestamp < start, e.event_type.in_(seen_types), e.user_id.in_(day_users.scalar_subquery()),
        e.product_id.is_not(None)))
    return positives, bought


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


def _scorer(model, split: Split) -> Callable[[pd.DataFrame], np.ndarray]:
    if isinstance(model, HybridModel):
        items = model.item_vectors(split.products)
        return lambda users: model.user_vectors(users, split.segments) @ items.T
    return lambda users: model.score(users, split.products)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def evaluate_model(model, split: Split, k: int = 10, block_size: int = BLOCK_SIZE) -> dict:
    """Ranking metrics of one model on ``split`` (users scored ``block_size`` at a time, fewer for big catalogues)."""
    n_users, n_items = len(split.users), len(split.products)
    if n_users == 0:
        raise ValueError("the evaluation split has no users")
    if not 1 <= k < n_items:
        raise ValueError(f"k must be in [1, {n_items}) for a catalogue of {n_items} products, got {k}")
    block_size = max(1, min(block_size, BLOCK_CELLS // n_items))
    score = _scorer(model, split)
    tops, auc_sum = [], 0.0
    for start in range(0, n_users, block_size):
        stop = min(start + block_size, n_users)
        scores = np.asarray(score(split.users.iloc[start:stop]), dtype=np.float32)
        excluded = split.excluded[start:stop]
        rows = np.repeat(np.arange(stop - start), [len(x) for x in excluded])
        scores[rows, np.concatenate(excluded).astype(np.int64)] = -np.inf
        tops.append(_top_k(scores, k))
        auc_sum += M.auc(split.truth[start:stop], scores) * (stop - start)
    top = np.vstack(tops)
    return {
        f"precision@{k}": M.precision_at_k(split.truth, top, k),
        f"recall@{k}": M.recall_at_k(split.truth, top, k),
        f"ndcg@{k}": M.ndcg_at_k(split.truth, top, k),
        f"map@{k}": M.map_at_k(split.truth, top, k),
        "auc": auc_sum / n_users,
        "coverage": M.catalog_coverage(top, n_items, k),
        "diversity": M.intra_list_diversity(top, split.products["category"].astype(str).to_numpy(), k) if k > 1 else None,
        "novelty": M.novelty(top, split.item_popularity, k),
        "users": n_users,
    }


def _live_model(engine: Engine, store: ArtifactStore, model_id: str, day: dt.date) -> tuple[str | None, object | None]:
    from recsys import registry

    live = registry.get_live(engine)
    if live is None or live.model_id == model_id:
        return None, None
    window = ScoringWindow(engine, day_start_ms(day), get_settings().training_window_days)
    return live.model_id, load_model(store, live, window)  # any family


def evaluate_candidate(engine: Engine, store: ArtifactStore, day: dt.date, model_id: str, k: int = 10) -> dict:
    """Metrics of ``model_id``, the LIVE model and popularity on hold-out ``day``; stored on the registry row."""
    from recsys import registry

    row = registry.get_model(engine, model_id)
    window_days = int((row.params or {}).get("window_days", TrainParams().window_days))
    # any family (recsys.families.registry), or a sequential model reading each user's sequence before the hold-out day
    new = load_model(store, row, ScoringWindow(engine, day_start_ms(day), window_days))
    first, last = TrainParams(window_days=window_days).train_days(day)
    frame = load_training_frame(engine, first, day)
    if frame.empty:
        raise ValueError(f"no training interactions between {first} and {last}: nothing to evaluate against")
    seen = get_settings().exclude_seen_types
    positives, bought = load_holdout(engine, day, seen)
    split = build_split(frame, positives, bought, load_users(engine), load_products(engine))
    if len(split.users) == 0:
        raise ValueError(f"no hold-out users on {day}: no positive events by users of the training window")
    live_id, live = _live_model(engine, store, model_id, day)
    results = {
        "new": evaluate_model(new, split, k),
        "live": evaluate_model(live, split, k) if live is not None else None,
        "popularity": evaluate_model(PopularityModel.fit(frame), split, k),
        "protocol": {
            "day": day.isoformat(), "k": k, "train_days": [first.isoformat(), last.isoformat()],
            "users": len(split.users), "items": len(split.products), "positives": split.n_positives,
            "excluded_seen": int(sum(len(x) for x in split.excluded)), "exclude_seen": list(seen),
            "positive_events": list(POSITIVE_EVENTS), "live_model_id": live_id,
        },
    }
    registry.set_metrics(engine, model_id, results)
    return results
