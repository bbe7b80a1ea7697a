"""A/B test operations for the API, the CLI and the nightly DAG: start, stop, refresh, views.

Sync functions over a SQLAlchemy engine (and a sync Redis client where impressions
are flushed or assignments cleared); the API calls them in a thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import Engine

from recsys import registry
from recsys.abtest import store
from recsys.abtest.flusher import flush_impressions
from recsys.abtest.results import finalize_test, judging_rules, update_results
from recsys.abtest.store import InvalidTestError
from recsys.artifacts import ArtifactStore, model_key
from recsys.constants import AB_COMPLETED, AB_RUNNING, AB_STOPPED, STATUS_ARCHIVED, STATUS_LIVE
from recsys.keys import KEY_AB_ASSIGNMENT
from recsys.settings import DEFAULTS, Settings

log = logging.getLogger(__name__)
MAX_DURATION_HOURS = 24 * 90


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_request(duration_hours: float, treatment_fraction: float) -> None:
    if not 0 < treatment_fraction < 1:
        raise InvalidTestError(f"treatment_fraction must be between 0 and 1 (exclusive), not {treatment_fraction}")
    if not 0 < duration_hours <= MAX_DURATION_HOURS:
        raise InvalidTestError(f"duration_hours must be in (0, {MAX_DURATION_HOURS}], not {duration_hours}")


def _published(artifacts: ArtifactStore, row) -> bool:
    """Servable: what its family serves the API from is in the store."""
    from recsys.pipeline.publish import published

    return published(artifacts, row.model_id, row.model_type)


def check_models(engine: Engine, model_ids: tuple[str, ...], artifacts: ArtifactStore | None,
                 settings: Settings = DEFAULTS) -> None:
    """Every model exists (``UnknownModelError``), is not archived and, when ``artifacts`` is given, can be
    served: a model that is not published yet is made ready through the release's ``prepare`` (its files
    verified, then published), or refused naming the command that does it."""
    from recsys.pipeline.release import prepare

    for model_id in dict.fromkeys(model_ids):
        row = registry.get_model(engine, model_id)
        if row.status == STATUS_ARCHIVED:
            raise InvalidTestError(f"model {model_id!r} is ARCHIVED: archived models cannot enter a test")
        if artifacts is None or row.status == STATUS_LIVE or _published(artifacts, row):
            continue
        try:
            prepare(engine, artifacts, model_id, settings)
        except Exception as exc:  # a missing or altered file: nothing to serve the arm from
            raise InvalidTestError(f"model {model_id!r} is not published and cannot be ({exc}); fix its files, "
                                   f"then `python -m recsys models prepare {model_id}`") from exc


def close_expired(engine: Engine, now: dt.datetime | None = None, settings: Settings = DEFAULTS) -> list[int]:
    """Close the RUNNING tests whose end has passed (the hourly DAG does it too)."""
    now = now or _now()
    closed = []
    for test in store.running_tests(engine):
        if test["end_at"] <= now:
            finalize_test(engine, test["test_id"], status=AB_COMPLETED, now=now, settings=settings)
            closed.append(test["test_id"])
    return closed


def start_test(engine: Engine, *, treatment_model_id: str, control_model_id: str, duration_hours: float = 24.0,
               treatment_fraction: float = 0.2, now: dt.datetime | None = None, settings: Settings = DEFAULTS,
               artifacts: ArtifactStore | None = None) -> dict:
    """A new RUNNING test; the treatment (when not LIVE) becomes a CANDIDATE recorded with the test id.

    Raises ``UnknownModelError``, ``InvalidTestError`` or ``TestConflictError`` (another test runs).
    """
    now = now or _now()
    check_request(duration_hours, treatment_fraction)
    check_models(engine, (treatment_model_id, control_model_id), artifacts, settings)
    close_expired(engine, now, settings)
    end = now + dt.timedelta(hours=duration_hours)
    test = store.insert_test(engine, control_model_id=control_model_id, treatment_model_id=treatment_model_id,
                             treatment_fraction=treatment_fraction, start_at=now, end_at=end,
                             results={"config": judging_rules(settings), "planned_end_at": end.isoformat()})
    if registry.get_model(engine, treatment_model_id).status != STATUS_LIVE:
        registry.mark_candidate(engine, treatment_model_id,
                                reason=f"in A/B test {test['test_id']} against {control_model_id}")
    log.info("A/B test %s started: %s vs %s, %.0f%% treatment, %s h", test["test_id"], treatment_model_id,
             control_model_id, 100 * treatment_fraction, duration_hours)
    return test


def clear_assignments(redis, test_id: int) -> int:
    """Delete the stored ``ab_test:{user_id}`` values of a test (they would outlive an early stop)."""
    deleted = 0
    for key in redis.scan_iter(KEY_AB_ASSIGNMENT.format(user_id="*"), count=1000):
        raw = redis.get(key)
        try:
            stored = json.loads(raw) if raw is not None else None
        except ValueError:
            stored = None
        if isinstance(stored, dict) and stored.get("test_id") == int(test_id):
            deleted += redis.delete(key)
    return deleted


def stop_test(engine: Engine, test_id: int, *, redis=None, now: dt.datetime | None = None,
              settings: Settings = DEFAULTS) -> dict:
    """End a running test now: flush impressions, final results, decision, clear assignments."""
    test = store.get_test(engine, test_id)
    if test["status"] != AB_RUNNING:
        raise InvalidTestError(f"A/B test {test_id} is {test['status']}, not RUNNING")
    if redis is not None:
        flush_impressions(engine, redis)
    row = finalize_test(engine, test_id, status=AB_STOPPED, now=now, settings=settings)
    if redis is not None:
        clear_assignments(redis, test_id)
    return row


def refresh_test(engine: Engine, test_id: int, *, redis=None, max_age_seconds: float = 0.0,
                 now: dt.datetime | None = None, settings: Settings = DEFAULTS) -> dict:
    """The test with results no older than ``max_age_seconds`` (closing it when its end has passed)."""
    now = now or _now()
    test = store.get_test(engine, test_id)
    if test["status"] != AB_RUNNING:
        return test
    computed = (test.get("results") or {}).get("computed_at")
    if computed and (now - dt.datetime.fromisoformat(computed)).total_seconds() < max_age_seconds:
        return test
    if redis is not None:
        flush_impressions(engine, redis)
    if test["end_at"] <= now:
        return finalize_test(engine, test_id, status=AB_COMPLETED, now=now, settings=settings)
    update_results(engine, test_id, as_of=now, settings=settings)
    return store.get_test(engine, test_id)


def _iso(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


def view_of(test: dict) -> dict:
    """The JSON body of one test (``GET /ab-tests/{id}``)."""
    keys = ("test_id", "status", "control_model_id", "treatment_model_id", "treatment_fraction", "num_users",
            "control_ctr", "treatment_ctr", "pvalue", "winner", "results")
    body = {k: test.get(k) for k in keys}
    body.update(start_time=_iso(test["start_at"]), end_time=_iso(test["end_at"]))
    return body
