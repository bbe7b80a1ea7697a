"""The nightly decision after the gate (``release.decide``) and the gate's rule (``gate.judge``), on the real
PostgreSQL: a winner is to be made LIVE (the switch is the release's step, after the lists are written), a
loser archived, an A/B winner kept as a CANDIDATE. Moved from the registry's tests: the judgement is the
gate's, the LIVE switch the release's."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from recsys import registry
from recsys.constants import STATUS_ARCHIVED, STATUS_CANDIDATE
from recsys.evaluation.gate import GateError, judge
from recsys.pipeline import release

DAY = dt.date(2026, 11, 20)


def _register(engine, model_id: str, new: float | None = None, live: float | None = None, pop: float = 0.01) -> int:
    version = registry.register_model(
        engine, model_id=model_id, model_type="HYBRID", train_date=DAY,
        params={"epochs": 5}, samples=123, artifact_uri=f"models/{model_id}",
    )
    if new is not None:
        registry.set_metrics(
            engine, model_id,
            {"new": {"ndcg@10": new}, "live": None if live is None else {"ndcg@10": live},
             "popularity": {"ndcg@10": pop}},
        )
    return version


def _live_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM recommendation_models WHERE status = 'LIVE'")).scalar_one()


def promote(engine, model_id: str) -> None:
    """What the release does after a ``promoted`` decision, once the lists are written."""
    out = release.decide(engine, model_id, margin=0.0)
    assert out["decision"] == "promoted"
    release.switch(engine, model_id, out["reason"], expected_live=out["live_model_id"])


# --- pure rule ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metrics", "margin", "wins"),
    [
        ({"new": {"ndcg@10": 0.2}, "live": None, "popularity": {"ndcg@10": 0.1}}, 0.0, True),
        ({"new": {"ndcg@10": 0.2}, "live": None, "popularity": {"ndcg@10": 0.3}}, 0.0, False),
        ({"new": {"ndcg@10": 0.2}, "live": {"ndcg@10": 0.19}, "popularity": {"ndcg@10": 0.1}}, 0.0, True),
        ({"new": {"ndcg@10": 0.2}, "live": {"ndcg@10": 0.19}, "popularity": {"ndcg@10": 0.1}}, 0.1, False),
        ({"new": {"ndcg@10": 0.2}, "live": {"ndcg@10": 0.2}, "popularity": {"ndcg@10": 0.1}}, 0.0, False),
        ({"new": {"ndcg@10": 0.23}, "live": {"ndcg@10": 0.2}, "popularity": {"ndcg@10": 0.1}}, 0.1, True),
    ],
)
def test_judge_rule(metrics, margin, wins):
    assert judge(metrics, margin)[0] is wins


def test_judge_needs_new_metrics():
    with pytest.raises(GateError, match="run evaluate"):
        judge({"live": None}, 0.0)


# --- decide -------------------------------------------------------------------------
def test_decide_promotes_first_model_that_beats_popularity(engine):
    _register(engine, "m1", new=0.2, pop=0.1)
    out = release.decide(engine, "m1", margin=0.0)
    assert out["decision"] == "promoted" and out["live_model_id"] is None  # nothing LIVE yet: the switch comes later
    assert registry.get_live(engine) is None
    release.switch(engine, "m1", out["reason"], expected_live=out["live_model_id"])
    row = registry.get_live(engine)
    assert row.model_id == "m1" and row.promoted_at is not None and row.decision


def test_decide_archives_model_worse_than_popularity(engine):
    _register(engine, "m1", new=0.05, pop=0.1)
    out = release.decide(engine, "m1", margin=0.0)
    assert out == {"decision": "archived", "live_model_id": None, "reason": out["reason"]}
    assert "popularity" in out["reason"]
    row = registry.get_model(engine, "m1")
    assert row.status == STATUS_ARCHIVED and row.archived_at is not None and row.promoted_at is None


def test_decide_margin_against_live(engine):
    _register(engine, "m1", new=0.2)
    promote(engine, "m1")
    _register(engine, "m2", new=0.21, live=0.2)  # +5 %: not enough for a 10 % margin
    out = release.decide(engine, "m2", margin=0.1)
    assert out["decision"] == "archived" and out["live_model_id"] == "m1"
    _register(engine, "m3", new=0.23, live=0.2)  # +15 %
    out = release.decide(engine, "m3", margin=0.1)
    assert out["decision"] == "promoted" and out["live_model_id"] == "m1"
    release.switch(engine, "m3", out["reason"], expected_live=out["live_model_id"])
    assert registry.get_model(engine, "m1").status == STATUS_ARCHIVED
    assert registry.get_model(engine, "m1").archived_at is not None
    assert _live_count(engine) == 1


def test_decide_force_promotes_a_loser(engine):
    _register(engine, "m1", new=0.3)
    promote(engine, "m1")
    _register(engine, "m2", new=0.01, live=0.3)
    out = release.decide(engine, "m2", margin=0.0, force=True)
    assert out["decision"] == "promoted" and out["reason"] == "forced promotion"
    release.switch(engine, "m2", out["reason"], expected_live=out["live_model_id"])
    assert registry.get_live(engine).model_id == "m2"


def test_decide_force_works_without_metrics_but_auto_needs_them(engine):
    _register(engine, "m1")
    with pytest.raises(GateError, match="run evaluate"):
        release.decide(engine, "m1", margin=0.0)
    assert release.decide(engine, "m1", margin=0.0, force=True)["decision"] == "promoted"


def test_decide_ab_test_policy_makes_a_candidate(engine):
    _register(engine, "m1", new=0.2)
    first = release.decide(engine, "m1", margin=0.0, policy="ab_test")  # nothing LIVE to test against
    assert first["decision"] == "promoted"
    promote(engine, "m1")
    _register(engine, "m2", new=0.3, live=0.2)
    out = release.decide(engine, "m2", margin=0.0, policy="ab_test")
    assert out["decision"] == "candidate" and out["live_model_id"] == "m1"
    assert registry.get_model(engine, "m2").status == STATUS_CANDIDATE
    _register(engine, "m3", new=0.1, live=0.2)
    assert release.decide(engine, "m3", margin=0.0, policy="ab_test")["decision"] == "archived"


def test_decide_rejects_bad_arguments_and_is_idempotent_for_live(engine):
    _register(engine, "m1", new=0.2)
    with pytest.raises(ValueError, match="policy"):
        release.decide(engine, "m1", margin=0.0, policy="coin-flip")
    with pytest.raises(ValueError, match="margin"):
        release.decide(engine, "m1", margin=-0.1)
    promote(engine, "m1")
    again = release.decide(engine, "m1", margin=0.0)  # an Airflow retry of the task
    assert again["decision"] == "promoted" and again["live_model_id"] == "m1"


