"""The API's model refresh over the node cache: a new LIVE model replaces the mapped one and the old
folder goes, bad files are logged while serving goes on, a model published as ``embeddings.npz`` is served."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging

import numpy as np
import pytest

from api_helpers import ALL_PRODUCTS, get_recs, insert_events, open_client, pid, register_live_model, write_lists
from recsys import registry
from recsys.api.app import create_app
from recsys.artifacts import LocalArtifactStore, model_key
from recsys.families.vectors.files import publish_arrays
from recsys.serving.refresh import refresh_model

pytestmark = pytest.mark.anyio


def vectors(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(len(ALL_PRODUCTS), 4)).astype(np.float32)
    return np.append(items[seed % len(ALL_PRODUCTS), :3], 1.0)[None, :], items


async def test_a_new_live_model_is_mapped_and_the_old_folder_removed(catalog_engine, redis_client, api_settings):
    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    cache = api_settings.embeddings_cache_dir
    user, items = vectors(1)
    register_live_model(catalog_engine, store, "m-a", [90], user, ALL_PRODUCTS, items)
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        state = app.state.serving
        assert state.embeddings.model_id == "m-a" and (cache / "m-a").is_dir()
        user, items = vectors(2)
        checksums = publish_arrays(store, "m-b", [90], user, ALL_PRODUCTS, items)
        registry.register_model(catalog_engine, model_id="m-b", model_type="HYBRID", train_date=dt.date(2026, 11, 27),
                                params={}, samples=10, artifact_uri=store.uri(model_key("m-b", "")),
                                artifacts=checksums)
        registry.promote(catalog_engine, "m-b", reason="test")
        assert await refresh_model(state)
        assert state.embeddings.model_id == "m-b" and not (cache / "m-a").exists() and (cache / "m-b").is_dir()
        insert_events(catalog_engine, 90, [pid("Home", 1)] * 55)
        body = await get_recs(client, 90, n=5)
        assert body.source == "personalized" and body.model_version == "m-b"
    finally:
        await close()


async def test_bad_files_are_logged_and_serving_goes_on(catalog_engine, redis_client, api_settings, caplog):
    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    user, items = vectors(3)
    register_live_model(catalog_engine, store, "m-bad", [90], user, ALL_PRODUCTS, items)
    store.put_bytes(model_key("m-bad", "item_vectors.npy"), b"truncated upload")
    insert_events(catalog_engine, 90, [pid("Home", 1)] * 55)
    app = create_app(api_settings, refresh_in_background=False)
    with caplog.at_level(logging.WARNING, logger="recsys.serving.refresh"):
        client, close = await open_client(app)
    try:
        state = app.state.serving
        assert state.embeddings is None and state.live_model_id == "m-bad"
        assert any("embeddings of m-bad refused" in r.getMessage() and "item_vectors.npy: checksum mismatch"
                   in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        body = await get_recs(client, 90, n=5)
        assert body.source != "personalized" and len(body.items) == 5  # the fallback tiers answer
        assert not (api_settings.embeddings_cache_dir / "m-bad").exists()
        publish_arrays(store, "m-bad", [90], user, ALL_PRODUCTS, items)  # the file is fixed: the next refresh maps it
        await refresh_model(state)
        assert state.embeddings is not None and state.embeddings.model_id == "m-bad"
    finally:
        await close()


async def test_a_model_published_as_npz_is_served(catalog_engine, redis_client, api_settings):
    """A LIVE model of the previous version (only ``embeddings.npz``) keeps being served after the upgrade."""
    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    user, items = vectors(4)
    register_live_model(catalog_engine, store, "m-old", [90], user, ALL_PRODUCTS, items)
    for name in store.list(model_key("m-old", "")):
        store.delete_prefix(name)
    buf = io.BytesIO()
    np.savez_compressed(buf, user_ids=np.array([90]), user_vectors=user, item_ids=np.array(ALL_PRODUCTS),
                        item_vectors=items)
    store.put_bytes(model_key("m-old", "embeddings.npz"), buf.getvalue())
    registry.record_artifacts(catalog_engine, "m-old", {"embeddings.npz": hashlib.sha256(buf.getvalue()).hexdigest()})
    insert_events(catalog_engine, 90, [pid("Home", 1)] * 55)
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        assert app.state.serving.embeddings.model_id == "m-old"
        assert not (api_settings.embeddings_cache_dir / "m-old").exists()  # read whole, not cached
        body = await get_recs(client, 90, n=5)
        assert body.source == "personalized" and body.model_version == "m-old"
        best = [ALL_PRODUCTS[i] for i in np.argsort(-(items @ user[0]))[:100]]
        assert all(i.product_id in best for i in body.items)
    finally:
        await close()


async def test_an_altered_file_of_a_new_live_model_keeps_the_previous_model_in_service(
        catalog_engine, redis_client, api_settings, caplog):
    """The bucket's copy of a new LIVE model was replaced after publish: the API refuses it and keeps m-a."""
    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    user, items = vectors(5)
    register_live_model(catalog_engine, store, "m-a", [90], user, ALL_PRODUCTS, items)
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        state = app.state.serving
        user_b, items_b = vectors(6)
        checksums = publish_arrays(store, "m-evil", [90], user_b, ALL_PRODUCTS, items_b)
        registry.register_model(catalog_engine, model_id="m-evil", model_type="HYBRID", train_date=dt.date(2026, 11, 27),
                                params={}, samples=10, artifact_uri="x", artifacts=checksums)
        registry.promote(catalog_engine, "m-evil", reason="test")
        publish_arrays(store, "m-evil", [90], -user_b, ALL_PRODUCTS, items_b)  # same shapes, other bytes
        with caplog.at_level(logging.ERROR, logger="recsys.serving.refresh"):
            assert await refresh_model(state)
        assert state.live_model_id == "m-evil" and state.embeddings.model_id == "m-a"
        assert any("m-evil" in r.getMessage() and "user_vectors.npy: checksum mismatch" in r.getMessage()
                   for r in caplog.records)
        assert not (api_settings.embeddings_cache_dir / "m-evil").exists()
    finally:
        await close()


