"""Precompute what the API serves from Redis: per-user lists by segment, and the shared lists.

A segment is ``region|device|value`` (``"EU|mobile|regular"``). For one segment:
its users active in ``[day - active_days + 1, day]`` are scored in blocks
(``user_vectors @ item_vectors.T``, top ``CANDIDATE_FACTOR * recs_per_user`` by
argpartition), products they already saw are dropped (``RECSYS_EXCLUDE_SEEN``: by default
the ones they PURCHASEd), products popular in
the trending window get a boost (``rerank_trending_weight``), the list is
re-ranked (per-category cap, out-of-stock last), cut to ``recs_per_user`` and
each kept item gets its reason. Every key is written whole with one SET in pipelined chunks,
so a crash half-way leaves each user with the old complete list or the new one.
Key formats and value encodings: ``recsys.keys`` and docs/architecture.md; the final answers
(``answer:{user_id}``) of users with a session: ``recsys.pipeline.answers``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, or_, select

from recsys import keys, registry
from recsys.artifacts import ArtifactStore
from recsys.constants import (
    CLICK, COL_ITEM, COL_USER, DEVICES, KEY_PRODUCT_EMBEDDING, KEY_USER_EMBEDDING,
    PURCHASE, REGIONS, VALUE_SEGMENTS, VIEW,
)
from recsys.db.models import User, UserEvent
from recsys.model.features import value_segments
from recsys.model.hybrid import HybridModel
from recsys.pipeline.answers import serving_context, write_block
from recsys.pipeline.lists import load_catalog, read_frame, window_ms, write_lists, write_json
from recsys.ranking.reasons import SOURCE_MODEL, ReasonContext, reason_for
from recsys.ranking.rerank import CANDIDATE_FACTOR, Candidate, precompute_rows
from recsys.settings import Settings, get_settings
from recsys.timeutil import ms_to_datetime

log = logging.getLogger(__name__)
SEGMENT_SEP = "|"
BROWSED = (VIEW, CLICK)  # recent events whose categories explain a list ("Because you viewed ...")
_US = {"US", "CA"}
_EU = set("AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI SK".split())
_APAC = set("AU CN HK ID IN JP KR MY NZ PH SG TH TW VN".split())
_MOBILE = {"mobile", "phone", "smartphone", "tablet", "ios", "android"}


class PrecomputeError(RuntimeError):
    """Precompute cannot run (no LIVE model, unknown segment, no events)."""


# --- segments (pure) ------------------------------------------------------------
def region_of(country: str | None) -> str:
    """US / EU / APAC / OTHER from an ISO country code (missing or unknown: OTHER)."""
    code = country.strip().upper() if isinstance(country, str) else ""
    return "US" if code in _US else "EU" if code in _EU else "APAC" if code in _APAC else "OTHER"


def device_of(device: str | None) -> str:
    """mobile (phones, tablets) or desktop (anything else, also missing)."""
    return "mobile" if isinstance(device, str) and device.strip().lower() in _MOBILE else "desktop"


def segment_of(country: str | None, device: str | None, value: str) -> str:
    """``region|device|value``, e.g. ``"EU|mobile|regular"``."""
    if value not in VALUE_SEGMENTS:
        raise ValueError(f"value segment must be one of {VALUE_SEGMENTS}, not {value!r}")
    return SEGMENT_SEP.join((region_of(country), device_of(device), value))


def parse_segment(segment: str) -> tuple[str, str, str]:
    parts = tuple(segment.split(SEGMENT_SEP))
    if len(parts) != 3 or parts[0] not in REGIONS or parts[1] not in DEVICES or parts[2] not in VALUE_SEGMENTS:
        raise PrecomputeError(
            f"bad segment {segment!r}: expected region|device|value with region in {REGIONS}, "
            f"device in {DEVICES}, value in {VALUE_SEGMENTS}"
        )
    return parts  # type: ignore[return-value]


# --- reading ----------------------------------------------------------------------
def active_users(engine: Engine, day: dt.date, active_days: int, settings: Settings) -> pd.DataFrame:
    """Users with events in the active window: user columns, ``value_segment`` and ``segment``."""
    start, end = window_ms(day, active_days)
    e, u = UserEvent, User
    ids = select(e.user_id).distinct().where(e.timestamp >= start, e.timestamp < end, e.user_id.is_not(None))
    ids = ids.subquery()
    stmt = select(ids.c.user_id, u.country, u.language, u.device_type).outerjoin(u, u.user_id == ids.c.user_id)
    users = read_frame(engine, stmt.order_by(ids.c.user_id), [COL_USER, "country", "language", "device_type"])
    p_start, _ = window_ms(day, settings.training_window_days)
    bought = read_frame(engine, select(e.user_id, e.event_type, e.price).where(
        e.event_type == PURCHASE, e.timestamp >= p_start, e.timestamp < end, e.user_id.is_not(None)
    ), [COL_USER, "event_type", "price"])
    users["value_segment"] = value_segments(bought, users).to_numpy()
    users["segment"] = [segment_of(c, d, v) for c, d, v in
                        zip(users["country"], users["device_type"], users["value_segment"])]
    return users


def active_segments(engine: Engine, day: dt.date, active_days: int | None = None,
                    settings: Settings | None = None) -> list[str]:
    """Segments with at least one user active in ``[day - active_days + 1, day]``, sorted."""
    settings = settings or get_settings()
    users = active_users(engine, day, active_days or settings.active_days, settings)
    return sorted(users["segment"].unique().tolist())


def _history(engine: Engine, user_ids: list[int], day: dt.date, recent_days: int,
             seen_types: tuple[str, ...]) -> pd.DataFrame:
    """Seen events (``seen_types``) up to the end of ``day`` and recent VIEW/CLICKs of these users
    (``recent``: within the last ``recent_days``)."""
    e = UserEvent
    recent, end = window_ms(day, recent_days)
    stmt = select(e.user_id, e.product_id, e.event_type, (e.timestamp >= recent).label("recent")).where(
        e.user_id.in_(user_ids), e.timestamp < end, e.product_id.is_not(None),
        or_(e.event_type.in_(seen_types), (e.event_type.in_(BROWSED)) & (e.timestamp >= recent)),
    )
    history = read_frame(engine, stmt, [COL_USER, COL_ITEM, "event_type", "recent"])
    return history.astype({"recent": bool})


# --- scoring ------------------------------------------------------------------------
@dataclass
class Scorer:
    """One model ready to score: item vectors and product attributes in catalogue order."""

    model_id: str
    is_live: bool
    model: HybridModel
    products: pd.DataFrame
    item_vectors: np.ndarray
    settings: Settings

    @property
    def category_codes(self) -> np.ndarray:
        return pd.factorize(self.products["category"].astype(str))[0]

    @property
    def popularity(self) -> np.ndarray:
        """Events per product in the trending window (``load_catalog``), catalogue order."""
        return self.products["popularity"].to_numpy(dtype=np.int64)

    @classmethod
    def load(cls, engine: Engine, store: ArtifactStore, day: dt.date, model_id: str | None,
             settings: Settings, as_live: bool = False) -> Scorer:
        """The LIVE model (or ``model_id``), its files verified; ``as_live`` writes a non-LIVE model's
        lists to the LIVE keys (a rollback or promotion precomputes before it switches the registry)."""
        live = registry.get_live(engine)
        if model_id is None:
            if live is None:
                raise PrecomputeError("no LIVE model to precompute with: train and promote one first")
            model_id = live.model_id
        row = registry.get_model(engine, model_id)  # UnknownModelError for a wrong id
        model = HybridModel.load(store, model_id, row.artifacts)  # ArtifactIntegrityError for an altered file
        products = load_catalog(engine, day, settings)
        if products.empty:
            raise PrecomputeError("the catalogue is empty: nothing to recommend")
        is_live = as_live or (live is not None and live.model_id == model_id)
        return cls(model_id, is_live, model, products, model.item_vectors(products), settings)

    def recs_key(self, user_id: int) -> str:
        return keys.recs_key(user_id, None if self.is_live else self.model_id)


def top_matrix(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indexes of the ``n`` best scores, best first, and those scores."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def top_candidates(scores: np.ndarray, n: int) -> list[np.ndarray]:
    """Per row, the column indexes of the ``n`` best finite scores, best first."""
    best, best_scores = top_matrix(scores, n)
    return [row[np.isfinite(s)] for row, s in zip(best, best_scores)]


def _mask_seen(scores: np.ndarray, users: pd.DataFrame, products: pd.DataFrame, history: pd.DataFrame,
               seen_types: tuple[str, ...]) -> None:
    """Set -inf (in place) where a user already had a ``seen_types`` event on the product (RECSYS_EXCLUDE_SEEN)."""
    col = pd.Series(np.arange(len(products)), index=products[COL_ITEM])
    row = pd.Series(np.arange(len(users)), index=users[COL_USER])
    seen = history[history["event_type"].isin(seen_types) & history[COL_ITEM].isin(col.index)]
    scores[row[seen[COL_USER]].to_numpy(), col[seen[COL_ITEM]].to_numpy()] = -np.inf


def _viewed_categories(history: pd.DataFrame, products: pd.DataFrame) -> dict[int, frozenset[str]]:
    browsed = history["event_type"].isin(BROWSED) & (history["recent"] if "recent" in history else True)
    viewed = history[browsed].merge(products[[COL_ITEM, "category"]], on=COL_ITEM)
    return viewed.groupby(COL_USER)["category"].agg(lambda c: frozenset(map(str, c))).to_dict()


def _user_lists(scorer: Scorer, users: pd.DataFrame, vectors: np.ndarray,
                history: pd.DataFrame) -> list[list[Candidate]]:
    """Re-ranked lists (with reasons) of a block of users; seen products (RECSYS_EXCLUDE_SEEN) never appear.

    The candidates' scores get the popular-products boost (``boost_popular_rows``), then the
    list is re-ranked with the stock and diversity rules (``rerank_rows``, the batch form of
    ``rerank``); Candidates are built for the kept items only.
    """
    s, products = scorer.settings, scorer.products
    scores = vectors @ scorer.item_vectors.T
    _mask_seen(scores, users, products, history, s.exclude_seen_types)
    cols, top_scores = top_matrix(scores, CANDIDATE_FACTOR * s.recs_per_user)
    cols, top_scores, kept_rows = precompute_rows(
        cols, top_scores, scorer.popularity, s.rerank_trending_weight, scorer.category_codes,
        products["in_stock"].to_numpy(dtype=bool), s.max_per_category, s.recs_per_user)
    np.put_along_axis(scores, cols, top_scores, axis=1)  # the cached scores carry the boost
    viewed = _viewed_categories(history, products)
    ids = products[COL_ITEM].tolist()
    attrs = list(zip(products["category"].astype(str).tolist(), products["in_stock"].tolist(),
                     products["margin"].tolist(), products["is_new"].tolist(), [""] * len(products),
                     products["age_days"].tolist(), products["popularity"].tolist()))
    out = []
    for i, (uid, kept) in enumerate(zip(users[COL_USER].tolist(), kept_rows)):
        items = [Candidate(ids[j], score, *attrs[j]) for j, score in zip(kept.tolist(), scores[i, kept].tolist())]
        ctx = ReasonContext(viewed_categories=viewed.get(uid, frozenset()))
        for item in items:  # objects built just above: set the reason in place rather than copy
            item.reason = reason_for(item, SOURCE_MODEL, ctx)
        out.append(items)
    return out


def recs_payload(items: list[Candidate], model_id: str, updated_at: str) -> dict:
    """The JSON value of ``recs:{user_id}`` (``recsys.keys.recs_payload``)."""
    return keys.recs_payload([c.product_id for c in items], [round(c.score, 6) for c in items],
                             [c.reason for c in items], model_id, updated_at)


def embedding_payload(vector: np.ndarray, model_id: str) -> dict:
    """The JSON value of ``embedding:{user_id}`` and ``embedding:product:{product_id}``."""
    return {"model_version": model_id, "vector": np.round(vector.astype(float), 6).tolist()}


def recommend_block(engine: Engine, day: dt.date, scorer: Scorer,
                    block: pd.DataFrame) -> tuple[np.ndarray, list[list[Candidate]]]:
    """The user vectors and re-ranked lists of a block of ``active_users`` rows, as cached (nothing written)."""
    vectors = scorer.model.user_vectors(block, block.set_index(COL_USER)["value_segment"])
    s = scorer.settings
    history = _history(engine, block[COL_USER].tolist(), day, s.trending_days, s.exclude_seen_types)
    return vectors, _user_lists(scorer, block, vectors, history)


def score_users(engine: Engine, redis, day: dt.date, scorer: Scorer, users: pd.DataFrame) -> int:
    """Score, re-rank and write the lists (and LIVE embeddings) of ``users``; returns users written."""
    s, ttl = scorer.settings, scorer.settings.recs_ttl_seconds
    context = serving_context(engine, redis, s)  # the final answers' context (None: answers off)
    for start in range(0, len(users), s.precompute_block_size):
        block = users.iloc[start : start + s.precompute_block_size]
        ids = block[COL_USER].tolist()
        vectors, lists = recommend_block(engine, day, scorer, block)
        updated = dt.datetime.now(dt.timezone.utc).isoformat()
        write_block(redis, [scorer.recs_key(uid) for uid in ids], ids,
                    [keys.encode_recs(recs_payload(items, scorer.model_id, updated)) for items in lists], ttl, context,
                    answer_model=None if scorer.is_live else scorer.model_id)
        if scorer.is_live:  # embedding:{user_id} belongs to the LIVE model only
            write_json(redis, ((KEY_USER_EMBEDDING.format(user_id=uid), embedding_payload(vec, scorer.model_id))
                               for uid, vec in zip(ids, vectors)), ttl=ttl)
    return len(users)


# --- the nightly steps ----------------------------------------------------------------
def precompute_segment(engine: Engine, store: ArtifactStore, redis, day: dt.date, segment: str,
                       model_id: str | None = None, settings: Settings | None = None) -> dict:
    """Write ``recs:{user_id}`` for every active user of ``segment`` with the LIVE model (or ``model_id``)."""
    parse_segment(segment)
    settings = settings or get_settings()
    started = time.perf_counter()
    scorer = Scorer.load(engine, store, day, model_id, settings)
    users = active_users(engine, day, settings.active_days, settings)
    n = score_users(engine, redis, day, scorer, users[users["segment"] == segment].reset_index(drop=True))
    seconds = time.perf_counter() - started
    log.info("precomputed %d users of %s with %s in %.2fs", n, segment, scorer.model_id, seconds)
    return {"segment": segment, "users": n, "model_id": scorer.model_id, "seconds": round(seconds, 3)}


def precompute_lists(engine: Engine, store: ArtifactStore, redis, day: dt.date,
                     settings: Settings | None = None) -> dict:
    """Trending, new arrivals, bestsellers per category, categories and LIVE product embeddings."""
    settings = settings or get_settings()
    live = registry.get_live(engine)
    return _write_lists(engine, redis, day, settings,
                        Scorer.load(engine, store, day, live.model_id, settings) if live else None)


def _write_lists(engine: Engine, redis, day: dt.date, settings: Settings, live: Scorer | None) -> dict:
    if live is None:
        log.warning("no LIVE model: product embeddings not written")
        return {**write_lists(engine, redis, day, settings), "product_embeddings": 0, "model_id": None}
    out = write_lists(engine, redis, day, settings, catalog=live.products)
    n = write_json(redis, ((KEY_PRODUCT_EMBEDDING.format(product_id=pid), embedding_payload(vec, live.model_id))
                           for pid, vec in zip(live.products[COL_ITEM].tolist(), live.item_vectors)),
                   ttl=settings.recs_ttl_seconds)
    return {**out, "product_embeddings": n, "model_id": live.model_id}


def latest_event_day(engine: Engine, now_ms: int | None = None, skew_ms: int | None = None) -> dt.date:
    """The day of the newest event that is not in the future (beyond ``skew_ms``, the events' clock skew
    setting): one bad timestamp cannot make a manual promote precompute for a day still to come."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if skew_ms is None:
        skew_ms = get_settings().event_clock_skew_seconds * 1000
    with engine.connect() as conn:
        last = conn.execute(select(func.max(UserEvent.timestamp)).where(UserEvent.timestamp <= now_ms + skew_ms)).scalar()
    if last is None:
        raise PrecomputeError("no events in user_events: nothing to precompute")
    return ms_to_datetime(int(last)).date()


def precompute_all(engine: Engine, store: ArtifactStore, redis, day: dt.date | None = None,
                   model_id: str | None = None, settings: Settings | None = None, as_live: bool = False) -> dict:
    """The shared lists and every active segment (for a manual promote or rollback: ``as_live`` writes
    ``model_id``'s lists to the LIVE keys before the registry points at it)."""
    settings = settings or get_settings()
    day = day or latest_event_day(engine, skew_ms=settings.event_clock_skew_seconds * 1000)
    started = time.perf_counter()
    scorer = Scorer.load(engine, store, day, model_id, settings, as_live=as_live)
    if scorer.is_live:
        lists = _write_lists(engine, redis, day, settings, scorer)
    else:
        lists = precompute_lists(engine, store, redis, day, settings)
    users = active_users(engine, day, settings.active_days, settings)
    segments = {seg: score_users(engine, redis, day, scorer, group.reset_index(drop=True))
                for seg, group in users.groupby("segment", sort=True)}
    return {"day": day.isoformat(), "model_id": scorer.model_id, "lists": lists, "segments": segments,
            "users": int(sum(segments.values())), "seconds": round(time.perf_counter() - started, 3)}
