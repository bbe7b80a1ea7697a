"""The flusher never jams: bad entries go to the dead letters, good ones are written exactly once,
impressions without a test are flushed, and what the stream cap trims is counted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import func, select

from ab_helpers import REDIS_URL
from recsys.abtest import dead_letters
from recsys.abtest.flusher import flush_impressions, stream_counts, write_entries
from recsys.serving.impressions import ImpressionBuffer, impression_fields
from recsys.keys import IMPRESSIONS_GROUP, KEY_IMPRESSIONS
from recsys.db.models import ABImpression, ImpressionDeadLetter, UserEvent
from recsys.pipeline_metrics import register_pipeline_metrics
from recsys.serving.stores.redis_store import RedisStore

TS = 1_700_000_000_000


def fields(rid: str, user: int = 7, products=(1, 2), test_id: int | None = 4, arm: str | None = "control"):
    return impression_fields(request_id=rid, user_id=user, ts_ms=TS, products=list(products), model_id="m1",
                             arm=arm, test_id=test_id, source="personalized")


def table_counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar() for t in (ABImpression, UserEvent))


def reasons(engine) -> dict[str, str]:
    return {d["stream_id"]: d["reason"] for d in dead_letters.load(engine)}


def poison_stream(redis_client) -> tuple[list[str], dict[str, str]]:
    """Ten good entries with five bad ones between them; returns (good ids, bad id -> reason expected)."""
    good, bad = [], {}
    bad_fields = {
        "uid 9223372036854775808 is outside": {**fields("b1"), "uid": str(2**63)},
        "ts: not an integer": {**fields("b2"), "ts": "yesterday"},
        "missing field 'uid'": {k: v for k, v in fields("b3").items() if k != "uid"},
        "not UTF-8": {**fields("b4"), "model": b"\xff\xfe"},
        "refused by the database": fields("b5\x00nul"),  # decodes, but PostgreSQL refuses a NUL in text
    }
    for i, (reason, entry) in enumerate(bad_fields.items()):
        good.append(redis_client.xadd(KEY_IMPRESSIONS, fields(f"g{2 * i}", user=100 + i)).decode())
        bad[redis_client.xadd(KEY_IMPRESSIONS, entry).decode()] = reason
        good.append(redis_client.xadd(KEY_IMPRESSIONS, fields(f"g{2 * i + 1}", user=200 + i)).decode())
    return good, bad


def test_bad_entries_are_dead_lettered_acknowledged_and_block_nothing(engine, redis_client):
    good, bad = poison_stream(redis_client)
    done = flush_impressions(engine, redis_client, batch=100)
    assert (done["impressions"], done["events"], done["dead_letters"]) == (10, 20, 5)
    assert table_counts(engine) == (10, 20)  # every good entry once, nothing of the bad ones
    with engine.connect() as conn:
        written = set(conn.execute(select(ABImpression.impression_id)).scalars())
    assert written == set(good)
    found = reasons(engine)
    assert set(found) == set(bad)
    for stream_id, expected in bad.items():
        assert expected in found[stream_id], found[stream_id]
    assert redis_client.xlen(KEY_IMPRESSIONS) == 0
    assert redis_client.xpending(KEY_IMPRESSIONS, IMPRESSIONS_GROUP)["pending"] == 0
    again = flush_impressions(engine, redis_client)  # nothing left, nothing jammed
    assert (again["impressions"], again["dead_letters"]) == (0, 0)


def test_the_raw_entry_is_kept_for_inspection(engine, redis_client):
    sid = redis_client.xadd(KEY_IMPRESSIONS, {**fields("x"), "uid": "-3"}).decode()
    flush_impressions(engine, redis_client)
    [letter] = dead_letters.load(engine)
    assert letter["stream_id"] == sid and letter["fields"]["uid"] == "-3" and letter["fields"]["rid"] == "x"
    assert letter["reason"] == "undecodable: uid -3 is outside 1..9223372036854775807"


def test_a_poisoned_batch_is_bisected_and_good_rows_are_written_once(engine, monkeypatch):
    import recsys.abtest.flusher as flusher

    attempts = []
    real = flusher._write_rows
    monkeypatch.setattr(flusher, "_write_rows", lambda e, entries: attempts.append(len(entries)) or real(e, entries))
    entries = [(f"{i}-0", fields(f"r{i}\x00" if i == 13 else f"r{i}", user=i + 1)) for i in range(32)]
    counts = write_entries(engine, entries)
    assert (counts["impressions"], counts["dead_letters"], counts["refused"]) == (31, 1, ["13-0"])
    assert table_counts(engine) == (31, 62)
    assert len(attempts) <= 2 * 5 + 1  # about two writes per halving, not one per row
    assert write_entries(engine, entries[:13])["impressions"] == 13 and table_counts(engine) == (31, 62)


def test_a_connectivity_failure_acknowledges_nothing(engine, redis_client, monkeypatch):
    import recsys.abtest.flusher as flusher
    from sqlalchemy.exc import OperationalError

    for i in range(3):
        redis_client.xadd(KEY_IMPRESSIONS, fields(f"r{i}"))

    def down(*_a, **_k):
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(flusher, "_write_rows", down)
    with pytest.raises(OperationalError):
        flush_impressions(engine, redis_client, consumer="a")
    assert redis_client.xpending(KEY_IMPRESSIONS, IMPRESSIONS_GROUP)["pending"] == 3
    assert dead_letters.count(engine) == 0  # an outage is not the entries' fault


def test_impressions_without_a_test_are_flushed_with_a_null_test_id(engine, sqlite_engine, redis_client):
    for db in (engine, sqlite_engine):
        redis_client.xadd(KEY_IMPRESSIONS, fields("no-test", test_id=None, arm=None))
        redis_client.xadd(KEY_IMPRESSIONS, fields("in-test", user=8))
        assert flush_impressions(db, redis_client)["impressions"] == 2
        with db.connect() as conn:
            rows = dict(conn.execute(select(ABImpression.request_id, ABImpression.test_id)).all())
        assert rows == {"no-test": None, "in-test": 4} and dead_letters.count(db) == 0


def test_replay_writes_what_is_fixed_and_keeps_what_is_still_refused(engine):
    ok = {"stream_id": "1-0", "fields": fields("was-refused-by-a-bug")}
    dead_letters.record(engine, [dead_letters.DeadLetter("1-0", ok["fields"], "refused by an old bug"),
                                 dead_letters.DeadLetter("2-0", {**fields("y"), "uid": "0"}, "old reason")])
    done = dead_letters.replay(engine)
    assert (done["replayed"], done["still_refused"], done["impressions"]) == (1, 1, 1)
    assert reasons(engine) == {"2-0": "undecodable: uid 0 is outside 1..9223372036854775807"}
    assert table_counts(engine) == (1, 2)
    assert dead_letters.replay(engine)["replayed"] == 0 and table_counts(engine) == (1, 2)


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_the_cli_lists_replays_and_discards(engine, pg_url, redis_client, tmp_path):
    dead_letters.record(engine, [dead_letters.DeadLetter("5-0", {**fields("z"), "ts": "x"}, "undecodable")])
    env = {**os.environ, "RECSYS_DATABASE_URL": pg_url, "RECSYS_REDIS_URL": REDIS_URL, "RECSYS_VAR_DIR": str(tmp_path)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "recsys", "impressions", "dead-letters", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    listed = cli("list")
    assert listed.returncode == 0 and '"stream_id": "5-0"' in listed.stdout and '"dead_letters": 1' in listed.stdout
    assert cli("replay").returncode == 2  # names nothing: refused
    replayed = cli("replay", "5-0")
    assert replayed.returncode == 1 and '"still_refused": 1' in replayed.stdout
    assert cli("discard", "--all").returncode == 0 and dead_letters.count(engine) == 0


@pytest.mark.anyio
async def test_the_stream_is_capped_and_what_the_cap_trims_is_counted(engine, redis_client):
    client = AsyncRedis.from_url(REDIS_URL)
    store = RedisStore(client, buffer=ImpressionBuffer(stream_max_len=100))
    try:
        for i in range(1000):
            store.buffer.add_impression(fields(f"c{i}", user=1 + i % 50))
        assert await store.flush_buffer() == 1000
    finally:
        await client.aclose()
    length = redis_client.xlen(KEY_IMPRESSIONS)
    assert 100 <= length < 1000  # MAXLEN ~: about 100 kept (whole nodes are trimmed)
    assert stream_counts(redis_client) == {"length": length, "added": 1000, "deleted": 0, "trimmed": 1000 - length}
    assert flush_impressions(engine, redis_client)["impressions"] == length
    assert stream_counts(redis_client) == {"length": 0, "added": 1000, "deleted": length, "trimmed": 1000 - length}
    registry = CollectorRegistry()
    register_pipeline_metrics(engine, registry, cache_seconds=0, redis=redis_client)
    text = generate_latest(registry).decode()
    assert f"recsys_impression_stream_trimmed_entries {float(1000 - length)}" in text
    assert "recsys_impression_stream_length 0.0" in text and "recsys_impression_dead_letters 0.0" in text


def test_dead_letters_are_a_metric(engine, redis_client):
    redis_client.xadd(KEY_IMPRESSIONS, {**fields("m"), "uid": "abc"})
    flush_impressions(engine, redis_client)
    registry = CollectorRegistry()
    register_pipeline_metrics(engine, registry, cache_seconds=0, redis=redis_client)
    assert "recsys_impression_dead_letters 1.0" in generate_latest(registry).decode()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ImpressionDeadLetter)).scalar() == 1


@pytest.mark.anyio
async def test_the_api_caps_the_stream_with_the_setting(ab_world, ab_settings, ab_store, redis_client):
    from ab_helpers import open_client
    from recsys.api.app import create_app

    app = create_app(ab_settings.model_copy(update={"impression_stream_max_len": 1000}), store=ab_store,
                     refresh_in_background=False)
    client, close = await open_client(app)
    try:
        buffer = app.state.serving.redis.buffer
        assert buffer.stream_max_len == 1000
        for i in range(1500):  # as if 1,500 answers were buffered while no flusher ran
            buffer.add_impression(fields(f"a{i}", user=1 + i % 40))
        assert (await client.get("/recommendations", params={"user_id": 3})).status_code == 200
    finally:
        await close()
    assert 1000 <= redis_client.xlen(KEY_IMPRESSIONS) < 1501
    counts = stream_counts(redis_client)
    assert counts["added"] == 1501 and counts["trimmed"] == 1501 - counts["length"] > 0


def test_the_deleted_counter_of_its_old_name_is_moved_once(engine, redis_client):
    from recsys.keys import KEY_IMPRESSIONS_DELETED, LEGACY_IMPRESSIONS_DELETED

    redis_client.set(LEGACY_IMPRESSIONS_DELETED, 41)
    redis_client.xadd(KEY_IMPRESSIONS, fields("moved-1"))
    flush_impressions(engine, redis_client, batch=10)
    assert stream_counts(redis_client)["deleted"] == 42 and not redis_client.exists(LEGACY_IMPRESSIONS_DELETED)
    flush_impressions(engine, redis_client, batch=10)  # nothing left to move: counted once
    assert int(redis_client.get(KEY_IMPRESSIONS_DELETED)) == 42
