"""recsys on a real 3-primary Redis Cluster (``RECSYS_REDIS_URL=redis+cluster://...``): precompute writes,
API reads (the cache hit's one pipeline, its cached answer) and session updates of events.

The cluster is started from ``redis-server --cluster-enabled yes`` on ports 7101-7103 for this module
and stopped at its end (``tests/redis_cluster.py``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from redis.cluster import RedisCluster
from sqlalchemy import text

from api_helpers import now_ms, open_client, truncate_all
from recsys.api.ab_admin import ABAdmin
from recsys.api.app import create_app, make_async_redis
from recsys.api.schemas import RecommendationsResponse
from recsys.artifacts import LocalArtifactStore
from recsys.clients import cluster_url, make_redis
from recsys.keys import ab_key, answer_key, events_key, recs_key, session_key, user_embedding_key
from recsys.serving.session_state import parse_session
from recsys.settings import Settings
from redis_cluster import local_cluster

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
LAST_DAY = dt.date(2026, 11, 20)  # tests/conftest.py LAST_EVENT_DAY


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url


@pytest.fixture(scope="module")
def on_cluster(pg_engine, pg_url, small_shop, cluster, tmp_path_factory):
    """The shop, a LIVE model and precompute's keys, written to the cluster."""
    from recsys import registry
    from recsys.data.loading import load_shop
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.pipeline.precompute import precompute_all
    from recsys.pipeline.publish import publish_model

    truncate_all(pg_engine)
    load_shop(pg_engine, small_shop)
    root = tmp_path_factory.mktemp("cluster-shop")
    settings = Settings(database_url=pg_url, redis_url=cluster, artifact_uri=str(root / "artifacts"),
                        var_dir=root / "var", api_refresh_seconds=3600)
    store = LocalArtifactStore(settings.resolved_artifact_uri)
    client = make_redis(settings)
    assert isinstance(client, RedisCluster)
    trained = train_model(pg_engine, store, LAST_DAY + dt.timedelta(days=1),
                          TrainParams(epochs=3, no_components=8, threads=1, seed=3))
    registry.promote(pg_engine, trained["model_id"], reason="cluster test")
    publish_model(pg_engine, store, trained["model_id"])
    with_session = heavy_users(pg_engine, None)[-5:]  # users the API has seen: precompute writes their answers
    for u in with_session:
        client.hset(session_key(u), mapping={"seeded": "1", "cats": "Books"})
        client.set(events_key(u), 60)
    out = precompute_all(pg_engine, store, client, day=LAST_DAY, settings=settings)
    yield {"settings": settings, "client": client, "engine": pg_engine, "users": out["users"],
           "model_id": trained["model_id"], "with_session": with_session}
    client.close()
    truncate_all(pg_engine)


def heavy_users(engine, client, least: int = 50) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT user_id, count(*) FROM user_events WHERE event_type <> 'IMPRESSION' "
                                 "GROUP BY user_id HAVING count(*) >= :n ORDER BY user_id"), {"n": least}).all()
    return [int(u) for u, _ in rows if client is None or client.exists(recs_key(int(u)))]


async def test_the_admin_endpoints_client_is_a_cluster_client_with_the_api_timeouts(on_cluster):
    settings = on_cluster["settings"]
    serving, _ = make_async_redis(settings)
    admin = ABAdmin(settings, None, serving).redis
    try:
        assert isinstance(admin, RedisCluster)
        kwargs = admin.get_default_node().redis_connection.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == settings.redis_timeout_seconds
        users = on_cluster["with_session"]  # keys of several slots, through the admin client
        assert admin.exists(*(session_key(u) for u in users)) == len(users) and admin.ping()
    finally:
        admin.close()
        await serving.aclose()


def test_cluster_urls():
    assert cluster_url("redis+cluster://10.0.0.1:7000/0") == "redis://10.0.0.1:7000/0"
    assert cluster_url("rediss+cluster://h:1") == "rediss://h:1"
    assert cluster_url("redis://127.0.0.1:6379/5") is None and cluster_url("") is None


def test_one_users_keys_share_a_slot_and_users_spread_over_the_primaries(on_cluster):
    client = on_cluster["client"]
    users = heavy_users(on_cluster["engine"], client)
    assert on_cluster["users"] > 0 and len(users) >= 10
    for u in users[:50]:
        slots = {client.keyslot(k(u)) for k in (recs_key, answer_key, session_key, events_key, ab_key,
                                                 user_embedding_key)}
        assert len(slots) == 1
    nodes = {client.get_node_from_key(recs_key(u)).port for u in users}
    assert nodes == {7101, 7102, 7103}


def counting(service) -> list:
    """Calls of the tiers (``_recommend_view``) from now on; an answer sent from the cache makes none."""
    calls, original = [], service._recommend_view

    async def counted(*args, **kwargs):
        calls.append(args)
        return await original(*args, **kwargs)

    service._recommend_view = counted
    return calls


