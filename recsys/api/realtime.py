"""Real-time serving of a sequential model: a click changes the very next answer.

When the model serving a user (LIVE, or the user's A/B arm) is sequential, Tier 1 reads the user's
recent sequence from the session hash (``seq``, kept by every event: ``recsys.api.session_state``)
and compares its key (``recsys.families.sequential.recent.sequence_key``) with the one the cached list was
made for (its ``seq`` field, written by precompute or by the last real-time scoring):

- same key: the cached list is served as it is (a cache hit: no model is loaded or run);
- another key (the user viewed, clicked or bought something since): the ONNX encoder scores the
  sequence (``recsys.families.sequential.scoring.score_next``, about 3 ms for 100K products), seen products
  excluded, precompute's popular-products boost applied, and the list is written back with its key;
- no sequence the model knows: the cached list (or the LIVE one), as for any model.
The answer goes through the same re-ranking as every Tier 1 list, and model items give the reason
"Because you just viewed <product>" (the newest product of the sequence).

Runtimes are loaded by the model refresh (``refresh_sequential``) for the LIVE model and the running
test's models whose artifacts hold an ONNX encoder, each file verified against the registry's checksums
(``recsys.families.sequential.store.load_sequential``); a model that fails to load is logged and not served in
real time (its users get their cached lists). Products added to the catalogue after training are given
their attributes' vectors at load time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from recsys.abtest.assignment import arm_model
from recsys.api.errors import DependencyDown
from recsys.constants import ARMS, MODEL_TYPE_SEQUENTIAL, REASON_JUST_VIEWED
from recsys.integrity import ArtifactIntegrityError
from recsys.ranking.rerank import boost_popular
from recsys.families.sequential.config import ENCODER_FILE
from recsys.families.sequential.recent import sequence_key

if TYPE_CHECKING:
    from recsys.api.serving import Recommendation, RecommendationService, UserLists
    from recsys.api.session_state import SessionState
    from recsys.api.state import ServingState

log = logging.getLogger(__name__)


def is_sequential_row(row: Mapping | None) -> bool:
    return bool(row) and row.get("model_type") == MODEL_TYPE_SEQUENTIAL


def load_runtime_for(store, model_id: str, checksums: Mapping[str, str], catalog):
    """The verified runtime of ``model_id``, knowing every product of ``catalog`` (blocking: run in a thread)."""
    from recsys.families.sequential.store import load_sequential
    from recsys.families.sequential.scoring import add_products

    runtime = load_sequential(store, model_id, checksums)
    new = [info for pid, info in catalog.products.items() if int(pid) not in runtime.rows]
    if new:
        runtime = add_products(runtime, [i.product_id for i in new], [i.category for i in new],
                               [i.price for i in new])
    return runtime


async def refresh_sequential(state: ServingState) -> None:
    """``state.sequential``: the runtime of each LIVE / A/B model that is sequential (None for the others)."""
    test = state.running_test()
    wanted = {state.live_model_id, *({arm_model(test, arm) for arm in ARMS} if test else ())} - {None}
    kept = {m: r for m, r in state.sequential.items() if m in wanted}
    for model_id in sorted(wanted - set(kept)):
        if state.store is None:
            break
        try:
            checksums = await state.db.model_artifacts(model_id)
            if ENCODER_FILE not in checksums:
                kept[model_id] = None  # not a sequential model: not asked again while it is served
                continue
            kept[model_id] = await asyncio.to_thread(load_runtime_for, state.store, model_id, checksums,
                                                     state.catalog)
            log.info("loaded the sequential model %s for real-time scoring", model_id)
        except ArtifactIntegrityError as exc:  # altered, replaced or unrecorded file: never served
            log.error("sequential model %s refused: %s", model_id, exc)
        except DependencyDown as exc:
            log.warning("sequential model %s not checked: %s", model_id, exc)
        except Exception as exc:  # not readable: its users get their cached lists
            log.warning("sequential model %s not loaded: %s", model_id, exc)
    state.sequential = kept


def _just_viewed(state: ServingState, sequence) -> str | None:
    if not sequence:
        return None
    info = state.catalog.get(sequence[0])
    return info.name if info is not None and info.name else str(sequence[0])


def _context(state: ServingState, session: SessionState, just_viewed: str | None):
    """The request's context, its reasons naming the product the list follows."""
    import dataclasses

    ctx = state.context(session)
    if just_viewed:  # the reasons are a cached property of the frozen context: set it once, here
        ctx.__dict__["_reasons"] = dataclasses.replace(ctx.reasons(), just_viewed=just_viewed)
    return ctx


async def serve_sequential(service: RecommendationService, runtime, user_id: int, lists: UserLists,
                           session: SessionState, n: int, redis_ok: bool,
                           write_back: tuple | None = None) -> Recommendation | None:
    """Tier 1 of a user whose model is sequential (``lists.expected``). A hit (the list was made for this
    sequence) writes its final answer back like any Tier-1 hit (``write_back``), so the next request with
    the same session is a cached answer again, not a re-rank."""
    from recsys.api.serving import ModelList
    from recsys.families.sequential.scoring import score_next

    state, cached = service.state, lists.cached
    key, name = sequence_key(session.sequence), _just_viewed(state, session.sequence)
    ctx = _context(state, session, name)
    if cached is not None and not lists.stale and (cached.sequence == key or not key):
        state.metrics.cache.labels(result="hit").inc()
        if write_back is not None:
            return service._tier1_written_back(ctx, cached, n, write_back)
        return service._tier1(ctx, cached, n)
    state.metrics.cache.labels(result="miss").inc()
    known = [p for p in reversed(session.sequence) if p in runtime.rows]  # oldest first
    if not known:
        chosen = cached or lists.fallback  # a stale list beats none
        return service._tier1(ctx, chosen, n) if chosen is not None else None
    ids, scores = score_next(runtime, known, k=service.settings.recs_per_user, exclude=ctx.already_seen())
    items = boost_popular([ctx.candidate(int(p), float(s)) for p, s in zip(ids, scores)],
                          service.settings.rerank_trending_weight)
    reasons = [REASON_JUST_VIEWED.format(product=name)] * len(items)
    result = ModelList([c.product_id for c in items], [c.score for c in items], reasons, lists.expected, key)
    if redis_ok:
        payload = {"products": result.products, "scores": result.scores, "reasons": reasons, "seq": key,
                   "model_version": lists.expected, "updated_at": dt.datetime.now(dt.timezone.utc).isoformat()}
        key_model = None if lists.expected == state.live_model_id else lists.expected
        try:
            await state.redis.write_recs(user_id, payload, service.settings.recs_ttl_seconds, model_id=key_model)
        except DependencyDown:
            state.degraded("redis")
    return service._tier1(ctx, result, n)
