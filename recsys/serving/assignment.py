"""Deterministic A/B assignment: a hash of (test_id, user_id), nothing random, nothing stored first.

The same user lands in the same arm for a test on every request, worker and
restart; a new test re-shuffles users (the test id is in the hash), so one test's
treatment group is not the next one's. The stored ``ab_test:{user_id}`` value is a
record of this function's answer, never its input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

from recsys.constants import ARM_CONTROL, ARM_TREATMENT

_SCALE = float(2**64)


def bucket(test_id: int, user_id: int) -> float:
    """A uniform number in [0, 1) fixed by (test_id, user_id): the first 8 bytes of a BLAKE2b hash."""
    digest = hashlib.blake2b(f"{int(test_id)}:{int(user_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign_arm(test_id: int, user_id: int, treatment_fraction: float) -> str:
    """``"treatment"`` for a ``treatment_fraction`` share of users, ``"control"`` for the others."""
    if not 0.0 < treatment_fraction < 1.0:
        raise ValueError(f"treatment_fraction must be in (0, 1), not {treatment_fraction}")
    return ARM_TREATMENT if bucket(test_id, user_id) < treatment_fraction else ARM_CONTROL


def arm_model(test: Mapping, arm: str) -> str:
    """The model id an arm of ``test`` (a row dict of ``ab_tests``) serves."""
    if arm not in (ARM_CONTROL, ARM_TREATMENT):
        raise ValueError(f"arm must be {ARM_CONTROL!r} or {ARM_TREATMENT!r}, not {arm!r}")
    return str(test[f"{arm}_model_id"])


def assignment_payload(test: Mapping, arm: str) -> dict:
    """The JSON value of ``ab_test:{user_id}``: ``{test_id, model_id, arm}``."""
    return {"test_id": int(test["test_id"]), "model_id": arm_model(test, arm), "arm": arm}


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def remaining_seconds(end_at: dt.datetime, now: dt.datetime) -> int:
    """Seconds until the test ends (at least 1): the TTL of a user's stored assignment."""
    return max(1, int((_utc(end_at) - _utc(now)).total_seconds()))


def is_running(test: Mapping | None, now: dt.datetime) -> bool:
    """A ``RUNNING`` row whose end has not passed (the hourly DAG closes it soon after)."""
    return bool(test) and test.get("status") == "RUNNING" and _utc(test["end_at"]) > _utc(now)
