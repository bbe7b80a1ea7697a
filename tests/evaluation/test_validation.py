"""The selection's validation split (``recsys.evaluation.validation``): widening a time split, the switch
to a per-user split, no leak of a validation or test event into training, eligible users, and the shape
of each ``evaluate`` protocol."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.constants import COL_TIMESTAMP, COL_USER, MS_PER_DAY, PURCHASE
from recsys.evaluation.errors import EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.protocol import PER_CUSTOMER, Cutoff, Protocol, build_eval_split, choose_cutoff, \
    per_customer_logs
from recsys.evaluation.validation import (
    PER_USER, TIME, Shape, evaluate_validation, per_user_split, shape_of, validation_split,
)
from tests.evaluation.eval_helpers import synthetic_logs

N_USERS, DAYS = 300, 30
END = DAYS * MS_PER_DAY  # the end of the training window: the evaluated day starts here
PROTOCOL = Protocol(k=5)


def bursty_logs(after_end: bool = True) -> EventLogs:
    """User u buys two products early (day u % 10) and one late (day 29 - u % 15): the newest d days hold
    20 * d users (up to the widest 10 days: 200 of the 300). With ``after_end``, each user also buys a
    sentinel product (id >= 900) on the evaluated day and later: never to be read."""
    rows = []
    for u in range(1, N_USERS + 1):
        early = (u % 10) * MS_PER_DAY + u
        rows += [(u, u % 20, early), (u, 20 + (u + 7) % 20, early)]
        rows.append((u, 20 + u % 20, (DAYS - 1 - u % 15) * MS_PER_DAY + 3600_000 + u))
        if after_end:
            rows += [(u, 900 + u % 5, END + u), (u, 910 + u % 5, END + 3 * MS_PER_DAY + u)]
    events = pd.DataFrame(rows, columns=["user_id", "product_id", "timestamp"]).assign(
        event_type=PURCHASE, price=2.0, session_id=None, client_event_id=None)
    users = pd.DataFrame({"user_id": range(1, N_USERS + 1), "country": "GB", "language": None, "device_type": None})
    ids = np.r_[np.arange(40), 900 + np.arange(5), 910 + np.arange(5)]
    products = pd.DataFrame({"product_id": ids, "name": "thing", "category": [f"c{i % 4}" for i in range(len(ids))],
                             "price": 2.0, "in_stock": True})
    return EventLogs(events, None, users, products, {})


def test_a_short_time_split_is_widened_by_doubling_until_it_holds_enough_users():
    val, how = validation_split(bursty_logs(), END, Shape(TIME, days=1), PROTOCOL, min_users=70)
    assert how["protocol"] == TIME and how["tried"] == [{"days": 1, "users": 20}, {"days": 2, "users": 40},
                                                        {"days": 4, "users": 80}]
    assert how["users"] == len(val.main.users) == 80 and how["eligible_users"] == N_USERS
    assert how["description"] == "last 4 day(s) of the training window" and "widened from 1 day(s)" in how["reason"]
    assert val.cutoff_ms == END - 4 * MS_PER_DAY
    assert val.train_events[COL_TIMESTAMP].max() < val.cutoff_ms


def test_enough_users_in_the_first_window_is_not_widened():
    val, how = validation_split(bursty_logs(), END, Shape(TIME, days=2), PROTOCOL, min_users=30)
    assert how["tried"] == [{"days": 2, "users": 40}] and how["protocol"] == TIME and val.cutoff_ms == END - 2 * MS_PER_DAY


def test_too_few_users_within_a_third_of_the_window_switches_to_the_per_user_split():
    val, how = validation_split(bursty_logs(), END, Shape(TIME, days=1), PROTOCOL)  # 2000 wanted, 300 eligible
    assert [t["days"] for t in how["tried"]] == [1, 2, 4, 8, 10]  # the last try capped at a third of 30 days
    assert how["tried"][-1]["users"] == 200 < N_USERS == how["eligible_users"]
    assert how["protocol"] == PER_USER and how["users"] == len(val.main.users) == N_USERS
    assert "switched to the per-user split" in how["reason"] and "inside the training window" in how["description"]
    assert val.info["split"]["how"] == PER_CUSTOMER


def test_a_small_shop_needs_every_eligible_user_not_the_configured_thousands():
    logs = bursty_logs()
    days = {u: DAYS - 1 - u % 15 for u in range(1, N_USERS + 1)}
    kept = [u for u, d in days.items() if d >= DAYS - 4]  # only the users active in the newest 4 days...
    early_only = logs.events[~logs.events[COL_USER].isin(kept)].groupby(COL_USER).head(2)  # ...have a later event
    events = pd.concat([logs.events[logs.events[COL_USER].isin(kept)], early_only])
    small = EventLogs(events, None, logs.users, logs.products, {})
    val, how = validation_split(small, END, Shape(TIME, days=1), PROTOCOL)
    assert how["eligible_users"] == len(kept) == 80 and how["min_users"] == 2000
    assert how["protocol"] == TIME and how["users"] == 80 and how["tried"][-1]["days"] == 4


def test_the_per_user_split_never_puts_a_validation_or_test_event_in_training():
    logs = bursty_logs()
    val, how = validation_split(logs, END, Shape(TIME, days=1), PROTOCOL)
    assert how["protocol"] == PER_USER
    window = logs.events[logs.events[COL_TIMESTAMP] < END]
    train = val.train_events
    key = ["user_id", "product_id", "timestamp"]
    held = window.merge(train[key], on=key, how="left", indicator=True)
    validation = held[held["_merge"] == "left_only"]  # the window's events that are not training: validation
    assert len(validation) == N_USERS
    last_train = train.groupby(COL_USER)[COL_TIMESTAMP].max()
    first_val = validation.groupby(COL_USER)[COL_TIMESTAMP].min()
    assert (last_train.reindex(first_val.index) < first_val).all()  # every user: training strictly before
    history = val.main.history.frame  # what a sequence model reads: each user's events before its validation
    assert (history.groupby(COL_USER)[COL_TIMESTAMP].max().reindex(first_val.index) < first_val).all()
    assert train[COL_TIMESTAMP].max() < END and not train["product_id"].ge(900).any()  # nothing of day D or later
    ids = val.main.products["product_id"].to_numpy()
    assert not (ids >= 900).any() and all(not (ids[t] >= 900).any() for t in val.main.truth)


def test_eligible_users_are_the_users_the_per_user_split_evaluates():
    logs = bursty_logs()
    _, how = validation_split(logs, END, Shape(TIME, days=1), PROTOCOL, min_users=10)
    assert how["eligible_users"] == len(per_user_split(logs, END, Shape(PER_USER), PROTOCOL).main.users)
    same_time = logs.events.assign(timestamp=logs.events[COL_USER])  # each user's events at one time: no user
    with pytest.raises(EvaluationError, match="no test events"):  # has positive events after its training
        per_user_split(EventLogs(same_time, None, logs.users, logs.products, {}), END, Shape(PER_USER), PROTOCOL)


def test_no_validation_user_anywhere_is_a_clear_error():
    logs = bursty_logs(after_end=False)
    early = logs.events[logs.events[COL_TIMESTAMP] < 10 * MS_PER_DAY]
    with pytest.raises(EvaluationError, match="no validation users"):
        validation_split(EventLogs(early, None, logs.users, logs.products, {}), END, Shape(TIME, days=1), PROTOCOL)
    with pytest.raises(EvaluationError, match="minimum users"):
        validation_split(logs, END, Shape(TIME), PROTOCOL, min_users=0)
    with pytest.raises(EvaluationError, match="shape"):
        Shape("weekly")


def test_the_shape_of_each_evaluate_protocol():
    logs = bursty_logs(after_end=False)
    timed = build_eval_split(logs, choose_cutoff(logs.events, test_days=3), PROTOCOL)
    assert shape_of(timed) == Shape(TIME, days=3)
    per_customer = build_eval_split(per_customer_logs(logs, 0.3), Cutoff(PER_CUSTOMER, "0.3", None), PROTOCOL)
    assert shape_of(per_customer) == Shape(PER_USER, fraction=0.3)
    # a fixed test file interleaving with training in time: each user's newest events, as many as the test holds
    shop = synthetic_logs()
    events = shop.events.sort_values("timestamp", kind="stable")
    newest = events.groupby(COL_USER).tail(3)
    interleaved = EventLogs(events.drop(newest.index), newest, shop.users, shop.products, {})
    per_user = build_eval_split(interleaved, Cutoff("test-file", "x", None), PROTOCOL)
    assert per_user.info["split"]["test_period"][0] < per_user.info["split"]["train_period"][1]
    median = int(np.median([len(t) for t in per_user.main.truth]))
    assert shape_of(per_user) == Shape(PER_USER, newest=median)
    val, how = evaluate_validation(per_user)
    assert how["protocol"] == PER_USER and f"newest {median} positive event(s)" in how["description"]
    assert val.train_events[COL_TIMESTAMP].max() < newest[COL_TIMESTAMP].max()
    # a fixed test file after training: a time split as long as its test period
    events = logs.events
    late = events[COL_TIMESTAMP] >= 27 * MS_PER_DAY
    after = build_eval_split(EventLogs(events[~late], events[late], logs.users, logs.products, {}),
                             Cutoff("test-file", "x", None), PROTOCOL)
    assert shape_of(after) == Shape(TIME, days=math.ceil(after.info["split"]["test_days"])) and shape_of(after).days >= 2
