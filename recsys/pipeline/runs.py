"""Step records of the nightly run: one ``pipeline_runs`` row per (run date, step).

Steps write them through ``recsys.pipeline.steps.recording`` (or its ``recorded`` decorator), the one way a
step records itself; this module is the table's reader and writer.

Every step leaves what it did (rows extracted, validation failures, ...) for
metrics and on-call. ``run_date`` is the day the step processed (the ``day``
argument every step receives). Writing a step again for the same date replaces
its row, so a re-run upserts instead of appending.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy import Engine, select

from recsys.constants import STEP_FAILED, STEP_STATUSES
from recsys.db.models import PipelineRun

log = logging.getLogger(__name__)

_STEP_MAX_LEN = 64


def _insert_for(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported databases
        raise NotImplementedError(f"unsupported database: {engine.dialect.name}")
    return insert


def _check_inputs(run_date: dt.date, step: str, status: str, details: dict) -> None:
    if not isinstance(run_date, dt.date) or isinstance(run_date, dt.datetime):
        raise TypeError(f"run_date must be a datetime.date, got {run_date!r}")
    if not step or len(step) > _STEP_MAX_LEN:
        raise ValueError(f"step must be a non-empty name of at most {_STEP_MAX_LEN} characters, got {step!r}")
    if status not in STEP_STATUSES:
        raise ValueError(f"status must be one of {', '.join(STEP_STATUSES)}, got {status!r}")
    if not isinstance(details, dict):
        raise TypeError(f"details must be a dict, got {type(details).__name__}")
    try:
        json.dumps(details, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"details of step {step!r} are not plain JSON: {exc}") from exc


def record_step(engine: Engine, run_date: dt.date, step: str, status: str, details: dict) -> None:
    """Upsert the record of ``step`` for ``run_date`` (natural key (run_date, step))."""
    _check_inputs(run_date, step, status, details)
    row = {
        "run_date": run_date,
        "step": step,
        "status": status,
        "details": details,
        "updated_at": dt.datetime.now(dt.timezone.utc),
    }
    insert = _insert_for(engine)
    stmt = insert(PipelineRun).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_date", "step"],
        set_={c: stmt.excluded[c] for c in ("status", "details", "updated_at")},
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def get_steps(engine: Engine, run_date: dt.date) -> list[dict[str, Any]]:
    """The records of ``run_date``, oldest update first: ``{run_date, step, status, details, updated_at}``."""
    table = PipelineRun.__table__
    query = select(table).where(table.c.run_date == run_date).order_by(table.c.updated_at, table.c.step)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [dict(r) for r in rows]


def record_failure(engine: Engine, run_date: dt.date, step: str, exc: BaseException,
                   details: dict | None = None) -> None:
    """Best effort: record ``step`` as FAILED with the error (after the ``details`` the step gathered before it
    failed); never hides ``exc`` behind a second error."""
    details = {**(details or {}), "error_type": type(exc).__name__, "error": str(exc)[:2000]}
    try:
        record_step(engine, run_date, step, STEP_FAILED, details)
    except Exception:  # the database may be what failed: the caller re-raises the original error
        log.warning("could not record the failure of step %s for %s", step, run_date, exc_info=True)