async def test_the_api_sends_the_answers_precompute_wrote(on_cluster):
    client = on_cluster["client"]
    users = [u for u in on_cluster["with_session"] if client.exists(recs_key(u))]
    assert users and all(client.exists(answer_key(u)) for u in users)
    app = create_app(on_cluster["settings"], refresh_in_background=False)
    api, close = await open_client(app)
    try:
        calls = counting(app.state.recommender)
        for u in users:
            r = await api.get("/recommendations", params={"user_id": u, "num_items": 5})
            assert r.status_code == 200 and r.json()["source"] == "personalized" and len(r.json()["items"]) == 5
        assert calls == []  # every first request answered with precompute's bytes
    finally:
        await close()


async def test_api_reads_cached_answers_and_events_update_the_session_on_the_cluster(on_cluster):
    client, settings = on_cluster["client"], on_cluster["settings"]
    user = next(u for u in heavy_users(on_cluster["engine"], client) if u not in on_cluster["with_session"])
    app = create_app(settings, refresh_in_background=False)
    api, close = await open_client(app)
    try:
        async def get() -> RecommendationsResponse:
            r = await api.get("/recommendations", params={"user_id": user, "num_items": 10})
            assert r.status_code == 200, r.text
            return RecommendationsResponse.model_validate(r.json())

        first = await get()  # first sight: counter and session seeded from the database, into the cluster
        assert first.source == "personalized" and first.model_version == on_cluster["model_id"]
        assert client.exists(session_key(user)) and int(client.get(events_key(user))) >= 50
        bodies = [await get() for _ in range(4)]  # re-ranked, then answered from answer:{user} (written back)
        assert client.exists(answer_key(user))
        assert [i.product_id for i in bodies[2].items] == [i.product_id for i in bodies[0].items]
        service = app.state.recommender
        worked_out = counting(service)
        again = [await get() for _ in range(2)]
        assert worked_out == [] and all(b.items == again[0].items for b in again)  # sent from the cache
        del service._recommend_view

        product = bodies[0].items[-1].product_id
        r = await api.post("/events/click", json={"user_id": user, "product_id": product, "timestamp": now_ms(),
                                                   "session_id": "cluster-1"})
        assert r.status_code == 200, r.text
        session = parse_session(client.hgetall(session_key(user)))
        assert session.session_id == "cluster-1" and session.viewed[0] == product
        after = await get()  # the session changed: re-ranked with it, not the cached answer
        expected = await app.state.recommender.recommend(user, 10)
        assert [(i.product_id, i.reason) for i in after.items] == [(c.product_id, c.reason) for c in expected.items]
        assert [i.score for i in after.items] == pytest.approx([c.score for c in expected.items], rel=1e-6)

        users = heavy_users(on_cluster["engine"], client)[:8]  # a batch's session updates: one cluster pipeline
        assert len({client.get_node_from_key(session_key(u)).name for u in users}) > 1
        events = [{"user_id": u, "product_id": product, "timestamp": now_ms(), "event_type": "VIEW",
                   "session_id": f"cluster-b{u}", "event_id": f"cluster-b{u}"} for u in users]
        r = await api.post("/events/batch", json={"events": events})
        assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == ["logged"] * len(users)
        for u in users:
            assert parse_session(client.hgetall(session_key(u))).session_id == f"cluster-b{u}"
    finally:
        await close()


def test_the_impression_flusher_acknowledges_and_counts_on_the_cluster(on_cluster):
    """The acknowledge script and the stream's counts touch the stream and its deleted counter at once: one
    slot (a CROSSSLOT error on a cluster before the counter's hash tag)."""
    from recsys.abtest.flusher import flush_impressions, stream_counts
    from recsys.keys import KEY_IMPRESSIONS, KEY_IMPRESSIONS_DELETED, LEGACY_IMPRESSIONS_DELETED
    from recsys.serving.impressions import impression_fields

    client, engine = on_cluster["client"], on_cluster["engine"]
    assert client.keyslot(KEY_IMPRESSIONS) == client.keyslot(KEY_IMPRESSIONS_DELETED)
    flush_impressions(engine, client, batch=100)  # the impressions of this module's earlier requests
    before = stream_counts(client)["deleted"]
    client.set(LEGACY_IMPRESSIONS_DELETED, 5)  # a deployment's counter under its old name
    for i in range(3):
        client.xadd(KEY_IMPRESSIONS, impression_fields(
            request_id=f"cluster-{i}", user_id=on_cluster["with_session"][i], ts_ms=now_ms(), products=[1, 2], model_id=on_cluster["model_id"], arm=None, test_id=None,
            source="personalized"))
    done = flush_impressions(engine, client, batch=10)
    assert done["impressions"] == 3 and done["dead_letters"] == 0
    counts = stream_counts(client)
    assert counts["length"] == 0 and counts["deleted"] == before + 5 + 3
    assert not client.exists(LEGACY_IMPRESSIONS_DELETED)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ab_impressions WHERE request_id LIKE 'cluster-%'")).scalar() == 3
