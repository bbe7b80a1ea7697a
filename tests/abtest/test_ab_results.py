"""Results, decision and promotion through the registry, on the real database (no API)."""

from __future__ import annotations

import datetime as dt

import pytest
from ab_helpers import seed_traffic
from recsys import registry
from recsys.abtest import results as R
from recsys.abtest import service, store
from recsys.abtest.stats import two_proportion_ztest

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
START = NOW - dt.timedelta(hours=2)


def begin(engine, settings, treatment="m-treat", control="m-control", hours=24.0, fraction=0.5, now=START):
    return service.start_test(engine, treatment_model_id=treatment, control_model_id=control,
                              duration_hours=hours, treatment_fraction=fraction, now=now, settings=settings)


def test_results_numbers_match_the_counts(ab_world, ab_settings):
    test = begin(ab_world, ab_settings)
    seed_traffic(ab_world, test, 100, {"control": 0.2, "treatment": 0.3})
    out = R.compute_results(ab_world, test["test_id"], NOW, ab_settings)
    c, t = out["arms"]["control"], out["arms"]["treatment"]
    assert (c["impressions"], c["clicked_impressions"], c["ctr"]) == (100, 20, 0.2)
    assert (t["users"], t["purchases"], t["conversion"], t["revenue_per_user"]) == (100, 30, 0.3, pytest.approx(3.6))
    assert out["ctr_test"]["pvalue"] == pytest.approx(two_proportion_ztest(20, 100, 30, 100).pvalue)
    assert out["ctr_test"]["required"]["control"] > 0 and out["num_users"] == 200
    points = out["series"]["points"]
    assert points[-1]["treatment"]["ctr"] == pytest.approx(0.3) and len(points) <= R.MAX_POINTS


def test_a_winning_treatment_becomes_live_recorded_with_the_test_id(ab_world, ab_settings, monkeypatch):
    from recsys.pipeline import release

    calls = []
    monkeypatch.setattr(release, "make_live", lambda engine, s, r, model_id, reason, **kw: calls.append(kw) or
                        registry.promote(engine, model_id, reason=reason, expected_live=kw["expected_live"],
                                         allow_archived=kw["allow_archived"]))  # the release's switch
    test = begin(ab_world, ab_settings)
    seed_traffic(ab_world, test, 150, {"control": 0.2, "treatment": 0.45})
    row = service.stop_test(ab_world, test["test_id"], now=NOW, settings=ab_settings)
    assert row["status"] == "STOPPED" and row["winner"] == "treatment" and row["pvalue"] < 0.05
    assert row["results"]["ctr_test"]["sample_size_reached"]
    assert row["results"]["decision"]["action"] == "release"  # made LIVE by the release, lists first
    assert registry.get_live(ab_world).model_id == "m-control"
    R.release_winner(ab_world, None, None, test["test_id"], ab_settings)
    assert calls == [{"settings": ab_settings, "expected_live": "m-control", "allow_archived": False}]
    decision = store.get_test(ab_world, test["test_id"])["results"]["decision"]
    assert decision["action"] == "promoted" and decision["previous_live_model_id"] == "m-control"
    live = registry.get_live(ab_world)
    assert live.model_id == "m-treat" and f"A/B test {test['test_id']}" in live.decision
    assert registry.get_model(ab_world, "m-control").status == "ARCHIVED"
    again = R.finalize_test(ab_world, test["test_id"], settings=ab_settings)  # closing twice changes nothing
    assert again["results"]["decision"] == decision


def test_a_losing_treatment_is_archived(ab_world, ab_settings):
    test = begin(ab_world, ab_settings)
    seed_traffic(ab_world, test, 150, {"control": 0.45, "treatment": 0.2})
    row = service.stop_test(ab_world, test["test_id"], now=NOW, settings=ab_settings)
    assert row["winner"] == "control" and row["results"]["decision"]["action"] == "archived"
    assert registry.get_model(ab_world, "m-treat").status == "ARCHIVED"
    assert registry.get_live(ab_world).model_id == "m-control"


def test_too_small_a_sample_is_inconclusive_and_changes_nothing(ab_world, ab_settings):
    test = begin(ab_world, ab_settings)
    seed_traffic(ab_world, test, 20, {"control": 0.1, "treatment": 0.5})
    row = service.stop_test(ab_world, test["test_id"], now=NOW, settings=ab_settings)
    assert row["pvalue"] < 0.05 and not row["results"]["ctr_test"]["sample_size_reached"]
    assert row["winner"] == "inconclusive" and row["results"]["decision"]["action"] == "none"
    assert registry.get_model(ab_world, "m-treat").status == "CANDIDATE"


def test_auto_promotion_off_and_a_a_tests_change_no_model(ab_world, ab_settings):
    off = ab_settings.model_copy(update={"ab_auto_promote": False})
    test = begin(ab_world, off)
    seed_traffic(ab_world, test, 150, {"control": 0.2, "treatment": 0.45})
    row = service.stop_test(ab_world, test["test_id"], now=NOW, settings=off)
    assert row["winner"] == "treatment" and "auto-promotion is off" in row["results"]["decision"]["reason"]
    aa = begin(ab_world, ab_settings, treatment="m-control", now=NOW - dt.timedelta(minutes=30))
    seed_traffic(ab_world, aa, 150, {"control": 0.2, "treatment": 0.45}, at=NOW - dt.timedelta(minutes=30))
    row = service.stop_test(ab_world, aa["test_id"], now=NOW, settings=ab_settings)
    assert row["results"]["decision"]["action"] == "none" and "A/A" in row["results"]["decision"]["reason"]
    assert registry.get_live(ab_world).model_id == "m-control"


