"""The nightly promotion gate: a trained model, the LIVE model and popularity on the hold-out day, measured
as users would get their lists, and the rule that says whether the new model is better.

Protocol (one split, the same for every model):
- training window: the candidate's ``[day - window_days + 1, day)``;
- users: those with training interactions in that window and a positive event on ``day``;
- truth: products they had a positive event on (``recsys.constants.POSITIVE_EVENTS``) on ``day``;
- candidates: every product of the catalogue, minus those the user had a "seen" event on before ``day``
  (``RECSYS_EXCLUDE_SEEN``, by default PURCHASE; also dropped from the truth; users left without truth
  are dropped);
- lists: the new and the LIVE model's scores through the production re-ranking (precompute's
  popular-products boost, stock and diversity, then serving's rules with the session each user had before
  ``day``: ``recsys.evaluation.reranking``), the same lists model selection compares: one meaning of
  "better"; popularity's list as it is (what a user the model cannot serve gets from the fallback tiers);
- metrics: ``recsys.evaluation.measure`` (the one engine), at ``k``.

``judge``: the new model wins when its NDCG@10 beats popularity's and the LIVE model's times
``1 + RECSYS_PROMOTION_MARGIN`` (or there is no LIVE model).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, select

from recsys import registry
from recsys.artifacts import ArtifactStore
from recsys.constants import COL_ITEM, COL_USER, POSITIVE_EVENTS, PURCHASE
from recsys.data.frames import load_products, load_training_frame, load_users, load_window_events
from recsys.db.models import UserEvent
from recsys.evaluation.baselines import PopularityModel
from recsys.evaluation.measure import evaluate_model
from recsys.evaluation.models import HybridConfig, reranker
from recsys.evaluation.split import Split, build_split
from recsys.families import ScoringWindow, family_of
from recsys.settings import DEFAULTS, Settings
from recsys.timeutil import day_bounds_ms, day_start_ms

HEADLINE_METRIC = "ndcg@10"


class GateError(ValueError):
    """The gate cannot judge (no metrics yet)."""


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


def holdout_split(engine: Engine, day: dt.date, window_days: int, settings: Settings) -> tuple[Split, pd.DataFrame]:
    """The split of hold-out ``day`` (every product a candidate) and the frame of the training window."""
    first = day - dt.timedelta(days=window_days - 1)
    frame = load_training_frame(engine, first, day)
    if frame.empty:
        last = day - dt.timedelta(days=1)
        raise ValueError(f"no training interactions between {first} and {last}: nothing to evaluate against")
    positives, bought = load_holdout(engine, day, settings.exclude_seen_types)
    split = build_split(frame, positives, bought, load_users(engine), load_products(engine))
    split.history = ScoringWindow(engine, day_start_ms(day), window_days)  # sequences before the day
    if len(split.users) == 0:
        raise ValueError(f"no hold-out users on {day}: no positive events by users of the training window")
    return split, frame


def evaluate_candidate(engine: Engine, store: ArtifactStore, day: dt.date, model_id: str, k: int = 10,
                       settings: Settings = DEFAULTS) -> dict:
    """Metrics of ``model_id``, the LIVE model and popularity on hold-out ``day``, each measured on the
    re-ranked lists users would get; stored on the registry row."""
    row = registry.get_model(engine, model_id)
    window_days = int((row.params or {}).get("window_days", settings.training_window_days))
    new = family_of(row.model_type).load(store, model_id, row.artifacts)
    split, frame = holdout_split(engine, day, window_days, settings)
    first = day - dt.timedelta(days=window_days - 1)
    events = load_window_events(engine, first, day)
    rerank = reranker(split, events, day_start_ms(day), HybridConfig.from_settings(settings), settings)
    live = registry.get_live(engine)
    live_id = live.model_id if live is not None and live.model_id != model_id else None
    seed = settings.seed

    def metrics(model, served: bool = True) -> dict:
        return evaluate_model(model, split, k, seed=seed, rerank=rerank if served else None)

    results = {
        "new": metrics(new),
        "live": metrics(family_of(live.model_type).load(store, live_id, live.artifacts)) if live_id else None,
        "popularity": metrics(PopularityModel.fit(frame), served=False),
        "protocol": {
            "day": day.isoformat(), "k": k, "train_days": [first.isoformat(), (day - dt.timedelta(days=1)).isoformat()],
            "users": len(split.users), "items": len(split.products), "positives": split.n_positives,
            "excluded_seen": int(sum(len(x) for x in split.excluded)), "exclude_seen": list(settings.exclude_seen_types),
            "positive_events": list(POSITIVE_EVENTS), "live_model_id": live_id,
            "lists": "new and live re-ranked as served (precompute's boost, stock and diversity, serving's rules); "
                     "popularity as it is",
        },
    }
    registry.set_metrics(engine, model_id, results)
    return results


def _headline(metrics: dict | None, name: str) -> float | None:
    block = (metrics or {}).get(name)
    if not block or block.get(HEADLINE_METRIC) is None:
        return None
    return float(block[HEADLINE_METRIC])


def judge(metrics: dict, margin: float) -> tuple[bool, str]:
    """Pure rule: (wins, why). Wins when new > live * (1 + margin) (or no live) and new > popularity."""
    new = _headline(metrics, "new")
    if new is None:
        raise GateError(f"metrics have no new[{HEADLINE_METRIC!r}]: run evaluate before deciding")
    live, popularity = _headline(metrics, "live"), _headline(metrics, "popularity")
    if popularity is not None and not new > popularity:
        return False, f"{HEADLINE_METRIC} {new:.4f} does not beat popularity {popularity:.4f}"
    if live is None:
        return True, f"{HEADLINE_METRIC} {new:.4f}, no LIVE model to beat"
    needed = live * (1 + margin)
    if not new > needed:
        return False, f"{HEADLINE_METRIC} {new:.4f} <= LIVE {live:.4f} * (1 + {margin:g}) = {needed:.4f}"
    return True, f"{HEADLINE_METRIC} {new:.4f} > LIVE {live:.4f} * (1 + {margin:g})"
