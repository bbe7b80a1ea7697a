"""The validation split of model selection and tuning: carved from the training side only, shaped like
the question the model answers, and resting on enough users.

- ``Shape``: ``time`` (the newest ``days`` of the training window are the validation period: what users
  do in the days after training, the nightly run's question and ``evaluate --split-date``'s) or
  ``per-user`` (each user's newest events, a ``fraction`` of its positive events or its ``newest``
  ones, are its validation: what each user does next, ``--protocol per-customer`` and a per-user
  ``--test-file``).
- ``validation_split(logs, end_ms, shape, protocol, min_users)``: ``logs`` are the training side and
  ``end_ms`` the end of the training window (the test's cut-off, or the start of the day the nightly run
  evaluates); nothing at or after it is read. A time shape whose newest ``days`` hold fewer than
  ``min(min_users, eligible users)`` users is widened, doubling the days, up to ``MAX_SHARE`` of the
  training span (the last try capped at that share); if that is still short, validation switches to the
  per-user split inside the training window. Eligible users are the users the per-user split evaluates
  (those with positive events after their own training events).
- Per-user split: a user's validation events are its events at or after the time of its cut event
  (``protocol.per_customer_logs``), so they are strictly after every training event of that user; every
  other event of the window is training, and the user's sequence before its cut is what a family that
  reads sequences is given (``EvalSplit.main.history``).

``validation_split`` returns the split and ``described``: ``{"protocol", "description", "users",
"min_users", "eligible_users", "tried": [{"days", "users"}], "reason"}``, what the selection table, the
task log, the registry row and ``GET /models/status`` show.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from recsys.constants import COL_TIMESTAMP, MS_PER_DAY
from recsys.evaluation.errors import EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.protocol import (
    DEFAULT_TEST_FRACTION, PER_CUSTOMER, Cutoff, EvalSplit, Protocol, build_eval_split, per_customer_logs,
)

TIME, PER_USER = "time", "per-user"
DEFAULT_MIN_USERS = 2000  # RECSYS_SELECTION_MIN_USERS
MAX_SHARE = 1 / 3  # the widest time validation period, as a share of the training span


@dataclass(frozen=True)
class Shape:
    """How the validation period is carved: ``time`` with ``days``, or ``per-user`` with ``fraction``
    (or ``newest``: a count of each user's newest positive events)."""

    how: str = TIME
    days: float = 1.0
    fraction: float = DEFAULT_TEST_FRACTION
    newest: int | None = None

    def __post_init__(self):
        if self.how not in (TIME, PER_USER):
            raise EvaluationError(f"validation shape must be {TIME!r} or {PER_USER!r}, got {self.how!r}")
        if not self.days > 0:
            raise EvaluationError(f"validation days must be > 0, got {self.days}")
        if not 0.0 < self.fraction < 1.0:
            raise EvaluationError(f"validation fraction must be in (0, 1), got {self.fraction}")
        if self.newest is not None and self.newest < 1:
            raise EvaluationError(f"validation newest events must be >= 1, got {self.newest}")


def _days_text(days: float) -> str:
    return f"{days:.4g}" if days >= 1 else f"{days:.3g}"


def _window(logs: EventLogs, end_ms: int) -> EventLogs:
    events = logs.events[logs.events[COL_TIMESTAMP] < end_ms]  # never the evaluated day / the test period
    if events.empty:
        raise EvaluationError("no training events before the end of the training window")
    return EventLogs(events, None, logs.users, logs.products, logs.source)


def time_split(logs: EventLogs, end_ms: int, days: float, protocol: Protocol) -> EvalSplit:
    """The window's events before ``end_ms`` split at ``end_ms - days``."""
    window = _window(logs, end_ms)
    cut = end_ms - int(round(days * MS_PER_DAY))
    return build_eval_split(window, Cutoff("validation", f"last {_days_text(days)} day(s) of the training window",
                                           cut), protocol)


def per_user_description(shape: Shape) -> str:
    if shape.newest is not None:
        return f"each customer's newest {shape.newest} positive event(s) of the training window"
    return f"each customer's newest {shape.fraction:.0%} of training events"


def per_user_split(logs: EventLogs, end_ms: int, shape: Shape, protocol: Protocol) -> EvalSplit:
    """Each user's newest events before ``end_ms`` (see the module doc) as its validation."""
    window = _window(logs, end_ms)
    carved = per_customer_logs(window, shape.fraction, protocol.positive_events, newest=shape.newest)
    value = str(shape.newest) if shape.newest is not None else str(shape.fraction)
    return build_eval_split(carved, Cutoff(PER_CUSTOMER, value, None), protocol)


def _users(build) -> tuple[EvalSplit | None, int]:
    try:
        split = build()
    except EvaluationError:  # no validation users (or no training) in this carving
        return None, 0
    return split, len(split.main.users)


def validation_split(logs: EventLogs, end_ms: int, shape: Shape, protocol: Protocol,
                     min_users: int = DEFAULT_MIN_USERS) -> tuple[EvalSplit, dict]:
    """The validation split of ``logs`` (the training side, before ``end_ms``) and how it was chosen (see
    the module doc); ``EvaluationError`` when no carving has a validation user."""
    if min_users < 1:
        raise EvaluationError(f"the selection's minimum users must be >= 1, got {min_users}")
    per_user, eligible = _users(lambda: per_user_split(logs, end_ms, shape, protocol))
    base = {"min_users": min_users, "eligible_users": eligible, "tried": []}
    per_user_text = per_user_description(shape)
    if shape.how == PER_USER:
        if per_user is None:
            raise EvaluationError(f"no validation users: no customer has positive events after its own "
                                  f"training events ({per_user_text})")
        return per_user, {**base, "protocol": PER_USER, "description": per_user_text, "users": eligible,
                          "reason": "per-user split, as the test"}
    need = max(1, min(min_users, eligible))
    start = int(_window(logs, end_ms).events[COL_TIMESTAMP].min())
    widest = (end_ms - start) / MS_PER_DAY * MAX_SHARE
    days, tried = shape.days, []
    while True:
        days = min(days, widest)
        split, users = _users(lambda: time_split(logs, end_ms, days, protocol))
        tried.append({"days": float(f"{days:.3g}"), "users": users})
        if split is not None and users >= need:
            widened = f", widened from {_days_text(shape.days)} day(s)" if len(tried) > 1 else ""
            return split, {**base, "tried": tried, "protocol": TIME, "users": users,
                           "description": split.info["split"]["value"],
                           "reason": f"{users} users >= {need} (min({min_users} wanted, {eligible} eligible)){widened}"}
        if days >= widest:
            break
        days *= 2
    if per_user is None:
        raise EvaluationError(f"no validation users: the newest {_days_text(days)} day(s) of the training window "
                              f"hold {users} and no customer has positive events after its own training events")
    return per_user, {**base, "tried": tried, "protocol": PER_USER, "users": eligible,
                      "description": f"{per_user_text} (inside the training window)",
                      "reason": f"the newest {_days_text(days)} day(s) (at most {MAX_SHARE:.0%} of the training span) "
                                f"hold {users} users < {need}: switched to the per-user split"}


def end_of_training(split: EvalSplit) -> int:
    """Where ``split``'s training side ends: its cut-off, else just after its newest training event."""
    return split.cutoff_ms if split.cutoff_ms is not None else int(split.train_events[COL_TIMESTAMP].max()) + 1


def shape_of(split: EvalSplit) -> Shape:
    """The validation shape of an ``evaluate`` run (see the module doc): ``--protocol per-customer``: per
    user with the same fraction; a per-user ``--test-file`` (its test period starts before the newest
    training event: test and training interleave in time): per user, each user's newest events as many as
    the median count of test products per evaluated user; else a time split as long as the test period
    (whole days)."""
    s = split.info["split"]
    if s["how"] == PER_CUSTOMER:
        return Shape(PER_USER, fraction=float(s["value"]))
    if s["cutoff"] is None and dt.datetime.fromisoformat(s["test_period"][0]) \
            <= dt.datetime.fromisoformat(s["train_period"][1]):
        return Shape(PER_USER, newest=max(1, int(np.median([len(t) for t in split.main.truth]))))
    test_days = s.get("test_days") or 1.0
    return Shape(TIME, days=math.ceil(test_days) if test_days >= 1 else float(f"{test_days:.3g}"))


def training_logs(split: EvalSplit) -> EventLogs:
    """``split``'s training side as logs (what validation is carved from)."""
    return EventLogs(split.train_events, None, split.users, split.products, {})


def evaluate_validation(split: EvalSplit, min_users: int = DEFAULT_MIN_USERS,
                        shape: Shape | None = None) -> tuple[EvalSplit, dict]:
    """The validation split of an ``evaluate`` run: ``shape_of(split)`` (or ``shape``) carved from the
    training side only."""
    return validation_split(training_logs(split), end_of_training(split), shape or shape_of(split),
                            split.protocol, min_users)
