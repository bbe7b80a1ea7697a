"""Model selection and weekly tuning in the nightly train step, on the synthetic shop (real PostgreSQL):
the candidates' table on the registry row and in ``GET /models/status``, a pinned family, re-run reuse,
a stored tuned configuration used, and a search older than the interval triggering a new one; the
sequential model as one more candidate, and pinned, through evaluate, promotion, publish and precompute."""

from __future__ import annotations

import datetime as dt

import pytest

from pg_helpers import clear_client_caches
from shop_dates import LAST_EVENT_DAY
from recsys import registry
from recsys.flows import nightly

pytestmark = [pytest.mark.integration]
DAY = LAST_EVENT_DAY
FAST = {"epochs": 3, "window_days": 14}


@pytest.fixture
def env(monkeypatch):
    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(f"RECSYS_{name.upper()}", str(value))
        clear_client_caches()
    yield set_env
    monkeypatch.undo()
    clear_client_caches()


def test_selection_runs_two_families_records_the_table_and_a_rerun_reuses_the_model(shop_engine, local_store, env,
                                                                                     caplog):
    env(selection_candidates="hybrid-default,item-knn", no_components=8)
    with caplog.at_level("INFO", logger="recsys.pipeline.model_choice"):
        trained = nightly.train(shop_engine, local_store, DAY, FAST)
    row = registry.get_model(shop_engine, trained["model_id"])
    table = row.params["selection"]
    assert table["metric"] == "ndcg@10" and table["validation_users"] > 0
    validation = table["validation"]  # 2000 users wanted: the newest day is widened, or the split goes per user
    assert validation["min_users"] == 2000 and validation["tried"][0]["days"] == 1 and validation["eligible_users"] > 0
    assert table["validation_users"] == validation["users"] >= min(2000, validation["eligible_users"])
    assert table["validation_split"] == validation["description"] and validation["protocol"] in ("time", "per-user")
    if validation["protocol"] == "time":
        assert validation["description"] == f"last {validation['tried'][-1]['days']:g} day(s) of the training window"
    assert [r["name"] for r in table["candidates"]] == ["hybrid-default", "item-knn"]
    assert all(r["validation"]["ndcg@10"] is not None and r["fit_seconds"] is not None for r in table["candidates"])
    assert all(r["interval"][0] <= r["validation"]["ndcg@10"] <= r["interval"][1] for r in table["candidates"])
    chosen = [r for r in table["candidates"] if r["chosen"]]
    assert table["live_family"] is None  # no LIVE model yet: the leader
    assert len(chosen) == 1 and chosen[0]["validation"]["ndcg@10"] == max(
        r["validation"]["ndcg@10"] for r in table["candidates"])
    assert table["decision"].startswith(f"{chosen[0]['name']} leads by ndcg@10")
    assert row.params["family"] == chosen[0]["family"] and row.params["config"] == chosen[0]["config"]
    assert row.model_type.lower() == chosen[0]["family"]
    assert "model selection by ndcg@10" in caplog.text and "CHOSEN" in caplog.text
    assert f"validation protocol {validation['protocol']}: {validation['description']}, {validation['users']} users" \
        in caplog.text and f"choice: {table['decision']}" in caplog.text

    again = nightly.train(shop_engine, local_store, DAY, FAST)
    assert again["reused"] and again["model_id"] == trained["model_id"]
    env(selection_candidates="hybrid-default,item-knn,als", no_components=8)  # another candidate list: trains anew
    assert not nightly.train(shop_engine, local_store, DAY, FAST).get("reused")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_status_endpoint_shows_the_selection(shop_engine, local_store, env, tmp_path):
    from asgi_client import open_client
    from recsys.api.app import create_app
    from recsys.api.schemas import ModelStatus
    from recsys.settings import Settings

    env(selection_candidates="hybrid-default,item-knn", no_components=8)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    registry.promote(shop_engine, trained["model_id"], reason="test")
    settings = Settings(database_url=shop_engine.url.render_as_string(hide_password=False),
                        artifact_uri=str(tmp_path / "artifacts"), var_dir=tmp_path / "var", api_refresh_seconds=3600)
    client, close = await open_client(create_app(settings, refresh_in_background=False))
    try:
        status = ModelStatus.model_validate((await client.get("/models/status")).json())
    finally:
        await close()
    assert status.model_version == trained["model_id"]
    assert [r["name"] for r in status.selection["candidates"]] == ["hybrid-default", "item-knn"]
    assert status.selection["validation"]["users"] == status.selection["validation_users"] > 0
    assert status.selection["validation"]["protocol"] in ("time", "per-user") and status.selection["decision"]
    assert status.selection["chosen"] == trained["candidate"]


