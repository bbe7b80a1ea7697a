"""Serving logic of ``GET /recommendations``: pick the tier, fetch its list, re-rank.

Tier 1 (personalized) when the user has ``personalized_min_events`` events and
a model list: ``recs:{user_id}`` (or the A/B treatment's list), else scored on
the fly from the embeddings in memory and written back. Tier 2 (category)
when the user's recent categories are known, Tier 3 (trending) otherwise.

The cache-hit path is one Redis round trip (``RedisStore.read_user_view``) and
no database query. A user Redis has never seen (no counter or no session hash)
is seeded once from the database. Redis down: the fallback tiers answer from
the in-process lists (and Tier 1 from the in-memory embeddings), counted as
degraded. Database down: the count is unknown, and a cached list decides.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recsys.api.errors import DependencyDown
from recsys.api.redis_store import UserView
from recsys.api.session_state import SessionState, parse_session, seed_fields
from recsys.api.state import ServingState
from recsys.api.tiers import CATEGORY, PERSONALIZED, TRENDING, category_tier, personalized, trending_tier
from recsys.ranking.reasons import SOURCE_MODEL, reason_for
from recsys.ranking.rerank import Candidate

log = logging.getLogger(__name__)
HISTORY_EVENTS = 50  # latest events read to seed a user's recent categories


@dataclass(frozen=True)
class Recommendation:
    items: list[Candidate]
    source: str
    model_version: str | None


@dataclass(frozen=True)
class ModelList:
    products: list[int]
    scores: list[float]
    reasons: list[str] | None
    model_version: str | None


def _model_list(payload: Mapping | None) -> ModelList | None:
    if not payload or not payload.get("products"):
        return None
    return ModelList(products=[int(p) for p in payload["products"]],
                     scores=[float(s) for s in payload.get("scores") or [0.0] * len(payload["products"])],
                     reasons=list(payload.get("reasons") or []) or None,
                     model_version=payload.get("model_version"))


class RecommendationService:
    def __init__(self, state: ServingState):
        self.state = state
        self.settings = state.settings

    async def recommend(self, user_id: int, n: int) -> Recommendation:
        view, redis_ok = await self._read_view(user_id)
        session, n_events = view.session, view.n_events
        if n_events is None or not session.exists:
            n_events, session = await self._seed(user_id, view, redis_ok)
        cached = await self._cached_list(user_id, view, redis_ok)
        qualifies = n_events >= self.settings.personalized_min_events if n_events is not None else cached is not None
        result = None
        if qualifies:
            result = await self._personalized(user_id, cached, session, n, redis_ok)
        if result is None:
            ctx = self.state.context(session)
            items = category_tier(ctx, n) if session.categories else []
            result = Recommendation(items, CATEGORY, None) if items else Recommendation(trending_tier(ctx, n),
                                                                                        TRENDING, None)
        self.state.metrics.source.labels(source=result.source).inc()
        return result

    async def _read_view(self, user_id: int) -> tuple[UserView, bool]:
        try:
            return await self.state.redis.read_user_view(user_id, self.state.treatment_model_id), True
        except DependencyDown as exc:
            log.warning("recommendations for %s without Redis: %s", user_id, exc)
            self.state.degraded("redis")
            return UserView(), False

    async def _seed(self, user_id: int, view: UserView, redis_ok: bool) -> tuple[int | None, SessionState]:
        """Count and recent categories from the database, written to Redis for the next requests."""
        try:
            count, recent = await self.state.db.user_history(user_id, HISTORY_EVENTS)
        except DependencyDown as exc:
            log.warning("user %s not seeded: %s", user_id, exc)
            self.state.degraded("database")
            return view.n_events, view.session
        fields = seed_fields(recent, self.state.catalog.category_of)
        if redis_ok:
            s = self.settings
            try:
                await self.state.redis.seed_user(user_id, count, fields, s.session_ttl_seconds,
                                                 s.active_days * 86400)
            except DependencyDown:
                self.state.degraded("redis")
        session = view.session
        if not session.exists:  # history only fills a missing hash; a live session is fresher
            session = parse_session(fields)
        n = count if view.n_events is None else max(view.n_events, count)
        return n, session

    async def _cached_list(self, user_id: int, view: UserView, redis_ok: bool) -> ModelList | None:
        """The user's model list: the A/B treatment's when assigned, else ``recs:{user_id}``."""
        arm_model = (view.ab or {}).get("model_id") if isinstance(view.ab, Mapping) else None
        if arm_model and arm_model != self.state.live_model_id:
            payload = view.model_recs if arm_model == self.state.treatment_model_id else None
            if payload is None and redis_ok:
                try:
                    payload = await self.state.redis.model_recs(arm_model, user_id)
                except DependencyDown:
                    self.state.degraded("redis")
            if payload is not None:
                return _model_list(payload)
        return _model_list(view.recs)

    async def _personalized(self, user_id: int, cached: ModelList | None, session: SessionState, n: int,
                            redis_ok: bool) -> Recommendation | None:
        metrics = self.state.metrics
        ctx = self.state.context(session)
        if cached is not None:
            metrics.cache.labels(result="hit").inc()
            return Recommendation(personalized(ctx, cached.products, cached.scores, cached.reasons, n),
                                  PERSONALIZED, cached.model_version)
        metrics.cache.labels(result="miss").inc()
        scored = await self._score_on_the_fly(user_id, session, redis_ok)
        if scored is None:
            return None
        return Recommendation(personalized(ctx, scored.products, scored.scores, scored.reasons, n),
                              PERSONALIZED, scored.model_version)

    async def _user_vector(self, user_id: int, redis_ok: bool) -> np.ndarray | None:
        emb = self.state.embeddings
        vector = emb.user_vector(user_id)
        if vector is not None or not redis_ok:
            return vector
        try:
            stored = await self.state.redis.user_embedding(user_id)
        except DependencyDown:
            self.state.degraded("redis")
            return None
        if stored and stored.get("model_version") == emb.model_id and len(stored.get("vector") or []) == emb.dim:
            return np.asarray(stored["vector"], dtype=np.float32)
        return None

    async def _score_on_the_fly(self, user_id: int, session: SessionState, redis_ok: bool) -> ModelList | None:
        """Score every item for the user from the embeddings in memory; cache the list when Redis is up."""
        emb = self.state.embeddings
        if emb is None:
            return None
        vector = await self._user_vector(user_id, redis_ok)
        if vector is None:
            return None
        top = emb.score_user(vector, self.settings.recs_per_user, exclude=session.purchased)
        ctx = self.state.context(session)
        reasons = [reason_for(ctx.candidate(pid, score), SOURCE_MODEL) for pid, score in top]
        result = ModelList([p for p, _ in top], [s for _, s in top], reasons, emb.model_id)
        if redis_ok:
            payload = {"products": result.products, "scores": result.scores, "reasons": reasons,
                       "model_version": emb.model_id, "updated_at": dt.datetime.now(dt.timezone.utc).isoformat()}
            try:
                await self.state.redis.write_recs(user_id, payload, self.settings.recs_ttl_seconds)
            except DependencyDown:
                self.state.degraded("redis")
        return result
