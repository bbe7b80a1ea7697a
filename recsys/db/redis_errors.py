"""Which Redis errors mean "Redis is unreachable" and which "Redis refused this command".

The Redis twin of ``recsys.db.errors``: circuit breakers act on the difference. A
connectivity failure affects everyone (open the breaker, keep buffered writes for a
retry); a refused command affects that command only and must never switch serving
to the fallback tiers (or the rate limit off) for every worker.

- connectivity: redis-py's ``ConnectionError`` (refused, reset, ``LOADING``,
  authentication, no free connection), ``TimeoutError``, ``OSError``,
  ``asyncio.TimeoutError``, a reply that is not RESP (``InvalidResponse``: the
  connection is unusable), the cluster-wide refusals ``CLUSTERDOWN`` / ``MASTERDOWN``,
  a cluster whose nodes cannot be reached (``ClusterError``, ``RedisClusterException``),
  and ``BUSY`` (a script blocks the server for everyone);
- refused (every other error reply): ``OOM`` (``maxmemory`` reached under the
  ``noeviction`` policy: writes are refused, reads still answer), ``WRONGTYPE``,
  ``NOSCRIPT``, ``READONLY``, ``NOPERM``, a script's own error, and redis-py's
  client-side ``DataError`` (a value it cannot encode).
The checks walk the exception chain (``__cause__``), so an error wrapped on its way
up (``DependencyDown`` raised ``from`` it) is classified by its origin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from redis.exceptions import (
    ClusterDownError, ClusterError, ConnectionError, DataError, InvalidResponse, RedisClusterException,
    RedisError, ResponseError, TimeoutError,
)

# every exception a Redis call may raise (RedisClusterException is not a RedisError)
REDIS_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)
CONNECTIVITY_TYPES = (ConnectionError, TimeoutError, OSError, asyncio.TimeoutError, InvalidResponse,
                      ClusterDownError, ClusterError, RedisClusterException)
SERVER_BUSY_PREFIXES = ("BUSY ",)  # "BUSY Redis is busy running a script": no command of anyone runs


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and not any(exc is s for s in seen):
        seen.append(exc)
        yield exc
        exc = exc.__cause__


def is_connectivity_error(exc: BaseException | None) -> bool:
    """Redis could not be reached or used by anyone (retry later; open a circuit breaker)."""
    for e in _chain(exc):
        if isinstance(e, CONNECTIVITY_TYPES):
            return True
        if isinstance(e, ResponseError) and str(e).startswith(SERVER_BUSY_PREFIXES):
            return True
    return False


def is_refused_command(exc: BaseException | None) -> bool:
    """Redis answered, and refused this one command (OOM, WRONGTYPE, NOSCRIPT...): the others are fine."""
    if is_connectivity_error(exc):
        return False
    return any(isinstance(e, (ResponseError, DataError)) for e in _chain(exc))
