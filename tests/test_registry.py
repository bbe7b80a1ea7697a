"""The model registry on the real PostgreSQL: every transition, one LIVE model, rollback."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from recsys import registry
from recsys.constants import STATUS_ARCHIVED, STATUS_CANDIDATE, STATUS_LIVE, STATUS_TRAINING

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


# --- register / read ----------------------------------------------------------------
def test_register_increments_version_and_lists_newest_first(engine):
    assert _register(engine, "m1") == 1
    assert _register(engine, "m2") == 2
    rows = registry.list_models(engine)
    assert [r["model_id"] for r in rows] == ["m2", "m1"]
    assert rows[0]["status"] == STATUS_TRAINING and rows[0]["train_date"] == DAY.isoformat()
    assert rows[0]["training_samples_count"] == 123
    assert registry.get_model(engine, "m1").version == 1
    assert registry.get_live(engine) is None


def test_register_twice_and_unknown_ids_are_refused(engine):
    _register(engine, "m1")
    with pytest.raises(registry.RegistryError, match="already registered"):
        _register(engine, "m1")
    with pytest.raises(registry.UnknownModelError, match="nope"):
        registry.get_model(engine, "nope")
    with pytest.raises(registry.UnknownModelError):
        registry.promote(engine, "nope", reason="x")
    with pytest.raises(registry.UnknownModelError):
        registry.set_metrics(engine, "nope", {})


def test_set_metrics_round_trips(engine):
    _register(engine, "m1", new=0.3, pop=0.1)
    assert registry.get_model(engine, "m1").metrics["new"] == {"ndcg@10": 0.3}


# --- promote / archive / one LIVE ------------------------------------------------------
def test_promoting_twice_keeps_exactly_one_live(engine):
    for mid in ("m1", "m2", "m3"):
        _register(engine, mid)
    registry.promote(engine, "m1", reason="a")
    out = registry.promote(engine, "m2", reason="b")
    assert out["previous_live_model_id"] == "m1"
    registry.promote(engine, "m2", reason="b again")
    assert _live_count(engine) == 1 and registry.get_live(engine).model_id == "m2"
    registry.promote(engine, "m3", reason="c")
    assert _live_count(engine) == 1
    assert [r["status"] for r in registry.list_models(engine)] == [STATUS_LIVE, STATUS_ARCHIVED, STATUS_ARCHIVED]


def test_database_refuses_a_second_live_row(engine):
    _register(engine, "m1")
    _register(engine, "m2")
    registry.promote(engine, "m1", reason="a")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE recommendation_models SET status = 'LIVE' WHERE model_id = 'm2'"))


def test_archive_refuses_the_live_model(engine):
    _register(engine, "m1")
    registry.promote(engine, "m1", reason="a")
    with pytest.raises(registry.RegistryError, match="LIVE"):
        registry.archive(engine, "m1", reason="x")
    _register(engine, "m2")
    assert registry.archive(engine, "m2", reason="x")["status"] == STATUS_ARCHIVED


# --- rollback ---------------------------------------------------------------------------
def test_rollback_restores_the_previous_live(engine):
    for mid in ("m1", "m2", "m3"):
        _register(engine, mid)
    registry.promote(engine, "m1", reason="a")
    registry.archive(engine, "m2", reason="never promoted")  # archived but never LIVE: skipped
    registry.promote(engine, "m3", reason="c")
    out = registry.rollback(engine)
    assert out["model_id"] == "m1" and out["previous_live_model_id"] == "m3"
    assert registry.get_live(engine).model_id == "m1"
    assert registry.get_model(engine, "m3").status == STATUS_ARCHIVED
    assert registry.get_model(engine, "m2").status == STATUS_ARCHIVED
    assert _live_count(engine) == 1


def test_rollback_with_nothing_to_go_back_to(engine):
    with pytest.raises(registry.RegistryError, match="nothing to roll back"):
        registry.rollback(engine)
    _register(engine, "m1")
    registry.promote(engine, "m1", reason="a")
    with pytest.raises(registry.RegistryError, match="nothing to roll back"):
        registry.rollback(engine)
    assert registry.get_live(engine).model_id == "m1"  # the failed rollback changed nothing


def test_registry_works_on_sqlite_too(sqlite_engine):
    _register(sqlite_engine, "m1", new=0.2)
    _register(sqlite_engine, "m2", new=0.3, live=0.2)
    registry.promote(sqlite_engine, "m1", reason="promote m1")  # the release's switch (recsys.pipeline.release)
    registry.promote(sqlite_engine, "m2", reason="promote m2")
    assert registry.get_live(sqlite_engine).model_id == "m2"
    assert registry.rollback(sqlite_engine)["model_id"] == "m1"
    assert _live_count(sqlite_engine) == 1


def test_two_rollbacks_go_two_steps_back(engine):
    for mid in ("m1", "m2", "m3"):
        _register(engine, mid)
        registry.promote(engine, mid, reason=f"promote {mid}")
    assert registry.rollback(engine)["model_id"] == "m2"
    assert registry.rollback(engine)["model_id"] == "m1"  # not back to m3: each call is one step back
    assert registry.get_live(engine).model_id == "m1" and _live_count(engine) == 1
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(engine)
    kinds = [(h["kind"], h["model_id"]) for h in registry.promotion_history(engine)]
    assert kinds[:2] == [("rollback", "m1"), ("rollback", "m2")]


def test_a_promotion_after_rollbacks_is_undone_back_to_where_it_started(engine):
    for mid in ("m1", "m2", "m3", "m4"):
        _register(engine, mid)
    for mid in ("m1", "m2", "m3"):
        registry.promote(engine, mid, reason="p")
    registry.rollback(engine)  # m2: the rollback's target is not a new step forward
    registry.promote(engine, "m4", reason="p")
    assert registry.rollback_chain(engine, 5) == ["m2", "m1"]
    assert registry.rollback_target(engine) == {"from": "m4", "to": "m2"}
    assert registry.rollback(engine)["model_id"] == "m2"
    assert registry.rollback(engine)["model_id"] == "m1"


def test_rollback_refuses_when_the_live_model_changed_meanwhile(engine):
    for mid in ("m1", "m2", "m3"):
        _register(engine, mid)
    registry.promote(engine, "m1", reason="p")
    registry.promote(engine, "m2", reason="p")
    plan = registry.rollback_target(engine)
    registry.promote(engine, "m3", reason="the nightly run promoted m3 meanwhile")
    with pytest.raises(registry.RegistryError, match="changed to m3"):
        registry.rollback(engine, expected_live=plan["from"])
    assert registry.get_live(engine).model_id == "m3"


def test_rollback_chain_is_limited_by_depth(engine):
    for mid in ("m1", "m2", "m3", "m4"):
        _register(engine, mid)
        registry.promote(engine, mid, reason="p")
    assert registry.rollback_chain(engine, 2) == ["m3", "m2"]
    assert registry.rollback_chain(engine, 0) == []


def test_artifact_checksums_are_recorded_and_merged(engine):
    registry.register_model(engine, model_id="m1", model_type="HYBRID", train_date=DAY, params={}, samples=1,
                            artifact_uri="x", artifacts={"model.npz": "a" * 64})
    merged = registry.record_artifacts(engine, "m1", {"item_ids.npy": "b" * 64})
    assert merged == {"model.npz": "a" * 64, "item_ids.npy": "b" * 64}
    assert registry.get_artifacts(engine, "m1") == merged
