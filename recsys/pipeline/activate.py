"""After a model became LIVE: its lists, precomputed into its own keys before the switch, become the LIVE
keys (``recs:<model>:{user}`` -> ``recs:{user}``, ``answer:<model>:{user}`` -> ``answer:{user}``), one
``RENAME`` per key, pipelined. A rename keeps the key's TTL and is atomic: a reader sees the previous
model's list or the new one. Both keys of a rename carry the user's hash tag, so they share a Redis Cluster
slot. A user the model wrote no list for (not active, or not servable) has nothing to rename.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Engine

from recsys import keys
from recsys.constants import COL_USER
from recsys.pipeline.precompute import active_users
from recsys.settings import Settings

CHUNK = 2000  # users per pipeline


def activate_users(redis, model_id: str, user_ids: Iterable[int]) -> int:
    """Rename the model's keys of ``user_ids`` onto the LIVE keys; returns the lists moved."""
    ids, moved = list(user_ids), 0
    for start in range(0, len(ids), CHUNK):
        pipe = redis.pipeline(transaction=False)
        for uid in ids[start:start + CHUNK]:
            for own, live in ((keys.recs_key(uid, model_id), keys.recs_key(uid)),
                              (keys.answer_key(uid, model_id), keys.answer_key(uid))):
                pipe.rename(own, live)
        replies = pipe.execute(raise_on_error=False)
        moved += sum(1 for r in replies[::2] if not isinstance(r, Exception))  # a missing key: nothing written
    return moved


def activate_shard(engine: Engine, redis, day: dt.date, model_id: str, shard: int, settings: Settings) -> dict:
    """The LIVE keys of the shard's active users from the model's own keys (after the switch)."""
    users = active_users(engine, day, settings.active_days, settings)
    ids = users.loc[users["shard"] == shard, COL_USER].tolist()
    return {"shard": shard, "model_id": model_id, "users": len(ids), "moved": activate_users(redis, model_id, ids)}
