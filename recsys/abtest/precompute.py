"""Nightly lists for the arms of a running test: ``recs:{model_id}:{user_id}`` for the users that need them.

An arm whose model is the LIVE one is served from ``recs:{user_id}`` (precomputed
anyway); for an arm with another model, the active users of the precompute shard
(``segments.shard_of``) that the assignment hash puts in that arm get that model's list.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Engine

from recsys import registry
from recsys.abtest import store
from recsys.serving.assignment import arm_model, assign_arm
from recsys.artifacts import ArtifactStore
from recsys.constants import ARMS, COL_USER
from recsys.pipeline.precompute import Scorer, active_users, check_shard, score_users
from recsys.settings import DEFAULTS, Settings

log = logging.getLogger(__name__)


def arm_users(test: dict, user_ids: list[int]) -> dict[str, list[int]]:
    """The users of each arm (pure: the assignment hash)."""
    out: dict[str, list[int]] = {arm: [] for arm in ARMS}
    for uid in user_ids:
        out[assign_arm(test["test_id"], uid, test["treatment_fraction"])].append(uid)
    return out


def precompute_test_arms(engine: Engine, artifacts: ArtifactStore, redis, day: dt.date, shard: int,
                         settings: Settings = DEFAULTS) -> dict:
    """Write the non-LIVE arms' lists for the shard's active users of the running test."""
    shard = check_shard(shard, settings.precompute_shards)
    running = store.running_tests(engine)
    if not running:
        return {"test_id": None, "users": 0}
    test = running[0]
    live = registry.get_live(engine)
    users = active_users(engine, day, settings.active_days, settings)
    users = users[users["shard"] == shard].reset_index(drop=True)
    by_arm = arm_users(test, users[COL_USER].tolist())
    written = {}
    for model_id in dict.fromkeys(arm_model(test, arm) for arm in ARMS):
        if live is not None and model_id == live.model_id:
            continue
        ids = {uid for arm in ARMS if arm_model(test, arm) == model_id for uid in by_arm[arm]}
        scorer = Scorer.load(engine, artifacts, day, model_id, settings)
        written[model_id] = score_users(engine, redis, day, scorer,
                                        users[users[COL_USER].isin(ids)].reset_index(drop=True))
    log.info("A/B test %s, shard %d: arm lists %s", test["test_id"], shard, written)
    return {"test_id": test["test_id"], "shard": shard, "users": sum(written.values()), "models": written}
