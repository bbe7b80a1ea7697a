"""A LIVE sequential model through the pipeline and the real API: registry artifacts and a loader that refuses
altered files, the hold-out evaluation, precompute's lists (with their sequence key and reason), and
real-time scoring: a click changes the very next answer, an unchanged sequence is a cache hit that runs
no model.

One pipeline run (the synthetic shop, a tiny sequential model) serves the module: module-scoped fixtures only.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from api_helpers import AppClient, now_ms, served_shop
from recsys.artifacts import LocalArtifactStore, model_key
from recsys.keys import answer_key, recs_key
from recsys.families import TrainParams
from recsys.pipeline.train import train_model
from recsys.families.sequential import MODEL_TYPE_SEQUENTIAL
from recsys.constants import STATUS_LIVE
from recsys.families.sequential.config import SequentialConfig

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
LAST_DAY = dt.date(2026, 11, 20)  # tests/conftest.py LAST_EVENT_DAY
TINY = SequentialConfig(max_len=20, dim=32, layers=1, heads=1, dropout=0.1, max_epochs=3, patience=2, threads=1,
                        seed=3, time_budget_s=60)


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def pipeline(pg_engine, pg_url, small_shop, tmp_path_factory):
    """The shop in PostgreSQL, a LIVE sequential model, published and precomputed."""
    def train(engine, store):
        return train_model(engine, store, LAST_DAY + dt.timedelta(days=1), TrainParams(window_days=14),
                           family="sequential", config=TINY.as_dict())["model_id"]

    with served_shop(pg_engine, pg_url, small_shop, tmp_path_factory.mktemp("sequential"), train,
                     personalized_min_events=3) as shop:
        yield shop


@pytest.fixture(scope="module")
async def api(pipeline):
    async with AppClient(pipeline["settings"]) as client:
        yield client


def _user_lists(client) -> dict[int, dict]:
    out = {}
    for key in client.scan_iter("recs:{*}"):
        parts = key.decode().split(":")
        if len(parts) == 2:  # recs:{user_id}, the LIVE lists (recs:<model>:{user_id} belong to A/B arms)
            out[int(parts[1].strip("{}"))] = json.loads(client.get(key))
    return out


def test_registered_with_checksums_and_the_loader_refuses_altered_files(pipeline, tmp_path):
    from recsys import registry
    from recsys.integrity import ArtifactIntegrityError
    from recsys.families.sequential.store import SEQUENTIAL_FILES, load_sequential

    engine, store, model_id = pipeline["engine"], pipeline["store"], pipeline["model_id"]
    row = registry.get_model(engine, model_id)
    assert row.model_type == MODEL_TYPE_SEQUENTIAL and row.status == STATUS_LIVE
    assert set(SEQUENTIAL_FILES) | {"metadata.json"} == set(row.artifacts)
    for name, digest in row.artifacts.items():
        assert store.sha256(model_key(model_id, name)) == digest
    assert load_sequential(store, model_id, row.artifacts).product_ids.size > 0

    copy = LocalArtifactStore(tmp_path / "copy")
    shutil.copytree(store.root / "models" / model_id, copy.root / "models" / model_id)
    path = copy.root / "models" / model_id / "item_vectors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="item_vectors.npy.*mismatch"):
        load_sequential(copy, model_id, row.artifacts)
    unrecorded = {k: v for k, v in row.artifacts.items() if k != "encoder.onnx"}
    with pytest.raises(ArtifactIntegrityError, match="encoder.onnx.*no recorded checksum"):
        load_sequential(store, model_id, unrecorded)


def test_holdout_evaluation_scores_the_sequential_model(pipeline):
    from recsys.evaluation.gate import evaluate_candidate

    metrics = evaluate_candidate(pipeline["engine"], pipeline["store"], LAST_DAY, pipeline["model_id"])
    assert metrics["new"]["users"] == metrics["popularity"]["users"] > 0
    assert 0 < metrics["new"]["ndcg@10"] <= 1 and metrics["live"] is None  # it is the LIVE model itself


def test_precompute_writes_lists_with_their_sequence_and_reason(pipeline):
    from recsys.data.frames import load_signal_events as load_events
    from recsys.data.sequences import newest_first, sequence_key
    from recsys.timeutil import day_bounds_ms

    lists = _user_lists(pipeline["redis"])
    assert pipeline["precomputed"]["users"] == len(lists) > 0
    user, payload = sorted(lists.items())[0]
    events = load_events(pipeline["engine"], 0, day_bounds_ms(LAST_DAY)[1], [user])
    sequence = newest_first(events["product_id"].tolist())
    assert payload["model_version"] == pipeline["model_id"] and payload["seq"] == sequence_key(sequence)
    with pipeline["engine"].connect() as conn:
        from sqlalchemy import text

        name = conn.execute(text("SELECT name FROM products WHERE product_id = :p"), {"p": sequence[0]}).scalar()
    assert set(payload["reasons"]) == {f"Because you just viewed {name}"}


async def test_a_click_changes_the_very_next_answer_and_a_hit_runs_no_model(pipeline, api, monkeypatch):
    from recsys.families.sequential import scoring

    calls = []
    real = scoring.score_next
    monkeypatch.setattr(scoring, "score_next", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    lists = _user_lists(pipeline["redis"])
    user = sorted(lists)[0]
    first = await _recs(api, user)
    assert first["source"] == "personalized" and first["model_version"] == pipeline["model_id"]
    assert calls == []  # the precomputed list was made for this very sequence: a cache hit, no model run

    with pipeline["engine"].connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT product_id, name FROM products ORDER BY product_id")).all()
    shown = {i["product_id"] for i in first["items"]}
    clicked, name = next((p, n) for p, n in rows if p not in shown and str(p) != lists[user]["seq"].split(",")[0])
    r = await api.post("/events/click", json={"user_id": user, "product_id": clicked, "timestamp": now_ms()})
    assert r.json()["status"] == "logged"
    second = await _recs(api, user)
    assert calls and calls[-1][-1] == clicked  # the encoder read the sequence ending with the click
    assert second["source"] == "personalized" and second["model_version"] == pipeline["model_id"]
    assert [i["product_id"] for i in second["items"]] != [i["product_id"] for i in first["items"]]
    assert f"Because you just viewed {name}" in {i["reason"] for i in second["items"]}
    stored = json.loads(pipeline["redis"].get(recs_key(user)))
    assert stored["seq"].split(",")[0] == str(clicked)

    runs = len(calls)
    third = await _recs(api, user)  # nothing happened since: the list just written is a hit
    assert len(calls) == runs
    assert [(i["product_id"], i["reason"]) for i in third["items"]] == [(i["product_id"], i["reason"])
                                                                       for i in second["items"]]
    # that hit wrote its final answer back (as a hybrid hit does): the next request is sent from it, the same items
    await api.app.state.serving.redis.flush_buffer()
    assert pipeline["redis"].exists(answer_key(user))
    fourth = await _recs(api, user)
    assert len(calls) == runs and fourth["items"] == third["items"]


async def _recs(api, user: int) -> dict:
    r = await api.get("/recommendations", params={"user_id": user, "num_items": 10})
    assert r.status_code == 200, r.text
    return r.json()