def test_a_pinned_family_is_trained_without_selection(shop_engine, local_store, env):
    env(selection_candidates="hybrid-default,item-knn")
    trained = nightly.train(shop_engine, local_store, DAY, {**FAST, "family": "als"})
    row = registry.get_model(shop_engine, trained["model_id"])
    assert row.model_type == "als" and row.params["family"] == "als"
    (only,) = row.params["selection"]["candidates"]
    assert only["chosen"] and only["skipped"] == "not run: family pinned to 'als'"
    again = nightly.train(shop_engine, local_store, DAY, {**FAST, "family": "als"})
    assert again["reused"] and again["model_id"] == trained["model_id"]
    with pytest.raises(ValueError, match="family must be 'auto' or one of"):
        nightly.train(shop_engine, local_store, DAY, {**FAST, "family": "gru"})


def _register_tuning(engine, searched_on: dt.date, neighbours: int) -> None:
    """A model row of an earlier night carrying a tuning record (as the nightly run leaves it)."""
    record = {"searched_on": searched_on.isoformat(), "metric": "ndcg@10", "budget_seconds": 1.0,
              "candidates": {"item-knn": {"family": "item-knn", "config": {"neighbours": neighbours},
                                          "validation": 0.2, "default_validation": 0.1, "trials": 3}}}
    registry.register_model(engine, model_id=f"01TUNED{searched_on:%Y%m%d}", model_type="item-knn",
                            train_date=searched_on, params={"tuning": record}, samples=1, artifact_uri="x")


def test_a_stored_tuned_configuration_is_used_until_the_next_search(shop_engine, local_store, env):
    env(selection_candidates="item-knn", tuning_interval_days=7)
    _register_tuning(shop_engine, DAY - dt.timedelta(days=3), neighbours=7)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    row = registry.get_model(shop_engine, trained["model_id"])
    assert row.params["config"] == {"neighbours": 7}  # the tuned value, not the default 100
    assert row.params["tuning"]["searched_on"] == (DAY - dt.timedelta(days=3)).isoformat()  # carried, no search


def test_a_search_older_than_the_interval_triggers_a_new_one(shop_engine, local_store, env):
    env(selection_candidates="item-knn", tuning_interval_days=7, tuning_budget_seconds=3, tuning_families=1)
    _register_tuning(shop_engine, DAY - dt.timedelta(days=7), neighbours=7)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    tuning = registry.get_model(shop_engine, trained["model_id"]).params["tuning"]
    assert tuning["searched_on"] == DAY.isoformat()
    searched = tuning["candidates"]["item-knn"]
    assert searched["trials"] >= 1 and searched["default_validation"] is not None
    assert searched["validation"] >= searched["default_validation"]


def test_the_sequential_candidate_is_scored_like_the_others_and_recorded(shop_engine, local_store, env):
    env(selection_candidates="hybrid-default,sequential", no_components=8, sequential_time_budget_seconds=3)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    row = registry.get_model(shop_engine, trained["model_id"])
    table = row.params["selection"]
    assert [r["name"] for r in table["candidates"]] == ["hybrid-default", "sequential"]
    assert all(r["validation"]["ndcg@10"] is not None for r in table["candidates"])
    sequential = table["candidates"][1]
    assert table["candidates"][0]["skipped"] is None  # 3 s of training may end while the model still improves:
    if sequential["skipped"] is not None:  # then it is shown, not ranked (a 0.2 s budget always is: the test below)
        assert sequential["skipped"].endswith("still improving: a partial fit, not ranked")
        assert not sequential["chosen"]
    assert sequential["family"] == "sequential" and sequential["config"]["time_budget_s"] == 3
    assert sequential["config"]["seed"] == 42 and sequential["validation"]["users"] == \
        table["candidates"][0]["validation"]["users"]  # the same validation users, as served
    (chosen,) = [r for r in table["candidates"] if r["chosen"]]
    assert row.params["family"] == chosen["family"] and row.params["config"] == chosen["config"]
    assert row.model_type == {"hybrid": "HYBRID", "sequential": "SEQUENTIAL"}[chosen["family"]]
    assert nightly.train(shop_engine, local_store, DAY, FAST)["model_id"] == trained["model_id"]  # reused


def test_without_torch_the_sequential_candidate_is_skipped_not_a_failure(shop_engine, local_store, env, monkeypatch):
    import sys

    env(selection_candidates="hybrid-default,sequential", no_components=8)
    monkeypatch.setitem(sys.modules, "recsys.families.sequential.train", None)  # as if torch were not installed
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    table = registry.get_model(shop_engine, trained["model_id"]).params["selection"]
    sequential = table["candidates"][1]
    assert sequential["validation"] is None and sequential["skipped"].startswith("unavailable: ")
    assert "requirements-train.txt" in sequential["skipped"]
    assert table["chosen"] == "hybrid-default" and trained["family"] == "hybrid"


