"""Real-time Tier 1: a click changes the very next answer, for a model whose family scores from the session.

When the model serving a user (LIVE, or the user's A/B arm) scores in real time (its family's
``Capabilities.real_time``), Tier 1 reads the user's recent sequence from the session hash (``seq``, kept by
every event: ``recsys.serving.session_state``) and compares its key (``ServedModel.sequence_key``) with the one
the cached list was made for (its ``seq`` field, written by precompute or by the last real-time scoring):

- same key: the cached list is served as it is (a cache hit: no model is run);
- another key (the user viewed, clicked or bought something since): the served model scores the sequence
  (``ServedModel.score_sequence``), seen products excluded, precompute's popular-products boost applied, and
  the list is written back with its key (``keys.recs_payload``);
- no sequence the model knows: the cached list (or the LIVE one), as for any model.
The answer goes through the same re-ranking as every Tier 1 list, and model items give the reason
"Because you just viewed <product>" (the newest product of the sequence).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING

from recsys import keys
from recsys.constants import REASON_JUST_VIEWED
from recsys.ranking.rerank import boost_popular
from recsys.serving.errors import DependencyDown

if TYPE_CHECKING:
    from recsys.serving.service import Recommendation, RecommendationService, UserLists
    from recsys.serving.session_state import SessionState
    from recsys.serving.state import ServingState
    from recsys.families import ServedModel

log = logging.getLogger(__name__)


def _just_viewed(state: ServingState, sequence) -> str | None:
    if not sequence:
        return None
    info = state.catalog.get(sequence[0])
    return info.name if info is not None and info.name else str(sequence[0])


def _context(state: ServingState, session: SessionState, just_viewed: str | None):
    """The request's context, its reasons naming the product the list follows."""
    ctx = state.context(session)
    if just_viewed:  # the reasons are a cached property of the frozen context: set it once, here
        ctx.__dict__["_reasons"] = dataclasses.replace(ctx.reasons(), just_viewed=just_viewed)
    return ctx


async def serve_real_time(service: RecommendationService, served: ServedModel, user_id: int, lists: UserLists,
                          session: SessionState, n: int, redis_ok: bool,
                          write_back: tuple | None = None) -> Recommendation | None:
    """Tier 1 of a user whose model scores in real time (``lists.expected``). A hit (the list was made for this
    sequence) writes its final answer back like any Tier-1 hit (``write_back``), so the next request with
    the same session is a cached answer again, not a re-rank."""
    from recsys.serving.service import ModelList

    state, cached = service.state, lists.cached
    key, name = served.sequence_key(session.sequence), _just_viewed(state, session.sequence)
    ctx = _context(state, session, name)
    if cached is not None and not lists.stale and (cached.sequence == key or not key):
        state.metrics.cache.labels(result="hit").inc()
        if write_back is not None:
            return service.tier1_written_back(ctx, cached, n, write_back)
        return service.tier1(ctx, cached, n)
    state.metrics.cache.labels(result="miss").inc()
    top = served.score_sequence(session.sequence, service.settings.recs_per_user, exclude=ctx.already_seen())
    if not top:  # no product of the sequence is known to the model
        chosen = cached or lists.fallback  # a stale list beats none
        return service.tier1(ctx, chosen, n) if chosen is not None else None
    items = boost_popular([ctx.candidate(p, s) for p, s in top], service.settings.rerank_trending_weight)
    reasons = [REASON_JUST_VIEWED.format(product=name)] * len(items)
    result = ModelList([c.product_id for c in items], [c.score for c in items], reasons, lists.expected, key)
    if redis_ok:
        payload = {**keys.recs_payload(result.products, result.scores, reasons, lists.expected,
                                       dt.datetime.now(dt.timezone.utc).isoformat()), "seq": key}
        key_model = None if lists.expected == state.live_model_id else lists.expected
        try:
            await state.redis.write_recs(user_id, payload, service.settings.recs_ttl_seconds, model_id=key_model)
        except DependencyDown:
            state.degraded("redis")
    return service.tier1(ctx, result, n)
