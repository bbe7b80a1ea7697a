"""Admin attempts per client address: a token bucket in Redis (README "Security").

Every check of the admin token, a bearer header on an admin endpoint or a ``POST /admin/login``,
first takes one token of the bucket of the client's address, ``admin_attempts:{address}``:
``RECSYS_ADMIN_ATTEMPTS_PER_MINUTE`` tokens, refilled over a minute (the per-key limiter's script,
``rate_limit.TOKEN_BUCKET_LUA``, on Redis's clock, so every worker and node shares the bucket). An
empty bucket answers 429 with ``Retry-After`` before the token is compared, right or wrong. The
login cookie (HMAC-signed, nothing to guess) costs nothing. With Redis unavailable the attempt is
checked unthrottled and counted (``recsys_rate_limit_unavailable_total``), as the per-key limit fails
open (its errors are ``recsys.db.redis_errors.REDIS_ERRORS``); the throttle reads serving's circuit breaker
(skips while it is open) but never records on it.
"""

from __future__ import annotations

import logging
import math

from starlette.requests import Request

from recsys.api.auth import ADMIN_KEY_NAME
from recsys.api.errors import ApiError
from recsys.api.rate_limit import TOKEN_BUCKET_LUA
from recsys.db.redis_errors import REDIS_ERRORS
from recsys.keys import admin_attempts_key

log = logging.getLogger(__name__)


class AdminAttemptsExceeded(ApiError):
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__(f"too many admin token attempts from your address: retry in {retry_after} s")
        self.headers = {"Retry-After": str(retry_after)}


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


class AdminThrottle:
    """``attempt(request)`` takes one token of the client address's bucket or raises ``AdminAttemptsExceeded``."""

    def __init__(self, redis_store, metrics, per_minute: int):
        self.redis = redis_store  # RedisStore: its client, and serving's breaker (read, never recorded on)
        self.metrics = metrics
        self.per_second, self.burst = per_minute / 60.0, per_minute
        self._script = redis_store.client.register_script(TOKEN_BUCKET_LUA)

    async def attempt(self, request: Request) -> None:
        address = client_address(request)
        if not self.redis.breaker.available():
            self.metrics.rate_limit_skipped.inc()
            return
        try:
            allowed, wait_ms = await self._script(keys=[admin_attempts_key(address)],
                                                  args=[self.per_second, self.burst])
        except REDIS_ERRORS as exc:  # any of them, refusals too: checked unthrottled
            self.metrics.rate_limit_skipped.inc()
            log.warning("admin attempt of %s not throttled (Redis: %s): checked", address, type(exc).__name__)
            return
        if not int(allowed):
            self.metrics.rate_limited.labels(key=ADMIN_KEY_NAME).inc()  # recsys_rate_limited_total{key="admin"}
            raise AdminAttemptsExceeded(max(1, math.ceil(int(wait_ms) / 1000)))
