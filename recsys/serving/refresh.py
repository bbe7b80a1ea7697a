"""Background refresh of the serving snapshots: catalog, LIVE model (+ its served form), fallback lists, repurchase
intervals.

Each refresh keeps the previous snapshot when its source fails, and counts the
failure as degraded; ``refresh_forever`` repeats every ``api_refresh_seconds``.
A served model (the LIVE one and the running A/B test's others, of any family) is opened from this
node's cache (``recsys.serving.model_cache``); a model refresh also removes the cached files of models no
longer LIVE or in the running A/B test.
``flush_writes_forever`` sends buffered impressions that no request took along.
"""

from __future__ import annotations

import asyncio
import logging

import pandas as pd

from recsys.serving.assignment import arm_model
from recsys.constants import ARMS, COL_ITEM
from recsys.families import ServedModel, family_of
from recsys.integrity import ArtifactIntegrityError
from recsys.ranking.merch_rules import rule_set
from recsys.ranking.repurchase import CategoryRepurchase
from recsys.serving.catalog import CatalogSnapshot
from recsys.serving.errors import DependencyDown, ServingError
from recsys.serving.fallbacks import lists_from_counts, lists_from_redis
from recsys.serving.model_cache import load_served, prune
from recsys.serving.state import ServingState

log = logging.getLogger(__name__)


async def refresh_catalog(state: ServingState) -> bool:
    try:
        rows = await state.db.catalog_rows()
    except DependencyDown as exc:
        log.warning("catalog refresh skipped: %s", exc)
        return False
    state.catalog = await asyncio.to_thread(CatalogSnapshot.from_rows, rows)  # 10^5-10^6 rows: not on the loop
    return True


async def refresh_model(state: ServingState) -> bool:
    """The LIVE registry row, a running A/B test, and the served models when they changed."""
    try:
        live = await state.db.live_model()
        state.ab_test = await state.db.running_ab_test()
    except DependencyDown as exc:
        log.warning("model refresh skipped: %s", exc)
        return False
    state.live_model = live
    model_id = live["model_id"] if live else None
    await refresh_arm_models(state)
    if model_id is not None and state.store is not None and (
            state.embeddings is None or state.embeddings.model_id != model_id):
        loaded = await _load(state, model_id, live.get("model_type"), "embeddings")
        if loaded is not None:
            state.embeddings = loaded
            state.real_time[model_id] = family_of(live.get("model_type")).capabilities.real_time
            log.info("loaded the served model %s (%s)", model_id, live.get("model_type"))
    await prune_embeddings(state)
    return True


def _catalog_frame(catalog: CatalogSnapshot) -> pd.DataFrame:
    """The catalogue's products as a frame (``product_id, category, price``) for a family that gives new
    products a vector when it is opened."""
    return pd.DataFrame([(pid, p.category, p.price) for pid, p in catalog.products.items()],
                        columns=[COL_ITEM, "category", "price"])


async def _load(state: ServingState, model_id: str, model_type: str | None, what: str) -> ServedModel | None:
    """A model as this node serves it, verified against the checksums its registry row records, or None
    (logged) when it cannot be read: serving goes on with what it has."""
    try:
        checksums = await state.db.model_artifacts(model_id)
        products = _catalog_frame(state.catalog)
        return await asyncio.to_thread(load_served, state.store, model_id, state.settings.embeddings_cache_dir,
                                       checksums, model_type, products)
    except ArtifactIntegrityError as exc:  # altered, replaced or unrecorded file: never served
        log.error("%s of %s refused: %s", what, model_id, exc)
        return None
    except Exception as exc:  # not published yet, or a bad file: keep serving from the cache
        log.warning("%s of %s not loaded: %s", what, model_id, exc)
        return None


async def refresh_arm_models(state: ServingState) -> None:
    """The running A/B test's models other than the LIVE one (for on-the-fly and real-time scoring)."""
    test = state.running_test()
    wanted = {arm_model(test, arm) for arm in ARMS} - {state.live_model_id} if test else set()
    kept = {m: e for m, e in state.arm_embeddings.items() if m in wanted}
    for model_id in sorted(wanted - set(kept)):
        if state.store is None:
            break
        try:
            model_type = await state.db.model_type(model_id)
        except DependencyDown as exc:
            log.warning("A/B model %s not checked: %s", model_id, exc)
            continue
        loaded = await _load(state, model_id, model_type, "embeddings of A/B model")
        if loaded is not None:  # else its users get its cached lists or the LIVE ones
            kept[model_id] = loaded
            state.real_time[model_id] = family_of(model_type).capabilities.real_time
            log.info("loaded the served A/B model %s", model_id)
    state.arm_embeddings = kept


