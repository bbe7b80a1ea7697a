"""Manual promote and rollback on the real PostgreSQL and Redis: verify, write, then point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import redis as redis_lib

from recsys import registry
from recsys.artifacts import model_key
from recsys.integrity import ArtifactIntegrityError
from recsys.families.hybrid.fit import TrainParams
from recsys.pipeline.train import train_model
from recsys.pipeline import precompute, rollout
from recsys.pipeline.publish import publish_model
from recsys.settings import Settings
from shop_dates import LAST_EVENT_DAY

SETTINGS = Settings(recs_per_user=5, active_days=3)


@pytest.fixture
def models(shop_engine, local_store):
    """Three trained and published models, promoted in turn: a, b, then c LIVE."""
    params = TrainParams(epochs=1, no_components=4, window_days=7, threads=1, seed=1)
    ids = []
    for _ in range(3):
        model_id = train_model(shop_engine, local_store, LAST_EVENT_DAY, params)["model_id"]
        publish_model(shop_engine, local_store, model_id, keep=5, rollback_depth=3)
        registry.promote(shop_engine, model_id, reason="nightly")
        ids.append(model_id)
    return ids


def _some_recs(redis_client) -> dict:
    return json.loads(redis_client.get(next(redis_client.scan_iter("recs:{[0-9]*"))))


def test_two_rollbacks_go_two_steps_back_each_precomputed(shop_engine, local_store, redis_client, models):
    a, b, c = models
    out = rollout.rollback_live(shop_engine, local_store, redis_client, SETTINGS)
    assert out["model_id"] == b and out["previous_live_model_id"] == c and out["precompute"]["users"] > 0
    assert _some_recs(redis_client)["model_version"] == b
    assert rollout.rollback_live(shop_engine, local_store, redis_client, SETTINGS)["model_id"] == a
    assert registry.get_live(shop_engine).model_id == a
    assert _some_recs(redis_client)["model_version"] == a


@pytest.mark.parametrize("damage", ["deleted", "altered"])
def test_rollback_to_a_model_whose_files_are_gone_or_altered_is_refused_naming_the_file(
        shop_engine, local_store, redis_client, models, damage):
    _, b, c = models
    if damage == "deleted":  # as an earlier retention rule did
        local_store.delete_prefix(model_key(b, ""))
        expected = f"{b}/model.npz (missing)"
    else:
        data = bytearray(local_store.get_bytes(model_key(b, "user_vectors.npy")))
        data[-1] ^= 1
        local_store.put_bytes(model_key(b, "user_vectors.npy"), bytes(data))
        expected = f"{b}/user_vectors.npy (mismatch)"
    with pytest.raises(ArtifactIntegrityError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        rollout.rollback_live(shop_engine, local_store, redis_client, SETTINGS)
    assert registry.get_live(shop_engine).model_id == c
    assert registry.rollback_target(shop_engine) == {"from": c, "to": b}  # the history is untouched
    assert not list(redis_client.scan_iter("recs:{[0-9]*"))  # nothing was precomputed from it


def test_a_failed_precompute_leaves_the_registry_unchanged(shop_engine, local_store, redis_client, models,
                                                          monkeypatch):
    _, b, c = models

    def redis_goes_away(*args, **kwargs):
        raise redis_lib.ConnectionError("Redis went away")

    monkeypatch.setattr(precompute, "score_users", redis_goes_away)
    with pytest.raises(redis_lib.ConnectionError):
        rollout.rollback_live(shop_engine, local_store, redis_client, SETTINGS)
    assert registry.get_live(shop_engine).model_id == c
    assert registry.rollback_target(shop_engine) == {"from": c, "to": b}
    with pytest.raises(redis_lib.ConnectionError):
        rollout.promote_live(shop_engine, local_store, redis_client, b, reason="by hand", settings=SETTINGS)
    assert registry.get_live(shop_engine).model_id == c


def test_verify_reports_each_file_and_promote_refuses_an_altered_model(shop_engine, local_store, redis_client,
                                                                       models):
    a, _, c = models
    report = rollout.verify_model(shop_engine, local_store)
    assert report["model_id"] == c and report["ok"]
    assert set(report["files"]) == {"model.npz", "model.json", "metadata.json", "user_ids.npy", "user_vectors.npy",
                                    "item_ids.npy", "item_vectors.npy", "item_norms.npy"}
    local_store.put_bytes(model_key(a, "model.json"), b"{}")
    (local_store.root / "models" / a / "item_norms.npy").unlink()
    report = rollout.verify_model(shop_engine, local_store, a)
    assert not report["ok"] and report["files"]["model.json"] == "mismatch"
    assert report["files"]["item_norms.npy"] == "missing" and report["files"]["model.npz"] == "ok"
    with pytest.raises(ArtifactIntegrityError, match="model.json"):
        rollout.promote_live(shop_engine, local_store, redis_client, a, reason="by hand", settings=SETTINGS)
    assert registry.get_live(shop_engine).model_id == c


def test_a_future_event_does_not_move_the_precompute_day(shop_engine):
    from sqlalchemy import insert

    from recsys.db.models import UserEvent
    from recsys.timeutil import day_start_ms

    before = precompute.latest_event_day(shop_engine)
    assert before == LAST_EVENT_DAY
    with shop_engine.begin() as conn:
        conn.execute(insert(UserEvent), [{"user_id": 1, "product_id": 1, "event_type": "VIEW",
                                          "timestamp": day_start_ms(LAST_EVENT_DAY) + 400 * 86_400_000}])
    assert precompute.latest_event_day(shop_engine) == before


def _as_legacy(engine, store, model_id: str, recorded: bool):
    """Turn a trained model into one of the earlier version: one ``model.pkl`` (the pickled HybridModel, as
    that version saved it), its checksum recorded (``models trust`` of that version) or nothing recorded."""
    import hashlib
    import pickle

    from sqlalchemy import update

    from recsys.db.models import RecommendationModel
    from recsys.families.hybrid.model import HybridModel

    model = HybridModel.load(store, model_id, registry.get_artifacts(engine, model_id))
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    store.put_bytes(model_key(model_id, "model.pkl"), data)
    for name in ("model.npz", "model.json"):
        store.delete_prefix(model_key(model_id, name))
    artifacts = {"model.pkl": hashlib.sha256(data).hexdigest()} if recorded else {}
    with engine.begin() as conn:
        conn.execute(update(RecommendationModel).where(RecommendationModel.model_id == model_id)
                     .values(artifacts=artifacts))
    return model


@pytest.fixture
def trained(shop_engine, local_store):
    params = TrainParams(epochs=1, no_components=4, window_days=7, threads=1, seed=1)
    return train_model(shop_engine, local_store, LAST_EVENT_DAY, params)["model_id"]


def test_trust_refuses_a_folder_with_a_pickle_saying_what_to_do(shop_engine, local_store, trained):
    _as_legacy(shop_engine, local_store, trained, recorded=False)
    with pytest.raises(registry.RegistryError, match=f"convert-legacy {trained}"):
        rollout.trust_model(shop_engine, local_store, trained)
    assert registry.get_artifacts(shop_engine, trained) == {}  # nothing recorded


@pytest.mark.parametrize("recorded", [False, True])
def test_a_converted_legacy_model_loads_and_scores_like_the_original(shop_engine, local_store, trained, recorded):
    """Converted on the operator's machine: model.npz + model.json written, the pickle removed; a model with
    a record gets the new files recorded, one registered before checksums is trusted next."""
    from recsys.families.hybrid.model import HybridModel

    original = _as_legacy(shop_engine, local_store, trained, recorded=recorded)
    out = rollout.convert_legacy(shop_engine, local_store, trained)
    assert not local_store.exists(model_key(trained, "model.pkl"))
    assert out["recorded"] is recorded and (out["next"] is None) is recorded
    if not recorded:
        rollout.trust_model(shop_engine, local_store, trained)
    recorded_now = registry.get_artifacts(shop_engine, trained)
    assert set(recorded_now) == {"model.npz", "model.json"} == set(out["written"])
    loaded = HybridModel.load(local_store, trained, recorded_now)
    users = pd.read_sql("SELECT * FROM users ORDER BY user_id LIMIT 50", shop_engine)
    products = pd.read_sql("SELECT * FROM products", shop_engine)
    assert rollout.verify_model(shop_engine, local_store, trained)["ok"]
    np.testing.assert_array_equal(loaded.score(users, products), original.score(users, products))


def test_a_recorded_pickle_that_changed_is_not_converted(shop_engine, local_store, trained):
    _as_legacy(shop_engine, local_store, trained, recorded=True)
    key = model_key(trained, "model.pkl")
    local_store.put_bytes(key, local_store.get_bytes(key) + b"\0")
    with pytest.raises(ArtifactIntegrityError, match="model.pkl: checksum mismatch"):
        rollout.convert_legacy(shop_engine, local_store, trained)
    assert local_store.exists(key) and not local_store.exists(model_key(trained, "model.json"))
