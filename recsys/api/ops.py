"""Operations views: the serving model's registry status and the health of the dependencies.

``/health`` is public (load balancers): anyone gets its status only; a caller with an API key
also gets each check (with the error), the catalogue size and the served model. The stores are
pinged at most once per ``HEALTH_MAX_AGE_SECONDS`` whatever the number of calls (``StoreChecks``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping

from recsys.serving.errors import DependencyDown
from recsys.serving.state import ServingState

NO_MODEL = "NO_MODEL"


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def training_accuracy(metrics: Mapping | None) -> float | None:
    """precision@k of the model on its hold-out day (``metrics["new"]``, written by evaluate)."""
    block = (metrics or {}).get("new") or {}
    for key, value in block.items():
        if key.startswith("precision@") and value is not None:
            return float(value)
    return None


def model_status_of(row: Mapping | None) -> dict:
    """The ``/models/status`` body of a registry row (None: no LIVE model)."""
    if not row:
        return {"status": NO_MODEL, "model_version": None, "version": None, "last_trained_at": None,
                "training_accuracy": None, "metrics": {}, "model_type": None, "selection": None}
    metrics = row.get("metrics") or {}
    return {"status": row.get("status"), "model_version": row.get("model_id"), "version": row.get("version"),
            "last_trained_at": _iso(row.get("created_at")), "training_accuracy": training_accuracy(metrics),
            "metrics": metrics, "model_type": row.get("model_type"),
            "selection": (row.get("params") or {}).get("selection")}


async def model_status(state: ServingState) -> dict:
    """From the registry; the last snapshot when the database is down."""
    try:
        row = await state.db.live_model()
    except DependencyDown:
        state.degraded("database")
        row = state.live_model
    return model_status_of(row)


HEALTH_MAX_AGE_SECONDS = 1.0


class StoreChecks:
    """The stores' pings of ``/health``, each at most once per ``max_age`` seconds: a burst of calls waits for
    one round of pings and shares its answers (a public endpoint is no cheap way to load the stores)."""

    def __init__(self, max_age: float = HEALTH_MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._at: float | None = None
        self._checks: dict[str, str] = {}

    async def of(self, state: ServingState) -> dict[str, str]:
        """``{"redis": "ok" | "error: ...", "database": ...}``, pinged now or at most ``max_age`` ago."""
        async with self._lock:
            if self._at is None or self._clock() - self._at >= self.max_age:
                self._checks = {"redis": await _check(state.redis.ping), "database": await _check(state.db.ping)}
                self._at = self._clock()
            return self._checks


async def _check(ping) -> str:
    try:
        await ping()
        return "ok"
    except DependencyDown as exc:
        return f"error: {exc.message}"


async def health(state: ServingState, checks: StoreChecks, *, details: bool) -> tuple[dict, int]:
    """``ok`` (200), ``degraded`` (200: one dependency down, answers still served), ``down`` (503); with
    ``details``, each check, the catalogue size and the served model too."""
    found = await checks.of(state)
    up = sum(v == "ok" for v in found.values())
    status = "ok" if up == 2 else ("degraded" if up == 1 else "down")
    body: dict = {"status": status}
    if details:
        body.update(found, catalog_products=len(state.catalog),
                    model_version=state.embeddings.model_id if state.embeddings else state.live_model_id)
    return body, 503 if status == "down" else 200