def test_hourly_run_updates_closes_and_never_goes_back_in_time(ab_world, ab_settings):
    test = begin(ab_world, ab_settings, hours=1.5)  # ends NOW - 30 min
    seed_traffic(ab_world, test, 150, {"control": 0.2, "treatment": 0.45})
    hour = dt.timedelta(hours=1)
    first = R.run_interval(ab_world, START, START + hour, ab_settings)  # still running at START + 1h
    assert first["tests"][0]["decision"] is None
    stored = store.get_test(ab_world, test["test_id"])
    assert stored["status"] == "RUNNING" and stored["results"]["as_of"] == (START + hour).isoformat()
    R.update_results(ab_world, test["test_id"], as_of=START + dt.timedelta(minutes=10), settings=ab_settings)
    assert store.get_test(ab_world, test["test_id"])["results"]["as_of"] == (START + hour).isoformat()
    second = R.run_interval(ab_world, START + hour, START + 2 * hour, ab_settings)
    assert second["promoted"] == [test["test_id"]]
    closed = store.get_test(ab_world, test["test_id"])
    assert closed["status"] == "COMPLETED" and closed["end_at"] == START + dt.timedelta(hours=1.5)
    assert R.run_interval(ab_world, START + hour, START + 2 * hour, ab_settings)["tests"] == []  # re-run: no-op


def test_starting_a_test_refuses_bad_requests(ab_world, ab_settings):
    with pytest.raises(store.InvalidTestError, match="ARCHIVED"):
        begin(ab_world, ab_settings, control="m-old")
    with pytest.raises(registry.UnknownModelError):
        begin(ab_world, ab_settings, treatment="missing")
    with pytest.raises(store.InvalidTestError, match="treatment_fraction"):
        begin(ab_world, ab_settings, fraction=0.0)
    begin(ab_world, ab_settings)
    with pytest.raises(store.TestConflictError):
        begin(ab_world, ab_settings, treatment="m-control")


def test_an_expired_test_is_closed_before_a_new_one_starts(ab_world, ab_settings):
    old = begin(ab_world, ab_settings, hours=1, now=NOW - dt.timedelta(hours=3))
    new = begin(ab_world, ab_settings, now=NOW)
    assert store.get_test(ab_world, old["test_id"])["status"] == "COMPLETED"
    assert store.get_test(ab_world, new["test_id"])["status"] == "RUNNING"


def test_a_test_that_ends_after_a_newer_promotion_leaves_the_newer_model_live(ab_world, ab_settings, caplog):
    """m-control vs m-treat; the nightly run promotes m-old (C) meanwhile; m-treat wins: C stays LIVE."""
    import json
    import logging

    test = begin(ab_world, ab_settings)
    seed_traffic(ab_world, test, 150, {"control": 0.2, "treatment": 0.45})
    registry.promote(ab_world, "m-old", reason="nightly run: beat m-control offline")
    with caplog.at_level(logging.ERROR, logger="recsys.abtest.results"):
        row = R.finalize_test(ab_world, test["test_id"], now=NOW, settings=ab_settings)
    assert row["status"] == "COMPLETED" and row["winner"] == "treatment"  # the result is recorded
    decision = row["results"]["decision"]
    assert decision["action"] == "blocked" and "m-control is no longer LIVE (m-old is)" in decision["reason"]
    assert registry.get_live(ab_world).model_id == "m-old"
    assert registry.get_model(ab_world, "m-treat").status == "CANDIDATE"  # may be tested against m-old
    alerts = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert [(a["event"], a["kind"], a["test_id"]) for a in alerts] == [
        ("recsys_alert", "ab_promotion_blocked", test["test_id"])]
    out = R.run_interval(ab_world, NOW, NOW + dt.timedelta(hours=1), ab_settings)
    assert out["promoted"] == []  # the hourly run precomputes nothing either


def test_the_results_record_the_merchandising_rules_live_during_the_test(ab_world, ab_settings):
    from recsys.db import merch_rules

    test = begin(ab_world, ab_settings)
    gone = merch_rules.create_rule(ab_world, values={"name": "before", "action": "block", "products": [1],
                                                     "ends_at": START - dt.timedelta(hours=1)}, by="admin@t")
    live = merch_rules.create_rule(ab_world, values={"name": "winter", "action": "promote", "categories": ["Shoes"],
                                                     "share": 0.2}, by="admin@t")
    later = merch_rules.create_rule(ab_world, values={"name": "later", "action": "block", "products": [2],
                                                      "starts_at": NOW + dt.timedelta(days=2)}, by="admin@t")
    expired = merch_rules.create_rule(ab_world, values={"name": "brief", "action": "bury", "products": [3],
                                                        "weight": 1.0}, by="admin@t")
    merch_rules.expire_rule(ab_world, rule_id=expired["rule_id"], by="admin@t")
    out = R.compute_results(ab_world, test["test_id"], NOW + dt.timedelta(hours=1), ab_settings)
    recorded = {r["rule_id"]: r for r in out["merch_rules"]}
    assert set(recorded) == {live["rule_id"], expired["rule_id"]}  # not the one ended before, nor the later one
    assert recorded[live["rule_id"]]["action"] == "promote" and recorded[live["rule_id"]]["live_until"] is None
    assert recorded[expired["rule_id"]]["revision"] == 2 and recorded[expired["rule_id"]]["live_until"]
    assert gone["rule_id"] not in recorded and later["rule_id"] not in recorded
