"""Helpers of the A/B tests: a small catalog, registry rows with embeddings, ASGI clients, traffic."""

from __future__ import annotations

from asgi_client import TEST_REQUEST_ID_SECRET, open_client  # noqa: F401  (open_client: re-exported for the tests)

import datetime as dt
import json
import os
import time

import numpy as np
from sqlalchemy import insert

from recsys.artifacts import model_key
from recsys.keys import KEY_CATEGORIES, KEY_NEW_ARRIVALS, KEY_TRENDING
from recsys.serving.assignment import assign_arm
from recsys.abtest.request_ids import RequestIdSigner
from recsys.db.models import ABImpression, Product, RecommendationModel, UserEvent
from recsys.families.vectors.files import publish_arrays

REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TOKEN = "s3cret-admin-token-0123456789"
N_ITEMS = 40
ITEMS = list(range(1, N_ITEMS + 1))
USERS = list(range(1, 301))
CATS = ("Home", "Books", "Shoes", "Toys")
SIGNER = RequestIdSigner(TEST_REQUEST_ID_SECRET)  # the secret of every Settings of the suite (tests/conftest.py)


def now_ms() -> int:
    return int(time.time() * 1000)


def catalog(engine) -> None:
    old = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Product), [
            {"product_id": p, "name": f"item {p}", "category": CATS[p % len(CATS)], "price": 10.0 + p,
             "margin": 0.1, "in_stock": True, "created_at": old, "last_updated_at": old} for p in ITEMS])


def write_trending(redis_client) -> None:
    ranked = json.dumps({"products": ITEMS[:20], "scores": [20.0 - i for i in range(20)],
                         "popularity": [100 - i for i in range(20)], "updated_at": "2026-11-27T00:00:00+00:00"})
    redis_client.set(KEY_TRENDING, ranked)
    redis_client.set(KEY_NEW_ARRIVALS, json.dumps({"products": [], "scores": [], "popularity": [],
                                                   "updated_at": "2026-11-27T00:00:00+00:00"}))
    redis_client.set(KEY_CATEGORIES, json.dumps(list(CATS)))


def embeddings(prefer_low_ids: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every user prefers low product ids (``prefer_low_ids``) or high ones: two clearly different models."""
    item = np.array([[(-p if prefer_low_ids else p) / N_ITEMS, 0.0, 0.0, 0.0] for p in ITEMS], dtype=np.float32)
    users = np.tile(np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32), (len(USERS), 1))
    return users, item


def register(engine, store, model_id: str, status: str, version: int, prefer_low_ids: bool,
             metrics: dict | None = None) -> None:
    """A registry row and the embedding files publish leaves (what serving and A/B need)."""
    users, items = embeddings(prefer_low_ids)
    checksums = publish_arrays(store, model_id, USERS, users, ITEMS, items)
    with engine.begin() as conn:
        conn.execute(insert(RecommendationModel), [{
            "model_id": model_id, "model_type": "HYBRID", "version": version, "artifacts": checksums, "train_date": dt.date(2026, 11, 26),
            "metrics": metrics or {"new": {"ndcg@10": 0.2}}, "params": {}, "status": status,
            "training_samples_count": 10, "artifact_uri": store.uri(model_key(model_id, "")),
            "created_at": dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.timezone.utc),
            "promoted_at": dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.timezone.utc) if status == "LIVE" else None}])




def auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def start(client, treatment="m-treat", control="m-control", fraction=0.5, hours=24.0):
    return await client.post("/models/ab-test", headers=auth(), json={
        "treatment_model_id": treatment, "control_model_id": control, "duration_hours": hours,
        "treatment_fraction": fraction})


def seed_traffic(engine, test: dict, per_arm: int, ctr: dict[str, float], at: dt.datetime | None = None) -> dict:
    """One impression per user, ``ctr[arm]`` of them clicked (by request id) and bought."""
    at = at or test["start_at"]
    users = {"control": [], "treatment": []}
    uid = 0
    while min(len(v) for v in users.values()) < per_arm:
        uid += 1
        arm = assign_arm(test["test_id"], uid, test["treatment_fraction"])
        if len(users[arm]) < per_arm:
            users[arm].append(uid)
    imps, events = [], []
    for arm, ids in users.items():
        clicked = round(ctr[arm] * per_arm)
        for k, user in enumerate(ids):
            ts = int(at.timestamp() * 1000) + 60_000 + k
            rid = SIGNER.new()  # what the API issues
            imps.append({"impression_id": f"{ts}-{user}", "request_id": rid, "user_id": user,
                         "timestamp": ts, "test_id": test["test_id"], "arm": arm,
                         "model_id": test[f"{arm}_model_id"], "source": "personalized", "products": [1, 2, 3]})
            if k < clicked:
                events.append({"user_id": user, "product_id": 2, "event_type": "CLICK", "timestamp": ts + 5_000, "price": None,
                               "request_id": rid})
                events.append({"user_id": user, "product_id": 2, "event_type": "PURCHASE", "timestamp": ts + 9_000,
                               "price": 12.0, "request_id": None})
    with engine.begin() as conn:
        conn.execute(insert(ABImpression), imps)
        conn.execute(insert(UserEvent), events)
    return users