def test_a_pinned_sequential_model_goes_through_evaluate_promotion_publish_and_precompute(
        shop_engine, local_store, redis_client, env):
    from recsys.constants import STATUS_LIVE
    from recsys.families.sequential import MODEL_TYPE_SEQUENTIAL
    from recsys.families.sequential.config import SequentialConfig

    env(selection_candidates="hybrid-default", sequential_time_budget_seconds=3)
    pinned = {**FAST, "family": "sequential", "force_promotion": True}
    trained = nightly.train(shop_engine, local_store, DAY, pinned)
    row = registry.get_model(shop_engine, trained["model_id"])
    assert row.model_type == MODEL_TYPE_SEQUENTIAL and trained["family"] == "sequential"
    assert row.params["family"] == "sequential" and row.params["window_days"] == 14
    assert SequentialConfig(**row.params["config"]).time_budget_s == 3
    assert row.params["selection"]["chosen"] == "sequential" and row.params["selection_key"]["pinned"] == "sequential"
    assert row.params["train_days"] == [str(DAY - dt.timedelta(days=13)), str(DAY - dt.timedelta(days=1))]
    again = nightly.train(shop_engine, local_store, DAY, pinned)
    assert again["reused"] and again["model_id"] == trained["model_id"]
    # the DAG's sequential branch (A/B path) trains its own model: it never takes the main line's row for its re-run
    branch = nightly.train_sequential(shop_engine, local_store, DAY, FAST)
    assert not branch.get("reused") and branch["model_id"] != trained["model_id"]

    evaluated = nightly.evaluate(shop_engine, local_store, DAY, trained["model_id"])
    metrics = registry.get_model(shop_engine, trained["model_id"]).metrics
    assert metrics["new"]["users"] == metrics["popularity"]["users"] > 0
    assert evaluated["new_ndcg@10"] == metrics["new"]["ndcg@10"]
    decision = nightly.promote_or_archive(shop_engine, DAY, trained["model_id"], pinned)
    assert decision["decision"] == "promoted"  # made LIVE by the run's switch, once its lists are written
    published = nightly.publish(shop_engine, local_store, DAY, decision)
    assert published["keys"] == [f"models/{trained['model_id']}/metadata.json"]
    assert "metadata.json" in registry.get_model(shop_engine, trained["model_id"]).artifacts
    shards = nightly.shards(shop_engine, DAY, decision)
    written = [nightly.precompute(shop_engine, local_store, redis_client, DAY, shard, decision)
               for shard in shards]
    assert {w["model_id"] for w in written} == {trained["model_id"]} and sum(w["users"] for w in written) > 0
    nightly.switch(shop_engine, DAY, decision)
    assert registry.get_live(shop_engine).model_id == trained["model_id"]
    assert registry.get_model(shop_engine, trained["model_id"]).status == STATUS_LIVE
    moved = [nightly.promote_lists(shop_engine, redis_client, DAY, shard, decision) for shard in shards]
    assert sum(m["moved"] for m in moved) == sum(w["users"] for w in written)


def test_the_live_models_family_is_handed_to_the_choice(shop_engine, local_store, env):
    env(selection_candidates="hybrid-default,item-knn", no_components=8)
    live = nightly.train(shop_engine, local_store, DAY, {**FAST, "family": "item-knn"})
    registry.promote(shop_engine, live["model_id"], reason="test")
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    table = registry.get_model(shop_engine, trained["model_id"]).params["selection"]
    assert table["live_family"] == "item-knn" and "LIVE family item-knn" in table["decision"]
    rows = {r["name"]: r for r in table["candidates"]}
    chosen = next(r for r in rows.values() if r["chosen"])
    if chosen["name"] == "item-knn" and rows["hybrid-default"]["validation"]["ndcg@10"] > \
            rows["item-knn"]["validation"]["ndcg@10"]:  # kept although behind: only within the leader's interval
        assert table["decision"].startswith("kept the LIVE family item-knn")
        assert rows["item-knn"]["interval"][1] >= rows["hybrid-default"]["interval"][0]


def test_a_sequential_candidate_cut_by_its_training_budget_is_reported_not_ranked(shop_engine, local_store, env):
    env(selection_candidates="hybrid-default,sequential", no_components=8, sequential_time_budget_seconds=0.2)
    trained = nightly.train(shop_engine, local_store, DAY, FAST)
    table = registry.get_model(shop_engine, trained["model_id"]).params["selection"]
    sequential = table["candidates"][1]
    assert sequential["family"] == "sequential" and sequential["validation"] is not None
    assert sequential["skipped"].startswith("cut by its training time budget after ")
    assert sequential["skipped"].endswith("still improving: a partial fit, not ranked")
    assert not sequential["chosen"] and sequential["interval"] is None and trained["candidate"] == "hybrid-default"
