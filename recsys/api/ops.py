"""Operations views: the serving model's registry status and the health of the dependencies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from recsys.api.errors import DependencyDown
from recsys.api.state import ServingState

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


async def health(state: ServingState) -> tuple[dict, int]:
    """``ok`` (200), ``degraded`` (200: one dependency down, answers still served), ``down`` (503)."""
    checks = {}
    for name, ping in (("redis", state.redis.ping), ("database", state.db.ping)):
        try:
            await ping()
            checks[name] = "ok"
        except DependencyDown as exc:
            checks[name] = f"error: {exc.message}"
    up = sum(v == "ok" for v in checks.values())
    status = "ok" if up == 2 else ("degraded" if up == 1 else "down")
    body = {"status": status, **checks, "catalog_products": len(state.catalog),
            "model_version": state.embeddings.model_id if state.embeddings else state.live_model_id}
    return body, 503 if status == "down" else 200
