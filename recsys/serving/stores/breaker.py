"""A small circuit breaker: after a failure, skip a dependency for a cool-down.

When Redis hangs, every request would otherwise wait for the socket timeout;
with the breaker open the fallback tiers answer at once, and one request per
cool-down tries the dependency again. The stores record a failure only for a
connectivity failure (``recsys.db.errors.is_connectivity_error`` for the database,
``recsys.db.redis_errors.is_connectivity_error`` for Redis): an error caused by one
request's input, or a command Redis refuses (``OOM`` under ``maxmemory``, ``WRONGTYPE``,
``NOSCRIPT``), opens nothing. The rate limiter has a breaker of its own: its errors
never open serving's.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, name: str, cooldown_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        if cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds must be >= 0, not {cooldown_seconds}")
        self.name = name
        self.cooldown = cooldown_seconds
        self._clock = clock
        self._open_until = 0.0
        self.failures = 0

    def available(self) -> bool:
        """True when the dependency may be tried (closed, or the cool-down is over)."""
        return self._clock() >= self._open_until

    def record_failure(self) -> None:
        self.failures += 1
        self._open_until = self._clock() + self.cooldown

    def record_success(self) -> None:
        self._open_until = 0.0
