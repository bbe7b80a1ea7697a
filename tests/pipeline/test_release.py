"""One way to make a model LIVE (``recsys.pipeline.release``), on the real PostgreSQL and Redis, for every path
that does it: ``models promote`` and ``models rollback`` (``make_live``), the nightly run (its tasks: decide,
publish, the precompute shards, switch, activate) and an A/B test's winner (``tests/abtest``). For each: the new
model's lists are written before the registry switches, and a failure before the switch leaves the previous
LIVE model serving its own lists."""

from __future__ import annotations

import json

import pytest

from recsys import keys, registry
from recsys.families.hybrid.fit import TrainParams
from recsys.flows import nightly
from recsys.pipeline import precompute, release
from recsys.pipeline.publish import publish_model
from recsys.pipeline.train import train_model
from recsys.settings import Settings
from shop_dates import LAST_EVENT_DAY

SETTINGS = Settings(recs_per_user=5, active_days=3)
PARAMS = TrainParams(epochs=1, no_components=4, window_days=7, threads=1, seed=1)


def _live_lists(redis_client) -> dict[int, str]:
    """``{user: model_version}`` of the LIVE keys (``recs:{user}``)."""
    out = {}
    for key in redis_client.scan_iter("recs:{*"):
        name = key.decode()
        if name.count(":") == 1:
            out[int(name.split(":")[1].strip("{}"))] = json.loads(redis_client.get(key))["model_version"]
    return out


def _own_lists(redis_client, model_id: str) -> set[int]:
    return {int(k.decode().rsplit(":", 1)[1].strip("{}")) for k in redis_client.scan_iter(f"recs:{model_id}:{{*")}


@pytest.fixture
def world(shop_engine, local_store, redis_client):
    """Model ``a`` LIVE with its lists precomputed; model ``b`` trained (not LIVE)."""
    a = train_model(shop_engine, local_store, LAST_EVENT_DAY, PARAMS)["model_id"]
    release.make_live(shop_engine, local_store, redis_client, a, "first", settings=SETTINGS, day=LAST_EVENT_DAY)
    b = train_model(shop_engine, local_store, LAST_EVENT_DAY, TrainParams(**{**PARAMS.__dict__, "seed": 2}))["model_id"]
    assert set(_live_lists(redis_client).values()) == {a}
    return {"a": a, "b": b, "users": set(_live_lists(redis_client))}


def _spy_switch(monkeypatch, redis_client, seen: dict):
    """Record what Redis holds at the moment the registry switches."""
    real = registry.promote

    def promote(engine, model_id, *args, **kwargs):
        seen["live_lists"] = _live_lists(redis_client)
        seen["own_lists"] = _own_lists(redis_client, model_id)
        return real(engine, model_id, *args, **kwargs)

    monkeypatch.setattr(registry, "promote", promote)


def test_promote_writes_the_lists_before_the_switch(shop_engine, local_store, redis_client, world, monkeypatch):
    seen: dict = {}
    _spy_switch(monkeypatch, redis_client, seen)
    out = release.promote_live(shop_engine, local_store, redis_client, world["b"], "by hand", settings=SETTINGS)
    assert set(seen["live_lists"].values()) == {world["a"]}  # at the switch, the LIVE keys were still a's
    assert seen["own_lists"] == world["users"]  # and b's own lists were all written
    assert registry.get_live(shop_engine).model_id == world["b"]
    assert set(_live_lists(redis_client).values()) == {world["b"]} and out["activated"]["moved"] == len(world["users"])
    assert _own_lists(redis_client, world["b"]) == set()  # renamed onto the LIVE keys


