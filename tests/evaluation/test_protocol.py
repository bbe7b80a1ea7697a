"""The evaluation protocol on small hand-made logs: cut-offs, no leakage, groups, new items, errors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from recsys.constants import MS_PER_DAY, PURCHASE, RETURN, VIEW
from recsys.evaluation.errors import EmptyTestSetError, EmptyTrainingSetError, EvaluationError
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.protocol import (
    COLD, PER_CUSTOMER, WARM, Cutoff, Protocol, build_eval_split, choose_cutoff, interaction_frame,
    per_customer_logs,
)
from recsys.evaluation.validation import PER_USER, evaluate_validation
from recsys.timeutil import day_start_ms

DAY0 = dt.date(2024, 3, 1)
CUT = day_start_ms(DAY0 + dt.timedelta(days=10))


def ev(user, item, day, kind=PURCHASE, price=2.0):
    return {"user_id": user, "product_id": item, "event_type": kind, "session_id": None,
            "timestamp": day_start_ms(DAY0 + dt.timedelta(days=day)) + 3_600_000, "price": price,
            "client_event_id": f"{user}-{item}-{day}-{kind}"}


# training (days 0..9): user 1 bought 10, 11, 12 and viewed 13; user 2 bought 10; user 3 bought 11, 12, 13, 14;
# user 4 bought 14 then returned it.  test (days 10..): see TEST.
TRAIN = [ev(1, 10, 0), ev(1, 11, 1), ev(1, 12, 2), ev(1, 13, 3, VIEW), ev(2, 10, 4),
         ev(3, 11, 1), ev(3, 12, 2), ev(3, 13, 3), ev(3, 14, 5), ev(4, 14, 6), ev(4, 14, 7, RETURN)]
TEST = [
    ev(1, 10, 11),  # already bought in training: excluded
    ev(1, 13, 11),  # only viewed before: a true positive
    ev(1, 99, 12),  # a product first seen in the test: new-items slice only
    ev(2, 10, 11),  # user 2's only positive was bought before: user 2 is dropped
    ev(3, 10, 12), ev(3, 14, 12),  # 14 was bought in training: excluded; 10 counts
    ev(3, 98, 12),  # another new product
    ev(5, 10, 12),  # user 5 never seen in training: not counted
]


def logs(train=TRAIN, test=TEST, fixed_test=False) -> EventLogs:
    events = pd.DataFrame(train + ([] if fixed_test else test))
    users = pd.DataFrame({"user_id": [1, 2, 3, 4, 5], "country": ["GB", "GB", "FR", "DE", "GB"],
                          "language": None, "device_type": None})
    items = sorted({e["product_id"] for e in train + test} | {98})
    products = pd.DataFrame({"product_id": items, "name": [f"thing {i}" for i in items],
                             "category": ["a", "a", "b", "b", "c", "c", "c"][: len(items)],
                             "price": 2.0, "in_stock": True})
    return EventLogs(events, pd.DataFrame(test) if fixed_test else None, users, products, {"dataset": "toy"})


def split(**protocol):
    return build_eval_split(logs(), Cutoff("split-date", "toy", CUT), Protocol(k=2, **protocol))


def truth_ids(s, which="main"):
    part = getattr(s, which)
    ids = part.products["product_id"].to_numpy()
    return {int(u): sorted(ids[t].tolist()) for u, t in zip(part.users["user_id"], part.truth)}


def test_cutoff_rules():
    events = pd.DataFrame(TRAIN + TEST)
    assert choose_cutoff(events, split_at=dt.datetime(2024, 3, 11)).ms == CUT
    last_day_start = day_start_ms(DAY0 + dt.timedelta(days=12))
    assert choose_cutoff(events, test_days=1).ms == last_day_start
    assert choose_cutoff(events, test_days=3).ms == last_day_start - 2 * MS_PER_DAY
    default = choose_cutoff(events)  # the last 20% of events are the test
    assert default.how == "test-fraction" and 0.1 < (events["timestamp"] >= default.ms).mean() < 0.4
    with pytest.raises(EvaluationError, match="at most one"):
        choose_cutoff(events, split_at=dt.datetime(2024, 3, 11), test_days=2)
    with pytest.raises(EvaluationError, match="test days"):
        choose_cutoff(events, test_days=0)


def test_interaction_frame_sums_positive_weights_and_ignores_returns():
    frame = interaction_frame(pd.DataFrame(TRAIN + [ev(1, 10, 8)]))
    row = frame.set_index(["user_id", "product_id"])
    assert row.loc[(1, 10), "weight"] == 10.0 and row.loc[(1, 10), "purchases"] == 2
    assert row.loc[(1, 10), "spend"] == 4.0
    assert row.loc[(1, 13), "weight"] == 1.0 and row.loc[(1, 13), "purchases"] == 0  # a view
    assert row.loc[(4, 14), "weight"] == 5.0  # the RETURN is no training signal


def test_no_leakage_bought_items_are_excluded_and_unknown_users_dropped():
    s = split()
    assert truth_ids(s) == {1: [13], 3: [10]}
    ids = s.main.products["product_id"].to_numpy()
    excluded = {int(u): sorted(ids[x].tolist()) for u, x in zip(s.main.users["user_id"], s.main.excluded)}
    assert excluded == {1: [10, 11, 12], 3: [11, 12, 13, 14]}
    assert s.main.products["product_id"].tolist() == [10, 11, 12, 13, 14]  # products with training interactions
    assert (s.train_events["timestamp"] < CUT).all() and len(s.train_events) == len(TRAIN)
    assert s.info["users"] == 2 and s.info["items"] == 5 and s.info["positive_pairs"] == 2
    assert s.info["excluded_pairs"] == 7


def test_new_items_slice_and_cold_warm_groups():
    s = build_eval_split(logs(), Cutoff("split-date", "toy", CUT), Protocol(k=1, cold_max_items=3))
    assert s.new_items is not None  # products first seen in the test (99), ranked among themselves
    assert truth_ids(s, "new_items") == {1: [99], 3: [98]}
    # user 1 has 4 training products (warm at cold_max_items=3), user 3 has 4 too
    assert s.groups[WARM].tolist() == [True, True] and s.info["cold_users"] == 0
    s = build_eval_split(logs(), Cutoff("split-date", "toy", CUT), Protocol(k=1, cold_max_items=4))
    assert s.groups[COLD].tolist() == [True, True] and s.info["warm_users"] == 0


def test_new_items_slice_needs_more_new_products_than_k():
    assert split().new_items is None  # two new products, k = 2


def test_positive_events_restrict_the_truth():
    extended = logs(test=TEST + [ev(1, 14, 12, VIEW)])
    only_views = build_eval_split(extended, Cutoff("d", "toy", CUT), Protocol(k=2, positive_events=(VIEW,)))
    assert truth_ids(only_views) == {1: [14]}
    every_kind = build_eval_split(extended, Cutoff("d", "toy", CUT), Protocol(k=2))
    assert truth_ids(every_kind) == {1: [13, 14], 3: [10]}


def test_training_window_keeps_recent_events_but_excludes_every_earlier_purchase():
    s = split(train_days=8)
    assert s.train_events["timestamp"].min() >= CUT - 8 * MS_PER_DAY
    assert s.main.products["product_id"].tolist() == [10, 12, 13, 14]  # 11 was only bought on day 1
    ids = s.main.products["product_id"].to_numpy()
    excluded = {int(u): sorted(ids[x].tolist()) for u, x in zip(s.main.users["user_id"], s.main.excluded)}
    assert excluded[1] == [10, 12]  # 10 was bought on day 0, before the window: still excluded
    assert truth_ids(s) == {1: [13], 3: [10]}


def test_fixed_test_file():
    s = build_eval_split(logs(fixed_test=True), Cutoff("test-file", "toy.csv", None), Protocol(k=2))
    assert truth_ids(s) == {1: [13], 3: [10]}
    assert s.info["split"]["cutoff"] is None and s.cutoff_ms is None


def test_errors_for_empty_sides_and_large_k():
    with pytest.raises(EmptyTestSetError, match="no test events"):
        build_eval_split(logs(), Cutoff("split-date", "late", CUT + 100 * MS_PER_DAY), Protocol(k=2))
    with pytest.raises(EmptyTrainingSetError, match="no training interactions"):
        build_eval_split(logs(), Cutoff("split-date", "early", 0), Protocol(k=2))
    only_bought = [ev(1, 10, 11), ev(2, 10, 11)]
    with pytest.raises(EmptyTestSetError, match="empty test set"):
        build_eval_split(logs(test=only_bought), Cutoff("split-date", "toy", CUT), Protocol(k=2))
    with pytest.raises(EvaluationError, match="k=5 must be smaller"):
        build_eval_split(logs(), Cutoff("split-date", "toy", CUT), Protocol(k=5))
    with pytest.raises(EvaluationError, match="positive events"):
        Protocol(positive_events=("BOUGHT",))


def test_per_customer_split_keeps_baskets_together_and_single_visit_customers_in_training():
    events = [ev(1, 10, 0), ev(1, 11, 1), ev(1, 12, 2), ev(1, 13, 3), ev(1, 14, 4, VIEW), ev(1, 14, 5),
              ev(2, 10, 0), ev(2, 11, 0),  # one visit: training only
              ev(3, 10, 0), ev(3, 11, 6), ev(3, 12, 6)]  # the newest basket (day 6) is the test, whole
    split_logs = per_customer_logs(logs(train=events, test=[]), fraction=0.2)
    test = {(e.user_id, e.product_id) for e in split_logs.test_events.itertuples()}
    assert test == {(1, 14), (3, 11), (3, 12)}  # user 1: 6 positives, the newest 20% = from position 4 on
    assert len(split_logs.events) + len(split_logs.test_events) == len(events)
    s = build_eval_split(split_logs, Cutoff(PER_CUSTOMER, "0.2", None), Protocol(k=1))
    assert s.info["split"]["how"] == PER_CUSTOMER and truth_ids(s) == {3: [11, 12]}  # user 1 viewed 14 before
    with pytest.raises(EvaluationError, match="test fraction"):
        per_customer_logs(logs(), fraction=1.0)


def test_validation_is_carved_from_training_the_way_the_test_was():
    events = [ev(u, 10 + (d + u) % 6, d) for u in (1, 2, 3) for d in range(6)]
    split_logs = per_customer_logs(logs(train=events, test=[]), fraction=0.3)
    s = build_eval_split(split_logs, Cutoff(PER_CUSTOMER, "0.3", None), Protocol(k=1))
    val, described = evaluate_validation(s)
    assert described["description"] == "each customer's newest 30% of training events"
    assert described["protocol"] == PER_USER and val.info["split"]["how"] == PER_CUSTOMER
    train_days = val.train_events.groupby("user_id")["timestamp"].max()
    val_test = per_customer_logs(EventLogs(s.train_events, None, s.users, s.products, {}), 0.3).test_events
    assert (val_test.groupby("user_id")["timestamp"].min() > train_days).all()  # each customer's newest
    assert val_test["timestamp"].max() < split_logs.test_events["timestamp"].min()  # never the test's events
