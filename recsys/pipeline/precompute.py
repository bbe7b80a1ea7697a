"""Precompute what the API serves from Redis: per-user lists by user-hash shard, and the shared lists.

For one shard (``segments.shard_of``, ``RECSYS_PRECOMPUTE_SHARDS`` of them): its
users active in ``[day - active_days + 1, day]`` (those the model knows, for a family
without cold start) are scored in blocks by the model's family scorer (``recsys.families``), products they
already saw are excluded (``RECSYS_EXCLUDE_SEEN``: by default the ones they PURCHASEd) and the top
``CANDIDATE_FACTOR * recs_per_user`` are kept (``Scorer.top``: for a vector model ``topk.fused_top``,
tiles of ``user_vectors @ item_vectors.T`` in threads), products popular in
the trending window get a boost (``rerank_trending_weight``), the list is
re-ranked (per-category cap, out-of-stock last), cut to ``recs_per_user`` and
each kept item gets its reason. Every key is written whole with one SET in pipelined chunks,
so a crash half-way leaves each user with the old complete list or the new one.
Key formats and value encodings: ``recsys.keys`` and docs/architecture.md; the final answers
(``answer:{user_id}``) of users with a session: ``recsys.pipeline.answers``.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, or_, select

from recsys import keys, registry
from recsys.artifacts import ArtifactStore
from recsys.constants import (
    CLICK, COL_ITEM, COL_USER, PURCHASE, REASON_JUST_VIEWED, REASON_LIKE_YOU, REASON_NEW_ARRIVAL,
    REASON_VIEWED_CATEGORY, VIEW,
)
from recsys.keys import KEY_PRODUCT_EMBEDDING, KEY_USER_EMBEDDING
from recsys.db.models import User, UserEvent
from recsys.families import ModelFamily, ScoringWindow, family_of, servable_users
from recsys.families.base import Scorer as FamilyScorer
from recsys.families.vectors.scorer import VectorScorer
from recsys.data.frames import value_segments
from recsys.pipeline.answers import serving_context, write_block
from recsys.pipeline.basket_lists import write_basket_lists
from recsys.pipeline.lists import load_catalog, read_frame, window_ms, write_lists, write_json
from recsys.pipeline.segments import (  # noqa: F401  (segment_of, parse_segment: re-exported)
    PrecomputeError, check_shard, parse_segment, segment_of, shard_of,
)
from recsys.ranking.reasons import NEW_ARRIVAL_MAX_INTERACTIONS
from recsys.ranking.rerank import CANDIDATE_FACTOR, Candidate, precompute_rows
from recsys.settings import DEFAULTS, Settings
from recsys.timeutil import ms_to_datetime

log = logging.getLogger(__name__)
BROWSED = (VIEW, CLICK)  # recent events whose categories explain a list ("Because you viewed ...")


# --- reading ----------------------------------------------------------------------
def active_users(engine: Engine, day: dt.date, active_days: int, settings: Settings) -> pd.DataFrame:
    """Users with events in the active window: user columns, ``value_segment``, ``segment`` and ``shard``."""
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
    users["shard"] = shard_of(users[COL_USER].to_numpy(), settings.precompute_shards).astype(np.int64)
    return users


def active_segments(engine: Engine, day: dt.date, active_days: int | None = None,
                    settings: Settings = DEFAULTS) -> list[str]:
    """Segments with at least one user active in ``[day - active_days + 1, day]``, sorted."""
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
@dataclass(frozen=True)
class CatalogArrays:
    """The columns of a catalogue (``load_catalog``) that every block reads, as arrays in catalogue order."""

    column: pd.Index  # product id -> column (``get_indexer``)
    product_ids: np.ndarray
    codes: np.ndarray  # category code per product (``pd.factorize`` of the category strings)
    code_names: np.ndarray  # category string per code
    category: np.ndarray
    in_stock: np.ndarray
    margin: np.ndarray
    is_new: np.ndarray
    age_days: np.ndarray
    popularity: np.ndarray  # int64 events in the trending window
    fresh: np.ndarray  # a new arrival with few interactions (the "New arrival" reason)

    @classmethod
    def of(cls, products: pd.DataFrame) -> CatalogArrays:
        category = products["category"].astype(str).to_numpy()
        codes, names = pd.factorize(category)
        popularity = products["popularity"].to_numpy(dtype=np.int64)
        is_new = products["is_new"].to_numpy()
        return cls(pd.Index(products[COL_ITEM].to_numpy()), products[COL_ITEM].to_numpy(), codes,
                   np.asarray(names, dtype=object), category, products["in_stock"].to_numpy(),
                   products["margin"].to_numpy(), is_new, products["age_days"].to_numpy(), popularity,
                   is_new.astype(bool) & (popularity < NEW_ARRIVAL_MAX_INTERACTIONS))

    def columns_of(self, product_ids) -> np.ndarray:
        """Columns of ``product_ids`` (-1 for a product not in the catalogue)."""
        return self.column.get_indexer(np.asarray(product_ids))


def _no_users(users: pd.DataFrame, segments=None) -> np.ndarray:
    raise ValueError("this scorer was built from item vectors alone: give the users' vectors to its methods")


@dataclass
class Scorer:
    """One model ready to precompute with: its family's scorer over the catalogue (``recsys.families``) and
    the catalogue's attributes. Built from ``item_vectors`` alone (``model`` None: benchmarks and tests), it
    scores given user vectors as a vector model would."""

    model_id: str
    is_live: bool
    model: object  # a model of recsys.families (None: item_vectors stand for one)
    products: pd.DataFrame
    item_vectors: np.ndarray | None
    settings: Settings
    scorer: FamilyScorer | None = None
    family: ModelFamily | None = None

    def __post_init__(self):
        if self.scorer is None:
            self.scorer = VectorScorer(self.products, self.item_vectors, _no_users)

    @property
    def has_vectors(self) -> bool:
        """Dense user/item vectors exist (``embedding:*`` keys are written)."""
        return self.scorer.item_vectors is not None

    @cached_property
    def catalog(self) -> CatalogArrays:
        """The catalogue's per-product arrays, built once per scorer (not per block: at 1M products the
        strings' factorisation and the id index cost more per block than the block's own top-k)."""
        return CatalogArrays.of(self.products)

    @cached_property
    def names(self) -> dict[int, str]:
        """Product id -> name (the reason "Because you just viewed <name>")."""
        if "name" not in self.products:
            return {}
        return dict(zip(self.products[COL_ITEM].astype(int).tolist(), self.products["name"].astype(str).tolist()))

    @classmethod
    def load(cls, engine: Engine, store: ArtifactStore, day: dt.date, model_id: str | None,
             settings: Settings) -> Scorer:
        """The LIVE model (or ``model_id``), its files verified."""
        live = registry.get_live(engine)
        if model_id is None:
            if live is None:
                raise PrecomputeError("no LIVE model to precompute with: train and promote one first")
            model_id = live.model_id
        row = registry.get_model(engine, model_id)  # UnknownModelError for a wrong id
        family = family_of(row.model_type)
        model = family.load(store, model_id, row.artifacts)  # ArtifactIntegrityError for an altered file
        products = load_catalog(engine, day, settings)
        if products.empty:
            raise PrecomputeError("the catalogue is empty: nothing to recommend")
        # a family scoring from users' recent events reads them up to the end of ``day``
        scorer = model.scorer(products, ScoringWindow(engine, window_ms(day, 1)[1], settings.training_window_days))
        is_live = live is not None and live.model_id == model_id
        return cls(model_id, is_live, model, products, scorer.item_vectors, settings, scorer, family)

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


def _history_pairs(users: pd.DataFrame, catalog: CatalogArrays, history: pd.DataFrame,
                   mask) -> tuple[np.ndarray, np.ndarray]:
    """(user row, product column) of the ``mask`` rows of ``history`` on a block user and a catalogue product."""
    rows = pd.Index(users[COL_USER].to_numpy()).get_indexer(history[COL_USER].to_numpy())
    cols = catalog.columns_of(history[COL_ITEM].to_numpy())
    keep = np.asarray(mask, dtype=bool) & (rows >= 0) & (cols >= 0)
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def _seen_pairs(users: pd.DataFrame, catalog: CatalogArrays, history: pd.DataFrame,
                seen_types: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(user row, product column) of every ``seen_types`` event on a catalogue product (RECSYS_EXCLUDE_SEEN)."""
    return _history_pairs(users, catalog, history, history["event_type"].isin(seen_types).to_numpy())


