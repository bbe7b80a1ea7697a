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
The service (``service.py``) re-ranks the list it gets here as every Tier 1 list, in a context whose reasons
name the product the list follows: model items give "Because you just viewed <product>" (the newest product
of the sequence, ``just_viewed``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from recsys import keys
from recsys.constants import REASON_JUST_VIEWED
from recsys.families import ServedModel
from recsys.ranking.rerank import boost_popular
from recsys.serving.errors import DependencyDown
from recsys.serving.model_lists import ModelList, UserLists
from recsys.serving.state import ServingState
from recsys.serving.tiers import ServeContext


def just_viewed(state: ServingState, sequence: Sequence[int]) -> str | None:
    """The newest product of the sequence by its name (its id when it has none): what the list follows."""
    if not sequence:
        return None
    info = state.catalog.get(sequence[0])
    return info.name if info is not None and info.name else str(sequence[0])


async def sequence_list(state: ServingState, served: ServedModel, user_id: int, lists: UserLists,
                        sequence: Sequence[int], ctx: ServeContext, redis_ok: bool) -> tuple[ModelList | None, bool]:
    """The list Tier 1 serves a user whose model scores in real time (``lists.expected``), and whether it is the
    cached list made for this sequence (a hit: its answer is written back like any Tier-1 hit's, so the next
    request with the same session is a cached answer again, not a re-rank)."""
    cached = lists.cached
    key = served.sequence_key(sequence)
    if cached is not None and not lists.stale and (cached.sequence == key or not key):
        state.metrics.cache.labels(result="hit").inc()
        return cached, True
    state.metrics.cache.labels(result="miss").inc()
    s = state.settings
    top = served.score_sequence(sequence, s.recs_per_user, exclude=ctx.already_seen())
    if not top:  # no product of the sequence is known to the model
        return cached or lists.fallback, False  # a stale list beats none
    items = boost_popular([ctx.candidate(p, score) for p, score in top], s.rerank_trending_weight)
    reasons = [REASON_JUST_VIEWED.format(product=ctx.just_viewed)] * len(items)
    result = ModelList([c.product_id for c in items], [c.score for c in items], reasons, lists.expected, key)
    if redis_ok:
        payload = keys.recs_payload(result.products, result.scores, reasons, lists.expected,
                                    dt.datetime.now(dt.timezone.utc).isoformat(), sequence=key)
        key_model = None if lists.expected == state.live_model_id else lists.expected
        try:
            await state.redis.write_recs(user_id, payload, s.recs_ttl_seconds, model_id=key_model)
        except DependencyDown:
            state.degraded("redis")
    return result, False
