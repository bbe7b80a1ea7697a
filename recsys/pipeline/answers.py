"""Precompute's writes of a block's lists: ``recs:{user_id}`` and, for users with a session, the final
Tier-1 answer ``answer:{user_id}`` the API sends as it is (``recsys.serving.answers``).

The answer is worked out as the API would: the same catalog rows (``products``), the fallback lists
precompute wrote to Redis, the re-ranking rules of the settings, the session hash Redis holds now,
and the list from the very bytes written to ``recs:{user_id}``. Its basis digest records all of
them, so an API whose context differs (another catalog snapshot, other settings) re-ranks instead.
Users without a session hash get no answer: their first request seeds the session from the
database and re-ranks anyway. ``RECSYS_ANSWER_MAX_AGE_SECONDS=0`` writes no answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Engine, select

from recsys.db.models import Product
from recsys.keys import answer_key, category_keys, list_keys, session_key
from recsys.db.merch_rules import load_rules
from recsys.ranking.merch_rules import RuleSet, rule_set
from recsys.serving.answers import answer_basis, build_answer, context_digest, merch_key
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.fallbacks import FallbackLists, lists_from_redis
from recsys.serving.session_state import parse_session
from recsys.serving.tiers import ServeContext, rerank_config
from recsys.settings import Settings

CATALOG_COLUMNS = ("product_id", "name", "category", "price", "margin", "in_stock", "created_at")


@dataclass(frozen=True)
class AnswerContext:
    """What the API's serving state holds, read by precompute (``serving_context``)."""

    catalog: CatalogSnapshot
    lists: FallbackLists
    digest: bytes
    settings: Settings
    merch: RuleSet = RuleSet()  # the merchandising rules, read once per run (the API polls them)

    def serve_context(self, session_raw: Mapping | None, now_ms: int) -> ServeContext:
        s = self.settings
        return ServeContext(catalog=self.catalog, lists=self.lists, session=parse_session(session_raw),
                            rules=rerank_config(s), now_ms=now_ms, new_days=s.new_product_days,
                            new_arrival_slots=s.tier3_new_arrivals, seen_types=s.exclude_seen_types,
                            personal_reasons=s.personal_reasons, merch=self.merch.live(now_ms))


def _mget(redis, keys: list[str]) -> list:
    """MGET of shared keys (one per node in a Redis Cluster)."""
    return redis.mget_nonatomic(keys) if hasattr(redis, "mget_nonatomic") else redis.mget(keys)


def _json(raw):
    try:
        return orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None


def serving_context(engine: Engine, redis, settings: Settings) -> AnswerContext | None:
    """The catalog as the API loads it and the fallback lists in Redis; None when answers are off."""
    if not settings.answer_max_age_seconds:
        return None
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(*(getattr(Product, c) for c in CATALOG_COLUMNS)))]
    catalog = CatalogSnapshot.from_rows(rows)
    trending, new, cats = _mget(redis, list_keys())
    categories = [str(c) for c in (_json(cats) or [])]
    best = dict(zip(categories, _mget(redis, category_keys(categories)))) if categories else {}
    lists = lists_from_redis({"trending": _json(trending), "new_arrivals": _json(new), "categories": categories,
                              "bestsellers": {c: _json(v) for c, v in best.items() if v is not None}})
    merch = rule_set(*load_rules(engine))
    digest = context_digest(catalog, lists, rerank_config(settings), settings.new_product_days,
                            settings.exclude_seen_types, settings.reasons, merch_key(merch, int(time.time() * 1000)))
    return AnswerContext(catalog, lists, digest, settings, merch)


def write_block(redis, recs_keys: Sequence[str], user_ids: Sequence[int], values: Sequence[bytes], ttl: int,
                context: AnswerContext | None, answer_model: str | None = None) -> int:
    """SET each user's ``recs:`` value (``values``, encoded) and, with a ``context``, the answer of users
    with a session hash (one pipeline for the session reads, one for the writes); returns the answers written."""
    sessions: list = [None] * len(values)
    if context is not None:
        pipe = redis.pipeline(transaction=False)
        for uid in user_ids:
            pipe.hgetall(session_key(uid))
        sessions = pipe.execute()
    pipe, answers = redis.pipeline(transaction=False), 0
    now_ms = int(time.time() * 1000)
    for key, uid, value, session_raw in zip(recs_keys, user_ids, values, sessions):
        pipe.set(key, value, ex=ttl)
        if context is None or not session_raw:
            continue
        payload = orjson.loads(value)  # the list as the API decodes it (recsys.serving.model_lists.model_list)
        products = [int(p) for p in payload["products"]]
        if not products:
            continue
        scores = [float(s) for s in payload["scores"]]
        basis = answer_basis(context.digest, value, session_raw)
        _, answer = build_answer(context.serve_context(session_raw, now_ms), products, scores,
                                 list(payload.get("reasons") or []) or None, payload.get("model_version"), basis)
        pipe.set(answer_key(uid, answer_model), answer, ex=context.settings.answer_max_age_seconds)
        answers += 1
    pipe.execute()
    return answers
