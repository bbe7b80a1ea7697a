"""Serving logic of ``GET /recommendations``: pick the tier, fetch its list, re-rank.

Tier 1 (personalized) when the user has ``personalized_min_events`` events and
a model list: ``recs:{user_id}`` (or, for a user in an A/B arm with another
model, ``recs:{model_id}:{user_id}``), else scored on the fly from that model's
memory-mapped embeddings and written back. A list of another model than the one
expected (the LIVE model changed) is re-scored when the embeddings allow.
Every answer buffers its impression (``arms.log_impression``). Tier 2 (category)
when the user's recent categories are known, Tier 3 (trending) otherwise.

The cache-hit path is one Redis round trip (``RedisStore.read_user_view``) and
no database query. A user Redis has never seen (no counter or no session hash)
is seeded once from the database. Redis down: the fallback tiers answer from
the in-process lists (and Tier 1 from the mapped embeddings), counted as
degraded. Database down: the count is unknown, and a cached list decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from recsys.constants import HISTORY_EVENTS
from recsys.keys import CachedAnswer, answer_key, decode_answer, recommendations_body, recs_payload
from recsys.ranking.merch_rules import RuleSet
from recsys.ranking.reasons import SOURCE_MODEL, reason_for
from recsys.ranking.rerank import Candidate, boost_popular
from recsys.serving.answers import answer_basis, build_answer, items_without_reasons, response_items
from recsys.serving.arms import ArmChoice, choose_arm, log_impression, settle_arm
from recsys.serving.buy_again import BuyAgainService, answer_with_buy_again, with_buy_again, without_reason
from recsys.serving.errors import DependencyDown
from recsys.serving.filters import ItemFilter
from recsys.serving.model_lists import ModelList, UserLists, model_list
from recsys.serving.paging import record_page
from recsys.serving.realtime import just_viewed, sequence_list
from recsys.serving.session_state import SessionState, parse_session, seed_fields
from recsys.serving.state import ServingState
from recsys.serving.stores.redis_store import UserView
from recsys.serving.tiers import (
    CATEGORY, PERSONALIZED, TRENDING, ServeContext, category_tier, fill, personalized, trending_tier,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recommendation:
    items: list[Candidate]
    source: str
    model_version: str | None
    arm: ArmChoice | None = None


class RecommendationService:
    def __init__(self, state: ServingState):
        self.state = state
        self.settings = state.settings
        # RECSYS_BUY_AGAIN_SLOTS: the user's due purchases lead the list (None: off, nothing read for it)
        self.buy_again = BuyAgainService(state) if state.settings.buy_again_slots else None

    async def respond(self, user_id: int, n: int, request_id: str = "", *, limiter=None,
                      key_name: str | None = None, reasons: bool = True,
                      item_filter: ItemFilter | None = None) -> bytes:
        """The ``GET /recommendations`` body. A cached answer that still holds (``answers``) is sent as
        it is; anything else goes through the tiers (``recommend``), a Tier-1 list's answer written back.
        With ``limiter``, the caller's rate-limit token rides in the same round trip (``RateLimited``).
        ``reasons=False``: the same items without their reasons (the answer written back keeps them).
        ``item_filter``: the request's filters; a cached answer serves them only when n of its items pass,
        else the tiers work the list out from the user's cached candidates, then the fallback tiers
        (``_filtered_view``); the body then names the filters applied."""
        f = item_filter if item_filter is not None and item_filter.active else None
        arm = choose_arm(self.state, user_id)
        model_id = arm.model_id if arm and arm.model_id != self.state.live_model_id else None
        command = limiter.command(key_name) if limiter is not None else None
        view, redis_ok = await self._read_view(user_id, model_id, command)
        if command is not None:
            if redis_ok:
                await limiter.settle_command(key_name, view.charge)
            else:
                limiter.metrics.rate_limit_skipped.inc()
        arm = settle_arm(self.state, user_id, arm, view, redis_ok)
        first = await self.buy_again.due(user_id, view.purchases_raw, redis_ok) if self.buy_again else ()
        answer = self._cached_answer(view, arm, redis_ok)
        if f is not None:
            first = [c for c in first if f.accepts(self.state.catalog, c.product_id)]
            fitting = self._fitting_answer(answer, f, n, first) if answer is not None else None
            if fitting is not None:
                return self._send_filtered_answer(user_id, n, request_id, answer, fitting, arm, reasons, f)
        elif answer is not None:
            return self._send_answer(user_id, n, request_id, answer, arm, reasons, first)
        rec = await self._recommend_view(user_id, n, request_id, view, redis_ok, arm, first, f)
        body = {"items": response_items(rec.items, reasons), "model_version": rec.model_version,
                "source": rec.source, "request_id": request_id}
        return orjson.dumps({**body, "filters": f.applied()} if f is not None and f.requested else body)

    async def recommend(self, user_id: int, n: int, request_id: str = "", *, preview: bool = False) -> Recommendation:
        """The tiers' answer, always worked out (the route sends cached answers: ``respond``). ``preview``: no
        impression, no page record, no answer written back."""
        arm = choose_arm(self.state, user_id)
        live = self.state.live_model_id
        view, redis_ok = await self._read_view(user_id, arm.model_id if arm and arm.model_id != live else None)
        arm = settle_arm(self.state, user_id, arm, view, redis_ok)
        return await self._recommend_view(user_id, n, request_id, view, redis_ok, arm, preview=preview)

    async def preview(self, user_id: int, n: int, rules: RuleSet) -> Recommendation:
        """The user's list under the merchandising ``rules`` (the admin's preview: nothing logged or written)."""
        state = self.state if rules is self.state.merch_rules else dataclasses.replace(
            self.state, merch_rules=rules, _answer_context=None)
        return await RecommendationService(state).recommend(user_id, n, preview=True)

    async def _recommend_view(self, user_id: int, n: int, request_id: str, view: UserView, redis_ok: bool,
                              arm: ArmChoice | None, first: Sequence[Candidate] = (),
                              item_filter: ItemFilter | None = None, *, preview: bool = False) -> Recommendation:
        """The tiers' answer; ``first``: buy it again's items, ahead of the tier's (``buy_again``).
        ``item_filter``: every tier narrowed by it, a short tier filled by the next (``_fill_tiers``); nothing
        written back (an answer is the unfiltered list's)."""
        session, n_events = view.session, view.n_events
        seeded = n_events is None or not session.exists
        if seeded:
            n_events, session = await self._seed(user_id, view, redis_ok)
        lists = await self._cached_list(user_id, view, redis_ok, arm)
        known = lists.cached is not None or lists.fallback is not None
        qualifies = n_events >= self.settings.personalized_min_events if n_events is not None else known
        result = None
        if qualifies:
            write_back = None if seeded or not redis_ok or item_filter or preview else self._answer_target(view, arm)
            result = await self._personalized(user_id, lists, session, n, redis_ok, write_back, item_filter)
        if item_filter is not None:
            result = self._fill_tiers(result, session, n + len(first), item_filter)  # first: may repeat some
        elif result is None:
            ctx = self.state.context(session)
            items = category_tier(ctx, n) if session.categories else []
            result = Recommendation(items, CATEGORY, None) if items else Recommendation(trending_tier(ctx, n),
                                                                                        TRENDING, None)
        items = with_buy_again(first, result.items, n) if first else result.items
        result = Recommendation(items, result.source, result.model_version, arm)
        if not preview:  # the admin's preview is no answer: not counted, not logged
            self.state.metrics.source.labels(source=result.source).inc()
            self._served(request_id, user_id, [c.product_id for c in result.items], result.model_version, arm,
                         result.source, item_filter)
        return result

    def _fill_tiers(self, result: Recommendation | None, session: SessionState, n: int,
                    item_filter: ItemFilter) -> Recommendation:
        """A filtered request's list: Tier 1's items (when the user qualifies), then Tier 2's, then Tier 3's,
        each narrowed by the filter and keeping its reason; ``source`` is the tier of the first item."""
        ctx = self.state.context(session, item_filter=item_filter)
        items = list(result.items) if result is not None else []
        source = result.source if result is not None and items else None
        model_version = result.model_version if source else None
        for tier, name in ((category_tier, CATEGORY), (trending_tier, TRENDING)):
            if len(items) >= n:
                break
            more = tier(ctx, n + len(items))  # room for the products already taken
            items = fill(items, more, n)
            source = source or (name if items else None)
        return Recommendation(items, source or TRENDING, model_version)

    def _served(self, request_id: str, user_id: int, products: list[int], model_id: str | None,
                arm: ArmChoice | None, source: str, item_filter: ItemFilter | None = None) -> None:
        """The answer's impression and its page record (``paging``), both buffered for the next pipeline."""
        log_impression(self.state, request_id=request_id, user_id=user_id, products=products, model_id=model_id,
                       arm=arm, source=source)
        record_page(self.state, request_id, user_id, products, tuple(item_filter.paged) if item_filter else ())

    # --- cached answers ---------------------------------------------------------------------
    def _fitting_answer(self, answer: CachedAnswer, item_filter: ItemFilter, n: int,
                        first: Sequence[Candidate]) -> list[dict] | None:
        """The cached answer's items the filter lets through, behind ``first``: when n of them, else None (the
        answer does not fit the filters: the tiers work the list out)."""
        catalog = self.state.catalog
        taken = {c.product_id for c in first}
        items = [i for i in orjson.loads(b"[" + answer.items_bytes(len(answer.ends)) + b"]")
                 if i["product_id"] not in taken and item_filter.accepts(catalog, i["product_id"])]
        lead = [{"product_id": c.product_id, "score": c.score, "reason": c.reason} for c in first]
        return [*lead, *items][:n] if len(lead) + len(items) >= n else None

    def _send_filtered_answer(self, user_id: int, n: int, request_id: str, answer: CachedAnswer, items: list[dict],
                              arm: ArmChoice | None, reasons: bool, item_filter: ItemFilter) -> bytes:
        metrics = self.state.metrics
        metrics.cache.labels(result="hit").inc()
        metrics.source.labels(source=PERSONALIZED).inc()
        self._served(request_id, user_id, [i["product_id"] for i in items], answer.model_version, arm, PERSONALIZED,
                     item_filter)
        return orjson.dumps({"items": items if reasons else [without_reason(i) for i in items],
                             "model_version": answer.model_version, "source": PERSONALIZED,
                             "request_id": request_id,
                             **({"filters": item_filter.applied()} if item_filter.requested else {})})

    def _answer_target(self, view: UserView, arm: ArmChoice | None) -> tuple[str, bytes, Mapping] | None:
        """The ``answer:`` key of the list this request reads, that list's bytes and the session hash read
        with it, when all were read."""
        if not self.settings.answer_max_age_seconds or not view.session_raw:
            return None
        model_id = arm.model_id if arm is not None and arm.model_id != self.state.live_model_id else None
        if model_id != view.answer_model:
            return None  # the list read is not the one served (a stored arm decided after the read)
        recs_raw = view.model_recs_raw if model_id else view.recs_raw
        return (answer_key(view.user_id, model_id), recs_raw, view.session_raw) if recs_raw else None

    def _cached_answer(self, view: UserView, arm: ArmChoice | None, redis_ok: bool) -> CachedAnswer | None:
        """The answer read with the view when it is exactly what the tiers would answer now (``answers``)."""
        s = self.settings
        if not redis_ok or view.answer_raw is None or view.n_events is None or view.n_events < s.personalized_min_events:
            return None
        target = self._answer_target(view, arm)
        answer = decode_answer(view.answer_raw) if target is not None else None
        if answer is None:
            return None
        expected = (arm.model_id if arm is not None else None) or self.state.live_model_id
        if expected is not None and answer.model_version != expected:
            return None
        if self.state.now_ms() - answer.at_ms > s.answer_max_age_seconds * 1000:
            return None
        if answer.basis != answer_basis(self.state.answer_context(), target[1], view.session_raw):
            return None
        return answer

    def _send_answer(self, user_id: int, n: int, request_id: str, answer: CachedAnswer,
                     arm: ArmChoice | None, reasons: bool = True, first: Sequence[Candidate] = ()) -> bytes:
        metrics = self.state.metrics
        metrics.cache.labels(result="hit").inc()
        metrics.source.labels(source=PERSONALIZED).inc()
        if first:  # buy it again leads: the answer's items follow, without those products
            items = answer_with_buy_again(first, answer.items_bytes(n), n)
            self._served(request_id, user_id, [i["product_id"] for i in items], answer.model_version, arm,
                         PERSONALIZED)
            return orjson.dumps({"items": items if reasons else [without_reason(i) for i in items],
                                 "model_version": answer.model_version, "source": PERSONALIZED,
                                 "request_id": request_id})
        self._served(request_id, user_id, answer.products[:n], answer.model_version, arm, PERSONALIZED)
        items = answer.items_bytes(n) if reasons else items_without_reasons(answer.items_bytes(n))
        return recommendations_body(items, answer.model_version, PERSONALIZED, request_id)

    async def _read_view(self, user_id: int, model_id: str | None, charge=None) -> tuple[UserView, bool]:
        try:
            if self.buy_again is not None:
                return await self.state.redis.read_user_view(user_id, model_id, charge, purchases=True), True
            return await self.state.redis.read_user_view(user_id, model_id, charge), True
        except DependencyDown as exc:
            log.warning("recommendations for %s without Redis: %s", user_id, exc)
            self.state.degraded("redis")
            return UserView(user_id=user_id), False

    async def _seed(self, user_id: int, view: UserView, redis_ok: bool) -> tuple[int | None, SessionState]:
        """Count and recent categories from the database, written to Redis for the next requests."""
        try:
            count, recent = await self.state.db.user_history(user_id, HISTORY_EVENTS)
        except DependencyDown as exc:
            log.warning("user %s not seeded: %s", user_id, exc)
            self.state.degraded("database")
            return view.n_events, view.session
        fields = seed_fields(recent, self.state.catalog.category_of, self.settings.exclude_seen_types)
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

    async def _cached_list(self, user_id: int, view: UserView, redis_ok: bool,
                           arm: ArmChoice | None) -> UserLists:
        """The list of the user's model: the A/B arm's when it is not the LIVE one, else ``recs:{user_id}``."""
        live = self.state.live_model_id
        if arm is None or arm.model_id == live:
            return UserLists(model_list(view.recs), live)
        payload = view.model_recs
        if payload is None and redis_ok and self.state.running_test() is None:  # a stored record: not read yet
            try:
                payload = await self.state.redis.model_recs(arm.model_id, user_id)
            except DependencyDown:
                self.state.degraded("redis")
        return UserLists(model_list(payload), arm.model_id, fallback=model_list(view.recs))

    async def _personalized(self, user_id: int, lists: UserLists, session: SessionState, n: int,
                            redis_ok: bool, write_back: tuple[str, bytes, Mapping] | None = None,
                            item_filter: ItemFilter | None = None) -> Recommendation | None:
        """Tier 1 of the user's model list; a cached list's answer is written back (``write_back``)."""
        served = self.state.embeddings_for(lists.expected) if lists.expected else None
        if served is not None and self.state.real_time.get(served.model_id):  # re-scored when the sequence changed
            ctx = self.state.context(session, just_viewed(self.state, session.sequence), item_filter)
            found, hit = await sequence_list(self.state, served, user_id, lists, session.sequence, ctx, redis_ok)
        else:
            ctx = self.state.context(session, item_filter=item_filter)
            found, hit = await self._cached_or_scored(user_id, lists, session, redis_ok)
        if found is None:
            return None
        if hit and write_back is not None:
            return self.tier1_written_back(ctx, found, n, write_back)
        return self.tier1(ctx, found, n)

    async def _cached_or_scored(self, user_id: int, lists: UserLists, session: SessionState,
                          redis_ok: bool) -> tuple[ModelList | None, bool]:
        """The cached list when it is the expected model's (a hit), else one scored on the fly, else the
        stale or the LIVE list (a stale list beats none)."""
        metrics = self.state.metrics
        if lists.cached is not None and not lists.stale:
            metrics.cache.labels(result="hit").inc()
            return lists.cached, True
        metrics.cache.labels(result="miss").inc()
        scored = await self._score_on_the_fly(user_id, session, redis_ok, lists.expected)
        return scored or lists.cached or lists.fallback, False

    @staticmethod
    def tier1(ctx: ServeContext, found: ModelList, n: int) -> Recommendation:
        return Recommendation(personalized(ctx, found.products, found.scores, found.reasons, n), PERSONALIZED,
                              found.model_version)

    def tier1_written_back(self, ctx: ServeContext, found: ModelList, n: int,
                           write_back: tuple[str, bytes, Mapping]) -> Recommendation:
        """Tier 1 worked out to ``ANSWER_ITEMS`` items, its answer buffered for the next pipeline, the first n
        returned (the same items as ``tier1``: the order does not depend on n)."""
        key, recs_raw, session_raw = write_back
        basis = answer_basis(self.state.answer_context(), recs_raw, session_raw)
        items, value = build_answer(ctx, found.products, found.scores, found.reasons, found.model_version, basis)
        self.state.redis.buffer.add_set(key, value, self.settings.answer_max_age_seconds)
        return Recommendation(items[:n], PERSONALIZED, found.model_version)

    async def _user_vector(self, user_id: int, redis_ok: bool, emb) -> np.ndarray | None:
        vector = emb.user_vector(user_id)
        if vector is not None or not redis_ok or emb is not self.state.embeddings:
            return vector  # embedding:{user_id} belongs to the LIVE model only
        try:
            stored = await self.state.redis.user_embedding(user_id)
        except DependencyDown:
            self.state.degraded("redis")
            return None
        if stored and stored.get("model_version") == emb.model_id and len(stored.get("vector") or []) == emb.dim:
            return np.asarray(stored["vector"], dtype=np.float32)
        return None

    async def _score_on_the_fly(self, user_id: int, session: SessionState, redis_ok: bool,
                                model_id: str | None = None) -> ModelList | None:
        """Score every item for the user from the served model (its mapped files); cache the list when Redis is up."""
        emb = self.state.embeddings_for(model_id)
        if emb is None:
            return None
        vector = await self._user_vector(user_id, redis_ok, emb)
        if vector is None:
            return None
        ctx = self.state.context(session)
        top = emb.score_user(vector, self.settings.recs_per_user, exclude=ctx.already_seen())
        # precompute's popular-products boost, with the popularity the fallback lists carry
        items = boost_popular([ctx.candidate(pid, score) for pid, score in top], self.settings.rerank_trending_weight)
        reasons = [reason_for(c, SOURCE_MODEL) for c in items]
        result = ModelList([c.product_id for c in items], [c.score for c in items], reasons, emb.model_id)
        if redis_ok:
            payload = recs_payload(result.products, result.scores, reasons, emb.model_id,
                                   dt.datetime.now(dt.timezone.utc).isoformat())
            key_model = None if emb is self.state.embeddings else emb.model_id
            try:
                await self.state.redis.write_recs(user_id, payload, self.settings.recs_ttl_seconds, model_id=key_model)
            except DependencyDown:
                self.state.degraded("redis")
        return result
