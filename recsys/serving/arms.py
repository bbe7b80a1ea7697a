"""A/B serving helpers: which arm a user is in, its stored record, and the impression of an answer.

The arm is a pure function of (test id, user id) (``recsys.serving.assignment``), known
before the Redis read, so the arm model's list is read in the same round trip. The
``ab_test:{user_id}`` record is written (buffered, TTL = the test's remaining time) when
it is missing or names another test; when the API knows no running test (a refresh
failed, or another worker started one), a stored record still decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from recsys.serving.assignment import arm_model, assign_arm, assignment_payload, remaining_seconds
from recsys.serving.impressions import impression_fields
from recsys.constants import ARMS
from recsys.keys import ab_key
from recsys.serving.state import ServingState
from recsys.serving.stores.redis_store import UserView


@dataclass(frozen=True)
class ArmChoice:
    test_id: int
    arm: str
    model_id: str


def choose_arm(state: ServingState, user_id: int) -> ArmChoice | None:
    """The user's arm in the running test (None: no test)."""
    test = state.running_test()
    if test is None:
        return None
    arm = assign_arm(test["test_id"], user_id, test["treatment_fraction"])
    return ArmChoice(int(test["test_id"]), arm, arm_model(test, arm))


def _stored(view: UserView) -> ArmChoice | None:
    ab = view.ab if isinstance(view.ab, Mapping) else None
    if not ab or ab.get("arm") not in ARMS or not ab.get("model_id"):
        return None
    try:
        return ArmChoice(int(ab.get("test_id") or 0), str(ab["arm"]), str(ab["model_id"]))
    except (TypeError, ValueError):
        return None


def settle_arm(state: ServingState, user_id: int, arm: ArmChoice | None, view: UserView,
               redis_ok: bool) -> ArmChoice | None:
    """The arm to serve; buffers the ``ab_test:{user_id}`` record when it is missing or stale."""
    stored = _stored(view)
    if arm is None:
        return stored
    if redis_ok and stored != arm:
        test = state.running_test()
        if test is not None:
            ttl = remaining_seconds(test["end_at"], dt.datetime.now(dt.timezone.utc))
            state.redis.buffer.add_set(ab_key(user_id), orjson.dumps(assignment_payload(test, arm.arm)), ttl)
    return arm


def log_impression(state: ServingState, *, request_id: str, user_id: int, products: list[int],
                   model_id: str | None, arm: ArmChoice | None, source: str) -> None:
    """Buffer the impression of one answer (no I/O here: it rides with the next pipeline)."""
    state.redis.buffer.add_impression(impression_fields(
        request_id=request_id, user_id=user_id, ts_ms=state.now_ms(), products=products, model_id=model_id,
        arm=arm.arm if arm else None, test_id=arm.test_id if arm else None, source=source))
