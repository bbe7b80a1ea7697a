"""Which database errors mean "the database is unreachable" and which "this row or request is bad".

Circuit breakers and the impression flusher act on the difference: a connectivity
failure affects everyone (open the breaker, keep the work for a retry); an input
error affects one request or one row (answer it with a 4xx, or set the row aside)
and must never take the others down with it.

Drivers differ (psycopg, asyncpg through SQLAlchemy's adapter, sqlite3), so the
checks walk the exception chain (SQLAlchemy's ``orig``, then ``__cause__``) and
look at PEP 249 class names and PostgreSQL SQLSTATE classes:
- input: ``DataError``, ``IntegrityError``, SQLSTATE ``22*`` (data exception) and
  ``23*`` (integrity constraint), ``OverflowError`` (sqlite3 cannot bind an int beyond
  64 bits; asyncpg's client-side "invalid input for query argument" is a ``DataError``);
- connectivity: ``OperationalError``, ``InterfaceError``, a connection SQLAlchemy
  invalidated, pool timeouts, ``OSError`` / ``TimeoutError``, SQLSTATE ``08*``
  (connection), ``53*`` (insufficient resources), ``57P*`` (server shutting down).
Anything else (a ``ProgrammingError`` such as a missing table) is neither: it is
reported, but it opens no breaker and dead-letters no row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

INPUT_NAMES = frozenset({"DataError", "IntegrityError"})
CONNECTIVITY_NAMES = frozenset({"OperationalError", "InterfaceError", "ConnectionDoesNotExistError"})
CONNECTIVITY_TYPES = (OSError, TimeoutError, asyncio.TimeoutError, sa_exc.TimeoutError, sa_exc.DisconnectionError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        yield e
        todo += [getattr(e, "orig", None), e.__cause__]


def _names(e: BaseException) -> set[str]:
    return {c.__name__ for c in type(e).__mro__}


def _sqlstate(e: BaseException) -> str:
    return str(getattr(e, "sqlstate", None) or getattr(e, "pgcode", None) or "")


def is_input_error(exc: BaseException) -> bool:
    """The database refused a value of this request or row (out of range, malformed, constraint)."""
    for e in _chain(exc):
        if isinstance(e, OverflowError) or _names(e) & INPUT_NAMES or _sqlstate(e)[:2] in ("22", "23"):
            return True
    return False


def is_connectivity_error(exc: BaseException) -> bool:
    """The database could not be reached or used at all (retry later; open a circuit breaker)."""
    if is_input_error(exc):
        return False
    for e in _chain(exc):
        state = _sqlstate(e)
        if (isinstance(e, CONNECTIVITY_TYPES) or _names(e) & CONNECTIVITY_NAMES
                or state[:2] in ("08", "53") or state.startswith("57P")):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
    return False


def short_reason(exc: BaseException, limit: int = 300) -> str:
    """One line naming the error: ``NumericValueOutOfRange: value ... is out of range``."""
    root = list(_chain(exc))[-1]
    text = " ".join(str(root).split())
    return f"{type(root).__name__}: {text}"[:limit]
