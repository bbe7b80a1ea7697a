"""Publishing a model's embeddings and metadata, and retention of old versions, on local disk and moto S3."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from recsys import registry
from recsys.artifacts import S3ArtifactStore, model_key
from recsys.constants import STATUS_ARCHIVED, STATUS_CANDIDATE, STATUS_LIVE
from recsys.db.bulk import upsert_rows
from recsys.families.hybrid.model import HybridModel
from recsys.families.hybrid.fit import TrainParams, fit_hybrid
from recsys.families.vectors.files import EMBEDDING_FILES, body_norms, read_embeddings
from recsys.artifacts.retention import folders_to_delete, model_folders
from recsys.families.vectors.scorer import write_model_embeddings
from recsys.pipeline.publish import publish_model

DAY = dt.date(2026, 11, 20)
N_USERS, N_PRODUCTS = 40, 25


def _catalog() -> tuple[pd.DataFrame, pd.DataFrame]:
    users = pd.DataFrame({
        "user_id": np.arange(1, N_USERS + 1),
        "country": ["US", "DE", "JP", "BR"] * (N_USERS // 4),
        "language": ["en", "de", "ja", "pt"] * (N_USERS // 4),
        "device_type": ["mobile", "desktop"] * (N_USERS // 2),
    })
    created = pd.Timestamp("2026-10-01", tz="UTC")
    products = pd.DataFrame({
        "product_id": np.arange(100, 100 + N_PRODUCTS),
        "name": [f"Classic {c} Item" for c in ["Red", "Blue", "Green", "Black", "White"] * (N_PRODUCTS // 5)],
        "category": ["Books", "Shoes", "Home", "Toys", "Garden"] * (N_PRODUCTS // 5),
        "price": np.linspace(5, 120, N_PRODUCTS),
        "margin": 0.2, "in_stock": True, "created_at": created, "last_updated_at": created,
    })
    return users, products


@pytest.fixture(scope="module")
def tiny_model() -> HybridModel:
    users, products = _catalog()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "user_id": rng.integers(1, N_USERS + 1, 300), "product_id": rng.integers(100, 100 + N_PRODUCTS, 300),
        "weight": rng.integers(1, 6, 300).astype(float), "purchases": rng.integers(0, 2, 300), "spend": 10.0,
    }).drop_duplicates(["user_id", "product_id"])
    return fit_hybrid(frame, users, products, TrainParams(epochs=2, no_components=8, threads=1, seed=1))


@pytest.fixture
def catalog_engine(engine):
    users, products = _catalog()
    upsert_rows(engine, "users", users.iloc[: N_USERS - 5])  # 5 model users are gone from the users table
    upsert_rows(engine, "products", products)
    return engine


def _train_and_register(engine, store, model, model_id: str) -> None:
    checksums = model.save(store, model_id)
    registry.register_model(engine, model_id=model_id, model_type="HYBRID", train_date=DAY,
                            params={"epochs": 2}, samples=300, artifact_uri=store.uri(model_key(model_id, "")),
                            artifacts=checksums)


def test_publish_writes_embeddings_and_metadata_locally(catalog_engine, local_store, tiny_model):
    _train_and_register(catalog_engine, local_store, tiny_model, "m1")
    registry.promote(catalog_engine, "m1", reason="test")
    out = publish_model(catalog_engine, local_store, "m1")
    keys = [model_key("m1", name) for name in (*EMBEDDING_FILES, "metadata.json")]
    assert out["keys"] == keys
    assert out["deleted"] == []
    emb = read_embeddings(local_store, "m1", registry.get_artifacts(catalog_engine, "m1"))
    assert emb["user_ids"].tolist() == list(range(1, N_USERS - 4))  # every user of the users table
    assert emb["item_ids"].tolist() == list(range(100, 100 + N_PRODUCTS))
    assert emb["user_vectors"].dtype == np.float32 and emb["item_vectors"].dtype == np.float32
    assert emb["user_vectors"].shape == (N_USERS - 5, tiny_model.dim)
    assert emb["item_vectors"].shape == (N_PRODUCTS, tiny_model.dim)
    np.testing.assert_array_equal(emb["user_vectors"][:, -1], 1.0)  # [embedding, 1.0]
    users, products = _catalog()
    np.testing.assert_allclose(emb["item_vectors"], tiny_model.item_vectors(products), rtol=1e-6)
    body = emb["item_vectors"][:, :-1].astype(np.float64)
    np.testing.assert_allclose(emb["item_norms"], np.linalg.norm(body, axis=1), rtol=1e-5)
    meta = json.loads(local_store.get_bytes(model_key("m1", "metadata.json")))
    assert meta["model"]["model_id"] == "m1" and meta["model"]["status"] == STATUS_LIVE
    assert meta["params"] == {"epochs": 2} and meta["dim"] == tiny_model.dim
    assert meta["files"] == [model_key("m1", "model.npz"), model_key("m1", "model.json"), *keys]
    recorded = registry.get_artifacts(catalog_engine, "m1")
    assert set(recorded) == {"model.npz", "model.json", *EMBEDDING_FILES, "metadata.json"}
    assert all(recorded[n] == local_store.sha256(model_key("m1", n)) for n in recorded)


def test_embedding_files_are_sorted_by_id_and_built_block_by_block(tmp_path, tiny_model):
    """Shuffled users and products, 7 rows per block: the same vectors as one whole call, in id order."""
    users, products = _catalog()
    users, products = users.sample(frac=1, random_state=3), products.sample(frac=1, random_state=4)
    write_model_embeddings(tiny_model, users, products, tmp_path, block=7)
    user_ids, item_ids = np.load(tmp_path / "user_ids.npy"), np.load(tmp_path / "item_ids.npy")
    assert user_ids.tolist() == sorted(users["user_id"]) and item_ids.tolist() == sorted(products["product_id"])
    by_user = users.set_index("user_id").loc[user_ids].reset_index()
    by_item = products.set_index("product_id").loc[item_ids].reset_index()
    np.testing.assert_array_equal(np.load(tmp_path / "user_vectors.npy"), tiny_model.user_vectors(by_user))
    items = np.load(tmp_path / "item_vectors.npy")
    np.testing.assert_array_equal(items, tiny_model.item_vectors(by_item))
    np.testing.assert_array_equal(np.load(tmp_path / "item_norms.npy"), body_norms(items))


def test_publish_unknown_model_or_missing_artifact(catalog_engine, local_store, tiny_model):
    with pytest.raises(registry.UnknownModelError):
        publish_model(catalog_engine, local_store, "ghost")
    registry.register_model(catalog_engine, model_id="nofile", model_type="HYBRID", train_date=DAY,
                            params={}, samples=0, artifact_uri="nowhere")
    from recsys.families.files import ModelArtifactError

    with pytest.raises(ModelArtifactError):
        publish_model(catalog_engine, local_store, "nofile")
    with pytest.raises(ValueError, match="keep"):
        publish_model(catalog_engine, local_store, "nofile", keep=0)


def _retention_scenario(engine, store, model) -> dict:
    """m1 LIVE (oldest), m2..m6 archived, m7 published with keep=3."""
    for i in range(1, 8):
        _train_and_register(engine, store, model, f"m{i}")
    registry.promote(engine, "m1", reason="old but LIVE")
    for i in range(2, 7):
        registry.archive(engine, f"m{i}", reason="lost")
    store.put_bytes("models/orphan/model.pkl", b"not registered yet")
    return publish_model(engine, store, "m7", keep=3)


@pytest.mark.parametrize("store_name", ["local_store", "s3_store"])
def test_retention_keeps_newest_and_live(request, store_name, catalog_engine, tiny_model):
    store = request.getfixturevalue(store_name)
    out = _retention_scenario(catalog_engine, store, tiny_model)
    assert out["deleted"] == ["m2", "m3", "m4"]
    assert model_folders(store) == {"m1", "m5", "m6", "m7", "orphan"}
    files = (*EMBEDDING_FILES, "metadata.json", "model.npz", "model.json")
    assert store.list("models/m7/") == sorted(f"models/m7/{f}" for f in files)
    assert store.list("models/m3/") == []
    assert registry.get_model(catalog_engine, "m3").status == STATUS_ARCHIVED  # rows stay, files go


@pytest.mark.parametrize("depth, deleted", [(2, ["m1", "m5"]), (0, ["m1", "m2", "m3", "m5"])])
def test_retention_keeps_the_models_rollback_depth_rollbacks_reach(catalog_engine, local_store, tiny_model, depth,
                                                                   deleted):
    """m1..m4 promoted in turn (m4 LIVE), m5 and m6 archived, m7 published with keep=2."""
    for i in range(1, 8):
        _train_and_register(catalog_engine, local_store, tiny_model, f"m{i}")
    for i in range(1, 5):
        registry.promote(catalog_engine, f"m{i}", reason="nightly")
    for i in (5, 6):
        registry.archive(catalog_engine, f"m{i}", reason="lost")
    out = publish_model(catalog_engine, local_store, "m7", keep=2, rollback_depth=depth)
    assert out["deleted"] == deleted
    if depth:
        assert registry.rollback_chain(catalog_engine, depth) == ["m3", "m2"]
        assert all(local_store.exists(model_key(m, "model.npz")) for m in ("m3", "m2"))


def test_retention_keeps_both_arms_of_a_running_ab_test(catalog_engine, local_store, tiny_model):
    """The control m2 was archived (a rollback, or a newer promotion) while its test runs: its files stay
    (precompute still serves the control arm) until the test ends."""
    from recsys.abtest import store as ab_store

    for i in range(1, 7):
        _train_and_register(catalog_engine, local_store, tiny_model, f"m{i}")
    registry.promote(catalog_engine, "m2", reason="nightly")
    ab_store.insert_test(catalog_engine, control_model_id="m2", treatment_model_id="m3", treatment_fraction=0.5,
                         start_at=dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc),
                         end_at=dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc), results={})
    registry.promote(catalog_engine, "m4", reason="nightly")
    for i in (1, 2, 3, 5):
        registry.archive(catalog_engine, f"m{i}", reason="lost")
    assert publish_model(catalog_engine, local_store, "m6", keep=1, rollback_depth=0)["deleted"] == ["m1", "m5"]
    assert local_store.exists(model_key("m2", "model.npz")) and local_store.exists(model_key("m3", "model.npz"))


def test_retention_rule_keeps_candidates_and_ignores_absent_folders():
    rows = [{"model_id": f"m{i}", "version": i, "status": STATUS_ARCHIVED} for i in range(1, 7)]
    rows[1]["status"] = STATUS_CANDIDATE
    present = {"m1", "m2", "m3", "m5", "m6"}  # m4's folder is already gone
    assert folders_to_delete(rows, present, keep=2) == ["m1", "m3"]
    assert folders_to_delete(rows, present, keep=2, also_keep={"m1"}) == ["m3"]
    with pytest.raises(ValueError):
        folders_to_delete(rows, present, keep=0)


class _Raw503:
    def stream(self, **_):
        yield b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


def _fail_first_put(client) -> dict:
    from botocore.awsrequest import AWSResponse

    calls = {"puts": 0}

    def flaky(request, **_):
        calls["puts"] += 1
        if calls["puts"] == 1:
            return AWSResponse(request.url, 503, {}, _Raw503())
        return None  # let moto's answer through (moto's own handler runs on every attempt)

    client.meta.events.register_first("before-send.s3.PutObject", flaky)
    return calls


def test_s3_put_is_retried_after_a_transient_503(s3_store):
    """The store's own client (botocore standard retry mode) retries a 503 on PutObject."""
    store = S3ArtifactStore("s3://recsys-test/artifacts")  # no client given: the store builds its own
    calls = _fail_first_put(store.client)
    store.put_bytes("probe/x.bin", b"payload")
    assert calls["puts"] == 2
    assert s3_store.get_bytes("probe/x.bin") == b"payload"


def test_the_injected_503_fails_a_client_without_retries(s3_store):
    """Control: the same fault is an error when retries are off, so the test above can fail."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    no_retries = Config(retries={"mode": "standard", "total_max_attempts": 1})
    client = boto3.client("s3", region_name="us-east-1", config=no_retries)
    store = S3ArtifactStore("s3://recsys-test/artifacts", client=client)
    _fail_first_put(client)
    with pytest.raises(ClientError, match="SlowDown"):
        store.put_bytes("probe/y.bin", b"payload")