async def test_a_file_without_a_recorded_checksum_is_never_read(catalog_engine, redis_client, api_settings, caplog):
    """A legacy ``embeddings.npz`` dropped into the bucket for a model without checksums is refused."""
    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    user, items = vectors(7)
    register_live_model(catalog_engine, store, "m-old", [90], user, ALL_PRODUCTS, items)
    store.delete_prefix(model_key("m-old", ""))
    buf = io.BytesIO()
    np.savez(buf, user_ids=np.array([90]), user_vectors=user, item_ids=np.array(ALL_PRODUCTS), item_vectors=items)
    store.put_bytes(model_key("m-old", "embeddings.npz"), buf.getvalue())
    with caplog.at_level(logging.ERROR, logger="recsys.serving.refresh"):
        client, close = await open_client(create_app(api_settings, refresh_in_background=False))
    try:
        assert any("embeddings.npz: no recorded checksum" in r.getMessage() for r in caplog.records)
        body = await get_recs(client, 90, n=5)
        assert body.source != "personalized"
    finally:
        await close()


async def test_a_refresh_works_out_the_answer_digest_so_no_request_does(catalog_engine, redis_client, api_settings,
                                                                        monkeypatch):
    """The digest of every product (0.13-0.29 s at 100K products) was computed by the first request after each
    catalog refresh, on the event loop; the refresh now leaves it ready for the new snapshots."""
    from api_helpers import write_user_recs
    from recsys.serving import state as state_module
    from recsys.serving.refresh import refresh_all
    from recsys.keys import answer_key

    write_lists(redis_client)
    app = create_app(api_settings, refresh_in_background=False)
    client, close = await open_client(app)
    try:
        state = app.state.serving
        assert await refresh_all(state)
        ready = state._answer_context
        assert ready is not None and ready[0] is state.catalog and ready[1] is state.lists
        computed = []
        real = state_module.context_digest
        monkeypatch.setattr(state_module, "context_digest", lambda *a, **k: computed.append(1) or real(*a, **k))
        write_user_recs(redis_client, 90, [pid("Home", j) for j in range(1, 9)], n_events=60)
        answers = [await get_recs(client, 90, n=5) for _ in range(3)]  # Tier 1: its answer written, then sent
        assert {a.source for a in answers} == {"personalized"} and redis_client.exists(answer_key(90))
        assert computed == []
    finally:
        await close()


async def test_a_cached_file_changed_on_the_node_is_refused_when_the_api_starts_again(
        catalog_engine, redis_client, api_settings, caplog):
    """The API starts (the LIVE model's files are downloaded into the node cache) and stops; a byte of a
    cached .npy is changed on the node's disk; at the next start the folder is hashed again, refused and
    downloaded again, and the API serves the registry's vectors."""
    write_lists(redis_client)
    store = LocalArtifactStore(api_settings.resolved_artifact_uri)
    user, items = vectors(5)
    register_live_model(catalog_engine, store, "m-node", [90], user, ALL_PRODUCTS, items)
    client, close = await open_client(create_app(api_settings, refresh_in_background=False))
    await close()
    cached = api_settings.embeddings_cache_dir / "m-node" / "item_vectors.npy"
    data = bytearray(cached.read_bytes())
    data[-4:] = np.float32(1e6).tobytes()  # the bias of the last product: it would top every list
    cached.write_bytes(bytes(data))
    app = create_app(api_settings, refresh_in_background=False)
    with caplog.at_level(logging.ERROR, logger="recsys.serving.model_cache"):
        client, close = await open_client(app)
    try:
        state = app.state.serving
        published = np.load(store.uri(model_key("m-node", "item_vectors.npy")))
        np.testing.assert_array_equal(state.embeddings.item_vectors, published)
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == registry.get_artifacts(
            catalog_engine, "m-node")["item_vectors.npy"]
        assert any("item_vectors.npy changed on this node's disk" in r.getMessage() for r in caplog.records)
        insert_events(catalog_engine, 90, [pid("Home", 1)] * 55)
        body = await get_recs(client, 90, n=5)
        assert body.source == "personalized" and body.model_version == "m-node"
    finally:
        await close()
