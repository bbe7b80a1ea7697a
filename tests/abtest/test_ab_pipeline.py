"""Where treatments come from (nightly ab_test policy, the CLI) and the arm lists of the nightly precompute."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import insert

from recsys import registry
from recsys.abtest import store
from recsys.serving.assignment import assign_arm
from recsys.flows.hourly import hour_of
from recsys.abtest.precompute import precompute_test_arms
from recsys.abtest.service import start_test
from recsys.artifacts import model_key
from recsys.cli import build_parser, cmd_models_candidate
from recsys.db.models import RecommendationModel
from recsys.flows import nightly
from recsys.pipeline.precompute import active_users
from recsys.settings import Settings
from recsys.keys import recs_key

DAY = dt.date(2026, 11, 20)
REPO = Path(__file__).resolve().parents[2]


def test_ab_test_policy_starts_a_test_against_the_live_model(ab_world):
    better = {"new": {"ndcg@10": 0.5}, "live": {"ndcg@10": 0.2}, "popularity": {"ndcg@10": 0.1}}
    with ab_world.begin() as conn:
        conn.execute(insert(RecommendationModel), [{
            "model_id": f"m-new{i}", "model_type": "HYBRID", "version": 10 + i, "train_date": DAY, "metrics": better,
            "params": {}, "status": "TRAINING", "training_samples_count": 1, "artifact_uri": "x"} for i in (1, 2)])
    out = nightly.promote_or_archive(ab_world, DAY, "m-new1", {"promotion_policy": "ab_test"})
    assert out["decision"] == "candidate" and out["ab_test_id"]
    test = store.get_test(ab_world, out["ab_test_id"])
    assert (test["treatment_model_id"], test["control_model_id"], test["status"]) == ("m-new1", "m-control", "RUNNING")
    assert registry.get_model(ab_world, "m-new1").status == "CANDIDATE"
    second = nightly.promote_or_archive(ab_world, DAY, "m-new2", {"promotion_policy": "ab_test"})
    assert second["decision"] == "candidate" and second["ab_test_id"] is None and "running" in second["ab_test_error"]


def test_models_candidate_command(ab_world, capsys):
    args = build_parser().parse_args(["models", "candidate", "m-treat"])
    assert (args.action, args.model_id) == ("candidate", "m-treat")
    assert cmd_models_candidate(ab_world, "m-treat") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "CANDIDATE"
    assert cmd_models_candidate(ab_world, "m-old") == 1
    assert "archived models cannot enter a test" in capsys.readouterr().err
    assert cmd_models_candidate(ab_world, "missing") == 1 and cmd_models_candidate(ab_world, None) == 2
    sim = build_parser().parse_args(["simulate", "--users", "50", "--hours", "2", "--api", "http://127.0.0.1:9"])
    assert (sim.users, sim.hours, sim.api) == (50, 2.0, "http://127.0.0.1:9")


def test_hour_of_a_run():
    start, end = hour_of(dt.datetime(2026, 11, 27, 13, tzinfo=dt.timezone.utc))
    assert (start.hour, end.hour, end - start) == (12, 13, dt.timedelta(hours=1))


def test_dag_wiring():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "recsys_ab_results.py"))
    assert bag.import_errors == {}
    dag = bag.dags["recsys_ab_results"]
    assert "ab_test" in dag.tags and dag.max_active_runs == 1 and not dag.catchup
    assert dag.get_task("flush_impressions").downstream_task_ids == {"update_results"}
    assert dag.get_task("update_results").downstream_task_ids == {"refresh_after_promotion"}
    assert all(t.on_failure_callback for t in dag.tasks)


@pytest.fixture
def two_models(shop_engine, local_store):
    """A tiny trained LIVE model, and a copy of it registered as a second model (the treatment)."""
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model

    live = train_model(shop_engine, local_store, DAY, TrainParams(window_days=21, epochs=2, no_components=8,
                                                                   threads=1, seed=3))["model_id"]
    registry.promote(shop_engine, live, reason="test")
    for name in ("model.npz", "model.json"):
        local_store.put_bytes(model_key("m-copy", name), local_store.get_bytes(model_key(live, name)))
    with shop_engine.begin() as conn:
        conn.execute(insert(RecommendationModel), [{
            "model_id": "m-copy", "model_type": "HYBRID", "version": 99, "train_date": DAY, "metrics": {},
            "params": {}, "status": "TRAINING", "training_samples_count": 1, "artifact_uri": "x",
            "artifacts": registry.get_artifacts(shop_engine, live)}])
    return live


def test_precompute_writes_the_treatment_list_for_its_users_only(shop_engine, local_store, redis_client, two_models):
    settings = Settings(recs_per_user=10, active_days=7, precompute_block_size=256)
    assert precompute_test_arms(shop_engine, local_store, redis_client, DAY, 0, settings)["test_id"] is None
    test = start_test(shop_engine, treatment_model_id="m-copy", control_model_id=two_models,
                      treatment_fraction=0.3, settings=settings)
    users = active_users(shop_engine, DAY, 7, settings)
    shard = int(users["shard"].value_counts().index[0])
    out = precompute_test_arms(shop_engine, local_store, redis_client, DAY, shard, settings)
    in_shard = users.loc[users["shard"] == shard, "user_id"].tolist()
    treated = [u for u in in_shard if assign_arm(test["test_id"], u, 0.3) == "treatment"]
    assert out["users"] == len(treated) > 0 and out["models"] == {"m-copy": len(treated)} and out["shard"] == shard
    for u in users["user_id"].tolist():
        cached = redis_client.get(recs_key(u, "m-copy"))
        assert (cached is not None) == (u in treated)
        if cached is not None:
            assert json.loads(cached)["model_version"] == "m-copy"
    assert not redis_client.keys(f"recs:{two_models}:*")  # the LIVE arm is served from recs:{user_id}
