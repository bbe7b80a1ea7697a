"""Issue 25's failure, reproduced: on a shop whose users are active in 3-day bursts, each user's newest
events are the test (a per-user test file). The old rule validated on the newest days of the training
period: they hold a few dozen users and pick a worse family; the per-user split shaped like the test holds
hundreds and picks the family that is best on the test."""

from __future__ import annotations

import datetime as dt

import pytest

from recsys.constants import COL_USER, POSITIVE_EVENTS
from recsys.evaluation import selection as S
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.models import HybridConfig
from recsys.evaluation.protocol import Cutoff, Protocol, build_eval_split
from recsys.evaluation.validation import PER_USER, TIME, Shape, evaluate_validation
from recsys.families.hybrid.fit import TrainParams

HYBRID = HybridConfig(params=TrainParams(epochs=10, no_components=16, threads=1, seed=7))  # seeded, one thread
CANDIDATES = ("hybrid-default", "item-knn", "ease")


@pytest.fixture(scope="module")
def split():
    from recsys.data.synthetic import generate_shop

    shop = generate_shop(n_users=2000, n_products=400, days=120, seed=1, end_date=dt.date(2026, 11, 20),
                         burst_days=3)
    events = shop.events.sort_values("timestamp", kind="stable")
    newest = events[events["event_type"].isin(POSITIVE_EVENTS)].groupby(COL_USER).tail(5)  # the test file
    logs = EventLogs(events.drop(newest.index), newest, shop.users, shop.products, {})
    return build_eval_split(logs, Cutoff("test-file", "each user's newest 5 positive events", None),
                            Protocol(k=10, seed=7, exclude_seen="interacted"))


def test_the_per_user_split_picks_the_best_test_family_where_the_newest_days_did_not(split):
    specs = [s for s in S.candidate_specs(HYBRID) if s.name in CANDIDATES]
    # the old rule: the newest days of training, as long as the test period up to a third of training (40 days)
    old_val, old = evaluate_validation(split, min_users=1, shape=Shape(TIME, days=40))
    new_val, new = evaluate_validation(split)
    assert old["protocol"] == TIME and old["users"] < 50
    assert new["protocol"] == PER_USER and new["users"] == new["eligible_users"] > 10 * old["users"]
    old_choice = S.select_model(old_val, specs, budget_seconds=3600).chosen["name"]
    new_choice = S.select_model(new_val, specs, budget_seconds=3600).chosen["name"]
    test = {spec.name: S.served_metrics(spec, spec.fit(split), split, 10)["ndcg@10"] for spec in specs}
    best = max(test, key=test.get)
    assert new_choice == best and old_choice != best
    assert test[old_choice] < 0.95 * test[best]  # the old rule ships a clearly worse family