def test_a_failure_before_the_switch_leaves_the_live_model_serving_its_own_lists(
        shop_engine, local_store, redis_client, world, monkeypatch):
    real = precompute.score_users

    def half_then_fail(engine, redis, day, scorer, users):
        real(engine, redis, day, scorer, users.iloc[: len(users) // 2])
        raise RuntimeError("worker lost")

    monkeypatch.setattr(precompute, "score_users", half_then_fail)
    with pytest.raises(RuntimeError, match="worker lost"):
        release.promote_live(shop_engine, local_store, redis_client, world["b"], "by hand", settings=SETTINGS)
    assert registry.get_live(shop_engine).model_id == world["a"]
    assert set(_live_lists(redis_client).values()) == {world["a"]}  # every LIVE list is still a's own
    assert _live_lists(redis_client).keys() == world["users"]


def test_rollback_writes_the_lists_before_the_switch_and_a_failure_changes_nothing(
        shop_engine, local_store, redis_client, world, monkeypatch):
    release.promote_live(shop_engine, local_store, redis_client, world["b"], "by hand", settings=SETTINGS)
    real = precompute.score_users
    monkeypatch.setattr(precompute, "score_users", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        release.rollback_live(shop_engine, local_store, redis_client, SETTINGS)
    assert registry.get_live(shop_engine).model_id == world["b"]
    assert set(_live_lists(redis_client).values()) == {world["b"]}
    monkeypatch.setattr(precompute, "score_users", real)

    seen: dict = {}
    real_rollback = registry.rollback

    def rollback(engine, *args, **kwargs):
        seen["live_lists"] = _live_lists(redis_client)
        seen["own_lists"] = _own_lists(redis_client, world["a"])
        return real_rollback(engine, *args, **kwargs)

    monkeypatch.setattr(registry, "rollback", rollback)
    out = release.rollback_live(shop_engine, local_store, redis_client, SETTINGS)
    assert out["model_id"] == world["a"] and set(seen["live_lists"].values()) == {world["b"]}
    assert seen["own_lists"] == world["users"]
    assert set(_live_lists(redis_client).values()) == {world["a"]}


def test_the_nightly_tasks_switch_after_the_lists_and_a_failed_shard_changes_nothing(
        shop_engine, local_store, redis_client, world, monkeypatch):
    registry.set_metrics(shop_engine, world["b"], {"new": {"ndcg@10": 0.9}, "live": {"ndcg@10": 0.1},
                                                   "popularity": {"ndcg@10": 0.1}})
    monkeypatch.setenv("RECSYS_ACTIVE_DAYS", "3")
    monkeypatch.setenv("RECSYS_PRECOMPUTE_SHARDS", "2")
    from recsys.settings import get_settings

    get_settings.cache_clear()
    try:
        decision = nightly.promote_or_archive(shop_engine, LAST_EVENT_DAY, world["b"], {})
        assert decision["decision"] == "promoted" and registry.get_live(shop_engine).model_id == world["a"]
        nightly.publish(shop_engine, local_store, LAST_EVENT_DAY, decision)
        shards = nightly.shards(shop_engine, LAST_EVENT_DAY, decision)
        nightly.precompute(shop_engine, local_store, redis_client, LAST_EVENT_DAY, shards[0], decision)
        # the second shard fails: the DAG never runs switch, and the LIVE keys are still the LIVE model's
        assert registry.get_live(shop_engine).model_id == world["a"]
        assert set(_live_lists(redis_client).values()) == {world["a"]}
        nightly.precompute(shop_engine, local_store, redis_client, LAST_EVENT_DAY, shards[1], decision)
        assert _own_lists(redis_client, world["b"]) == world["users"]  # every list written before the switch
        nightly.switch(shop_engine, LAST_EVENT_DAY, decision)
        assert registry.get_live(shop_engine).model_id == world["b"]
        for shard in shards:
            nightly.promote_lists(shop_engine, redis_client, LAST_EVENT_DAY, shard, decision)
        assert set(_live_lists(redis_client).values()) == {world["b"]}
    finally:
        get_settings.cache_clear()


def test_an_archived_model_cannot_enter_a_test_but_a_candidate_is_made_ready(
        shop_engine, local_store, redis_client, world):
    registry.mark_candidate(shop_engine, world["b"], reason="test")
    out = release.prepare_arm(shop_engine, local_store, redis_client, world["b"], SETTINGS, day=LAST_EVENT_DAY)
    assert out["published"] == "now" and out["precompute"]["users"] == len(world["users"])
    assert _own_lists(redis_client, world["b"]) == world["users"]  # the arm's lists, in its own keys
    assert set(_live_lists(redis_client).values()) == {world["a"]}  # the LIVE lists untouched
    registry.archive(shop_engine, world["b"], reason="lost")
    with pytest.raises(release.ReleaseError, match="ARCHIVED"):
        release.prepare_arm(shop_engine, local_store, redis_client, world["b"], SETTINGS)


def test_keys_of_a_model_are_its_own_and_the_live_keys_have_no_model(world):
    assert keys.recs_key(7, world["b"]) == f"recs:{world['b']}:{{7}}" and keys.recs_key(7) == "recs:{7}"


def _winner_waiting(engine, store_, control: str, treatment: str) -> int:
    """A test of ``treatment`` against ``control`` closed with the treatment as winner, waiting for the release
    (the decision ``finalize_test`` takes: tests/abtest/test_ab_results.py)."""
    from recsys.abtest import service, store as tests
    from recsys.abtest.results import ACTION_RELEASE

    test = service.start_test(engine, treatment_model_id=treatment, control_model_id=control, duration_hours=1,
                              treatment_fraction=0.5, settings=SETTINGS, artifacts=store_)
    with engine.begin() as conn:
        tests.save_results(conn, test["test_id"], {"winner": "treatment", "decision": {
            "action": ACTION_RELEASE, "model_id": treatment, "expected_live": control,
            "reason": f"A/B test {test['test_id']}: treatment won"}}, status="COMPLETED")
    return test["test_id"]


def test_an_ab_winner_is_released_lists_first_and_a_failure_leaves_it_waiting(
        shop_engine, local_store, redis_client, world, monkeypatch):
    from recsys.abtest import store as tests
    from recsys.abtest.results import release_winner

    test_id = _winner_waiting(shop_engine, local_store, world["a"], world["b"])
    real = precompute.score_users
    monkeypatch.setattr(precompute, "score_users", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        release_winner(shop_engine, local_store, redis_client, test_id, SETTINGS)
    assert registry.get_live(shop_engine).model_id == world["a"]
    assert set(_live_lists(redis_client).values()) == {world["a"]}
    assert tests.get_test(shop_engine, test_id)["results"]["decision"]["action"] == "release"  # retried next hour

    monkeypatch.setattr(precompute, "score_users", real)
    seen: dict = {}
    _spy_switch(monkeypatch, redis_client, seen)
    out = release_winner(shop_engine, local_store, redis_client, test_id, SETTINGS)
    assert out["action"] == "promoted" and registry.get_live(shop_engine).model_id == world["b"]
    assert set(seen["live_lists"].values()) == {world["a"]} and seen["own_lists"] == world["users"]
    assert set(_live_lists(redis_client).values()) == {world["b"]}
    assert release_winner(shop_engine, local_store, redis_client, test_id, SETTINGS)["action"] is None  # once