def _viewed_pairs(users: pd.DataFrame, catalog: CatalogArrays, history: pd.DataFrame) -> np.ndarray:
    """``user row * n_codes + category code`` of the categories each user recently browsed (VIEW/CLICK)."""
    browsed = history["event_type"].isin(BROWSED) & (history["recent"] if "recent" in history else True)
    rows, cols = _history_pairs(users, catalog, history, browsed.to_numpy())
    codes = catalog.codes
    return np.unique(rows * (codes.max(initial=0) + 1) + codes[cols])


def _candidates(scorer: Scorer, users: pd.DataFrame, block,
                history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``CANDIDATE_FACTOR * recs_per_user`` best unseen products, best first (the family scorer's
    ``top``: for a vector model ``topk.fused_top``)."""
    s = scorer.settings
    rows, cols = _seen_pairs(users, scorer.catalog, history, s.exclude_seen_types)
    return scorer.scorer.top(block, CANDIDATE_FACTOR * s.recs_per_user, rows, cols,
                             tile_bytes=s.precompute_tile_mb * 2**20, threads=s.precompute_threads)


def _user_lists(scorer: Scorer, users: pd.DataFrame, vectors: np.ndarray,
                history: pd.DataFrame) -> list[list[Candidate]]:
    """Re-ranked lists (with reasons) of a block of users; seen products (RECSYS_EXCLUDE_SEEN) never appear.

    The candidates' scores get the popular-products boost (``boost_popular_rows``), then the
    list is re-ranked with the stock and diversity rules (``rerank_rows``, the batch form of
    ``rerank``); Candidates are built for the kept items only, with the reasons of
    ``reasons.reason_for`` computed for the whole block at once.
    """
    s, catalog = scorer.settings, scorer.catalog
    cols, top_scores = _candidates(scorer, users, vectors, history)
    codes = catalog.codes
    # re-ranked by candidate slot (row * width + rank) rather than by product: the same keys, so the same order,
    # and each kept item's boosted score is then a plain lookup by slot
    slots = np.arange(cols.size).reshape(cols.shape)
    slot_cols, slot_scores, kept_rows = precompute_rows(
        slots, top_scores, catalog.popularity[cols].ravel(), s.rerank_trending_weight, codes[cols].ravel(),
        catalog.in_stock.astype(bool, copy=False)[cols].ravel(), s.max_per_category, s.recs_per_user)
    boosted = np.empty(cols.size, dtype=top_scores.dtype)  # as the old dense matrix carried them: float32 again
    boosted[slot_cols.ravel()] = slot_scores.ravel()
    lengths = np.fromiter(map(len, kept_rows), dtype=np.int64, count=len(kept_rows))
    kept_slots = np.concatenate(kept_rows) if kept_rows else np.zeros(0, dtype=np.int64)
    row, kept = kept_slots // max(cols.shape[1], 1), cols.ravel()[kept_slots]
    scores = boosted[kept_slots]
    reasons = _reasons(catalog, _viewed_pairs(users, catalog, history), row, kept)
    reasons = _just_viewed_reasons(scorer, users, row, reasons)
    columns = [a[kept].tolist() for a in (catalog.in_stock, catalog.margin, catalog.is_new)]
    ends = np.cumsum(lengths).tolist()
    with _gc_paused():
        flat = list(map(Candidate, catalog.product_ids[kept].tolist(), scores.tolist(),
                        catalog.category[kept].tolist(), *columns, reasons, catalog.age_days[kept].tolist(),
                        catalog.popularity[kept].tolist()))
        return [flat[a:b] for a, b in zip([0, *ends[:-1]], ends)]


def _just_viewed_reasons(scorer: Scorer, users: pd.DataFrame, row: np.ndarray, reasons: list[str]) -> list[str]:
    """A list that follows a product (a family scoring the recent sequence): "Because you just viewed <product>"
    (``reason_for``'s first rule)."""
    follows = [scorer.scorer.follows(uid) for uid in users[COL_USER].tolist()]
    if not any(p is not None for p in follows):
        return reasons
    viewed = [None if p is None else scorer.names.get(int(p), str(p)) for p in follows]
    return [REASON_JUST_VIEWED.format(product=viewed[r]) if viewed[r] else text
            for r, text in zip(row.tolist(), reasons)]


@contextmanager
def _gc_paused():
    """Without the cyclic GC: building a block's ~200K Candidates at once otherwise triggers full collections
    that rescan every object built so far (half the building time); these objects hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reasons(catalog: CatalogArrays, viewed: np.ndarray, row: np.ndarray, kept: np.ndarray) -> list[str]:
    """``reason_for(item, SOURCE_MODEL, ReasonContext(viewed_categories=...))`` of each kept item, vectorised:
    a browsed category > a new arrival with few interactions > "Customers like you"."""
    names = catalog.code_names
    n_codes = len(names)
    texts = np.array([REASON_VIEWED_CATEGORY.format(category=name) for name in names]
                     + [REASON_NEW_ARRIVAL, REASON_LIKE_YOU], dtype=object)
    named = np.array([name != "" for name in names], dtype=bool)
    code = catalog.codes[kept]
    browsed = np.isin(row * n_codes + code, viewed) & named[code]
    which = np.where(browsed, code, np.where(catalog.fresh[kept], n_codes, n_codes + 1))
    return texts[which].tolist()


def recs_payload(items: list[Candidate], model_id: str, updated_at: str) -> dict:
    """The JSON value of ``recs:{user_id}`` (``recsys.keys.recs_payload``)."""
    return keys.recs_payload([c.product_id for c in items], [round(c.score, 6) for c in items],
                             [c.reason for c in items], model_id, updated_at)


def embedding_payload(vector: np.ndarray, model_id: str) -> dict:
    """The JSON value of ``embedding:{user_id}`` and ``embedding:product:{product_id}``."""
    return {"model_version": model_id, "vector": np.round(vector.astype(float), 6).tolist()}


def recommend_block(engine: Engine, day: dt.date, scorer: Scorer,
                    block: pd.DataFrame) -> tuple[np.ndarray, list[list[Candidate]]]:
    """The family scorer's block (for a vector model the user vectors) and the re-ranked lists of a block of
    ``active_users`` rows, as cached (nothing written)."""
    vectors = scorer.scorer.block(block, block.set_index(COL_USER)["value_segment"])
    s = scorer.settings
    history = _history(engine, block[COL_USER].tolist(), day, s.trending_days, s.exclude_seen_types)
    return vectors, _user_lists(scorer, block, vectors, history)


def score_users(engine: Engine, redis, day: dt.date, scorer: Scorer, users: pd.DataFrame) -> int:
    """Score, re-rank and write the lists (and LIVE embeddings) of ``users``; returns users written."""
    s, ttl = scorer.settings, scorer.settings.recs_ttl_seconds
    if scorer.family is not None:  # a family without cold start: its known users
        users = servable_users(scorer.family, scorer.model, users, COL_USER)
    context = serving_context(engine, redis, s)  # the final answers' context (None: answers off)
    for start in range(0, len(users), s.precompute_block_size):
        block = users.iloc[start : start + s.precompute_block_size]
        ids = block[COL_USER].tolist()
        vectors, lists = recommend_block(engine, day, scorer, block)
        updated = dt.datetime.now(dt.timezone.utc).isoformat()
        write_block(redis, [scorer.recs_key(uid) for uid in ids], ids,
                    [keys.encode_recs({**recs_payload(items, scorer.model_id, updated), **scorer.scorer.list_fields(uid)})
                     for uid, items in zip(ids, lists)], ttl, context,
                    answer_model=None if scorer.is_live else scorer.model_id)
        user_vectors = scorer.scorer.user_vectors(vectors) if scorer.is_live else None
        if user_vectors is not None:  # embedding:{user_id} belongs to the LIVE model only
            write_json(redis, ((KEY_USER_EMBEDDING.format(user_id=uid), embedding_payload(vec, scorer.model_id))
                               for uid, vec in zip(ids, user_vectors)), ttl=ttl)
    return len(users)


# --- the nightly steps ----------------------------------------------------------------
def precompute_shard(engine: Engine, store: ArtifactStore, redis, day: dt.date, shard: int,
                     model_id: str | None = None, settings: Settings = DEFAULTS) -> dict:
    """Write ``recs:{user_id}`` for every active user of ``shard`` (``0 .. RECSYS_PRECOMPUTE_SHARDS - 1``)
    with the LIVE model (or ``model_id``)."""
    shard = check_shard(shard, settings.precompute_shards)
    started = time.perf_counter()
    scorer = Scorer.load(engine, store, day, model_id, settings)
    users = active_users(engine, day, settings.active_days, settings)
    n = score_users(engine, redis, day, scorer, users[users["shard"] == shard].reset_index(drop=True))
    seconds = time.perf_counter() - started
    log.info("precomputed %d users of shard %d/%d with %s in %.2fs", n, shard, settings.precompute_shards,
             scorer.model_id, seconds)
    return {"shard": shard, "shards": settings.precompute_shards, "users": n, "model_id": scorer.model_id,
            "seconds": round(seconds, 3)}


def precompute_lists(engine: Engine, store: ArtifactStore, redis, day: dt.date,
                     settings: Settings = DEFAULTS) -> dict:
    """Trending, new arrivals, bestsellers per category, categories, the basket lists (frequently bought together,
    repurchase intervals: ``basket_lists``) and LIVE product embeddings."""
    live = registry.get_live(engine)
    return _write_lists(engine, redis, day, settings,
                        Scorer.load(engine, store, day, live.model_id, settings) if live else None)


def _write_lists(engine: Engine, redis, day: dt.date, settings: Settings, live: Scorer | None) -> dict:
    catalog = load_catalog(engine, day, settings) if live is None else live.products
    out = {**write_lists(engine, redis, day, settings, catalog=catalog),
           **write_basket_lists(engine, redis, day, settings, catalog)}
    if live is None:
        log.warning("no LIVE model: product embeddings not written")
        return {**out, "product_embeddings": 0, "model_id": None}
    if not live.has_vectors:
        log.info("LIVE model %s (%s) has no product vectors: product embeddings not written", live.model_id,
                 live.family.name if live.family else "?")
        return {**out, "product_embeddings": 0, "model_id": live.model_id}
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
        skew_ms = DEFAULTS.event_clock_skew_seconds * 1000
    with engine.connect() as conn:
        last = conn.execute(select(func.max(UserEvent.timestamp)).where(UserEvent.timestamp <= now_ms + skew_ms)).scalar()
    if last is None:
        raise PrecomputeError("no events in user_events: nothing to precompute")
    return ms_to_datetime(int(last)).date()


def precompute_all(engine: Engine, store: ArtifactStore, redis, day: dt.date | None = None,
                   model_id: str | None = None, settings: Settings = DEFAULTS) -> dict:
    """The shared lists and every active segment's lists of the LIVE model (or ``model_id``: a model that is
    not LIVE writes its own keys, ``recs:<model>:{user}``, which ``recsys.pipeline.release`` activates after
    the switch); ``user_ids``: the users whose lists were written."""
    day = day or latest_event_day(engine, skew_ms=settings.event_clock_skew_seconds * 1000)
    started = time.perf_counter()
    scorer = Scorer.load(engine, store, day, model_id, settings)
    if scorer.is_live:
        lists = _write_lists(engine, redis, day, settings, scorer)
    else:
        lists = precompute_lists(engine, store, redis, day, settings)
    users = active_users(engine, day, settings.active_days, settings)
    segments = {seg: score_users(engine, redis, day, scorer, group.reset_index(drop=True))
                for seg, group in users.groupby("segment", sort=True)}
    return {"day": day.isoformat(), "model_id": scorer.model_id, "lists": lists, "segments": segments,
            "users": int(sum(segments.values())), "user_ids": users[COL_USER].tolist(),
            "seconds": round(time.perf_counter() - started, 3)}