async def prune_embeddings(state: ServingState) -> None:
    """Remove this node's cached files of models that are neither LIVE, in the running test, nor held here."""
    test = state.running_test()
    keep = {state.live_model_id, *({arm_model(test, arm) for arm in ARMS} if test else ())}
    if state.embeddings is not None:  # kept while a new LIVE model fails to load
        keep.add(state.embeddings.model_id)
    try:
        removed = await asyncio.to_thread(prune, state.settings.embeddings_cache_dir, keep - {None})
    except OSError as exc:
        log.warning("embeddings cache not pruned: %s", exc)
        return
    if removed:
        log.info("removed the cached embeddings of %s", ", ".join(removed))


async def flush_writes_forever(state: ServingState, tick_seconds: float = 0.25) -> None:
    """Send buffered writes older than ``impression_max_delay_seconds`` (requests usually take them first)."""
    max_delay = state.settings.impression_max_delay_seconds
    while True:
        await asyncio.sleep(min(tick_seconds, max_delay))
        age = state.redis.buffer.oldest_age()
        if age is None or age < max_delay:
            continue
        try:
            await state.redis.flush_buffer()
        except DependencyDown:
            state.degraded("redis")
        except Exception:  # never let the loop die
            log.exception("impression flush failed")


async def refresh_lists(state: ServingState) -> bool:
    """The Redis lists of precompute; the database's recent events when Redis has none."""
    try:
        lists = lists_from_redis(await state.redis.read_lists())
        if not lists.empty:
            state.lists = lists
            return True
    except DependencyDown as exc:
        log.warning("fallback lists not read from Redis: %s", exc)
    if not state.lists.empty and state.lists.origin == "redis":
        return False  # keep the last lists precompute wrote
    try:
        newest, counts = await state.db.event_counts(state.settings.trending_days)
    except DependencyDown as exc:
        log.warning("fallback lists not computed from the database: %s", exc)
        return False
    now_ms = newest if newest is not None else state.now_ms()
    state.lists = lists_from_counts(counts, state.catalog, now_ms=now_ms, new_days=state.settings.new_product_days)
    return True


async def refresh_repurchase(state: ServingState) -> bool:
    """The categories' repurchase intervals of the nightly lists step (buy it again); kept when unreadable."""
    try:
        raw = await state.redis.repurchase()
    except DependencyDown as exc:
        log.warning("repurchase intervals not read from Redis: %s", exc)
        return False
    try:
        state.repurchase = {str(c): CategoryRepurchase.from_json(v)
                            for c, v in ((raw or {}).get("categories") or {}).items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("repurchase intervals malformed, kept the previous ones: %s", exc)
        return False
    return True


async def refresh_rules(state: ServingState) -> bool:
    """The merchandising rules, read again when their version changed (one aggregate query otherwise)."""
    try:
        version = await state.db.merch_rules_version()
        if version != state.merch_rules.version:
            state.merch_rules = rule_set(version, await state.db.merch_rules())
            log.info("merchandising rules %s: %d not expired", version, len(state.merch_rules.rules))
    except ServingError as exc:  # the database down, or its table refused (an unmigrated database)
        log.warning("merchandising rules refresh skipped: %s", exc)
        return False
    return True


async def rules_forever(state: ServingState) -> None:
    """``refresh_rules`` every ``RECSYS_MERCH_RULES_POLL_SECONDS``: a rule changed through any node is served
    by every node within that."""
    await _forever(state, state.settings.merch_rules_poll_seconds, refresh_rules, "merchandising rules refresh")


async def refresh_all(state: ServingState) -> dict[str, bool]:
    catalog = await refresh_catalog(state)  # first: the database lists need the catalog
    model = await refresh_model(state)
    lists = await refresh_lists(state)
    repurchase = await refresh_repurchase(state)
    rules = await refresh_rules(state)
    # the cached answers' digest of the new snapshots (every product: 0.13-0.29 s at 10^5), worked out here in a
    # thread rather than inside the first request after each refresh, which it stalled with the event loop
    await asyncio.to_thread(state.answer_context)
    return {"catalog": catalog, "model": model, "lists": lists, "repurchase": repurchase, "rules": rules}


async def _forever(state: ServingState, seconds: float, step, what: str) -> None:
    """``step(state)`` every ``seconds``, a failure logged and the loop kept."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await step(state)
        except Exception:  # never let the loop die
            log.exception("%s failed", what)


async def refresh_forever(state: ServingState) -> None:
    await _forever(state, state.settings.api_refresh_seconds, refresh_all, "serving refresh")
