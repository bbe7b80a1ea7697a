"""Per-key rate limits: a token bucket per API key name in Redis, one atomic script, one round trip.

The bucket ``ratelimit:{name}`` holds ``RECSYS_RATE_LIMIT_BURST`` tokens and refills at
``RECSYS_RATE_LIMIT_PER_SECOND`` (``RECSYS_RATE_LIMITS`` sets both for one key name); the clock is Redis's (``TIME``), so every API worker
and node shares one bucket per key. An empty bucket answers 429 with ``Retry-After``
(whole seconds until a token is back). ``POST /events/batch`` costs one token per event (the
request's own, then one per further event: what the database is protected from is events,
not requests); a batch larger than the bucket can never pass and is a 422. With Redis down (or its circuit open), or
refusing the script (``OOM`` under ``maxmemory`` with ``noeviction``, ``NOSCRIPT``, a key of another type), the
request is served unchecked and counted (``recsys_rate_limit_unavailable_total``):
failing open keeps the shop's pages up when the limiter's store is not. The limiter reads serving's circuit
breaker (skips the check while it is open) but never records on it: it has a breaker of its own, opened by a
connectivity failure only (``recsys.db.redis_errors``), so no limiter error switches serving to the fallback tiers.
"""

from __future__ import annotations

import logging
import math
import time

from redis.exceptions import NoScriptError

from recsys.api.errors import ApiError
from recsys.db.redis_errors import REDIS_ERRORS, is_connectivity_error
from recsys.keys import KEY_RATE_LIMIT
from recsys.serving.errors import InvalidInputError
from recsys.serving.stores.breaker import CircuitBreaker

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 10.0  # one log line per this many seconds of unchecked requests (all are counted)

# KEYS[1] the bucket; ARGV rate (tokens/s), burst, cost (tokens, default 1).
# Returns {allowed 0|1, milliseconds until ``cost`` tokens}.
TOKEN_BUCKET_LUA = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3] or '1')
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, wait_ms = 0, 0
if tokens >= cost then
  tokens, allowed = tokens - cost, 1
else
  wait_ms = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, wait_ms}
"""


class RateLimited(ApiError):
    status_code = 429

    def __init__(self, name: str, retry_after: int):
        super().__init__(f"rate limit of API key {name!r} exceeded: retry in {retry_after} s")
        self.headers = {"Retry-After": str(retry_after)}


class RateLimiter:
    """``charge(name)`` takes one token (or ``tokens``) of the key's bucket or raises ``RateLimited``."""

    def __init__(self, redis_store, metrics, per_second: float, burst: int,
                 per_key: dict[str, tuple[float, int]] | None = None, breaker: CircuitBreaker | None = None):
        self.redis = redis_store  # RedisStore: its client, and serving's circuit breaker (read, never recorded on)
        self.breaker = breaker or CircuitBreaker("rate-limit")  # the limiter's own
        self.metrics = metrics
        self.default = (per_second, burst)
        self.per_key = dict(per_key or {})
        self._script = redis_store.client.register_script(TOKEN_BUCKET_LUA)
        self._warned_at: float | None = None

    def _available(self) -> bool:
        """False (the request is counted unchecked) while either circuit is open."""
        if self.breaker.available() and self.redis.breaker.available():
            return True
        self.metrics.rate_limit_skipped.inc()
        return False

    async def charge(self, name: str, tokens: int = 1) -> None:
        """``tokens`` tokens of ``name``'s bucket, in a round trip of its own."""
        per_second, burst = self.per_key.get(name, self.default)
        if per_second <= 0 or tokens <= 0 or not self._available():
            return
        try:
            answer = await self._script(keys=[KEY_RATE_LIMIT.format(name=name)], args=[per_second, burst, tokens])
        except REDIS_ERRORS as exc:
            answer = exc
        self.settle(name, answer)

    async def charge_events(self, name: str, n_events: int) -> None:
        """The rest of a request of ``n_events`` events: the key check took its first token, this takes one
        per further event. More events than the bucket holds: a 422 (waiting would never help)."""
        per_second, burst = self.per_key.get(name, self.default)
        if per_second > 0 and n_events > burst:
            raise InvalidInputError(f"a batch of {n_events} events costs {n_events} rate-limit tokens, more than "
                                    f"API key {name!r} holds ({burst}): send at most {burst} events per request",
                                    field="events")
        await self.charge(name, n_events - 1)

    def command(self, name: str) -> tuple | None:
        """EVALSHA arguments of one token of ``name``'s bucket, to ride in another pipeline (the cache
        hit's read); None when the key has no limit or the circuit is open (then counted as unchecked)."""
        per_second, burst = self.per_key.get(name, self.default)
        if per_second <= 0 or not self._available():
            return None
        return (self._script.sha, 1, KEY_RATE_LIMIT.format(name=name), per_second, burst)

    async def settle_command(self, name: str, answer) -> None:
        """What ``command``'s answer means; a script Redis did not know yet (a restart, a flush) runs again
        on its own, which loads it."""
        if isinstance(answer, NoScriptError):
            await self.charge(name)
            return
        self.settle(name, answer)

    def settle(self, name: str, answer) -> None:
        """Raises ``RateLimited`` for an empty bucket; a Redis error serves the request unchecked (counted;
        a connectivity failure opens the limiter's own breaker)."""
        if isinstance(answer, BaseException):
            if is_connectivity_error(answer):
                self.breaker.record_failure()
            self.metrics.rate_limit_skipped.inc()
            self._warn(name, answer)
            return
        self.breaker.record_success()
        allowed, wait_ms = answer
        if not int(allowed):
            self.metrics.rate_limited.labels(key=name).inc()
            raise RateLimited(name, max(1, math.ceil(int(wait_ms) / 1000)))

    def _warn(self, name: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate limit of %s not checked (Redis: %s): request served (every unchecked request is "
                        "counted in recsys_rate_limit_unavailable_total)", name, exc)
