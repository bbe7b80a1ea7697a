"""The scaled-down simulation that checks the scale model: many users through precompute into Redis.

One precompute worker's loop for LIVE lists (``score_users`` without its database
reads): per block of users, ``_user_lists`` (score, top candidates, stock and
diversity re-ranking, reasons), then ``recs:{user_id}`` and ``embedding:{user_id}``
written with pipelined SETs into Redis DB 10. Before the run the time and Redis
memory are predicted from unit costs (the lists rate of ``bench/results/precompute.json``
at this catalogue size, or a calibration block; the write cost and bytes per user of a
calibration block); after it, the prediction is compared with what was measured.
Time-boxed by ``--max-seconds``: if the users do not fit, the number done is reported.

``python -m bench.bench_scale [--users 1000000] [--products 10000] [--max-seconds 600]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time

import pandas as pd
import psutil

from bench import vectors
from bench.bench_precompute import block_size, make_scorer
from bench.common import RESULTS_DIR, log, machine, quick, write_result
from bench.fixtures import bench_redis
from recsys.keys import KEY_RECS, KEY_USER_EMBEDDING
from recsys.pipeline.lists import write_json
from recsys.pipeline.precompute import _user_lists, embedding_payload, recs_payload
from recsys.settings import Settings

HISTORY = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "product_id": pd.Series(dtype="int64"),
                        "event_type": pd.Series(dtype=str)})


def run_block(scorer, redis, first_user: int, n: int, seed: int) -> tuple[float, float]:
    """Score and write users ``first_user .. first_user + n - 1``; returns (score seconds, write seconds)."""
    ids = list(range(first_user, first_user + n))
    vecs = vectors.user_vectors(n, scorer.item_vectors.shape[1], seed, offset=first_user)
    start = time.perf_counter()
    lists = _user_lists(scorer, pd.DataFrame({"user_id": ids}), vecs, HISTORY)
    scored = time.perf_counter()
    ttl, updated = scorer.settings.recs_ttl_seconds, dt.datetime.now(dt.timezone.utc).isoformat()
    write_json(redis, ((KEY_RECS.format(user_id=u), recs_payload(items, scorer.model_id, updated))
                       for u, items in zip(ids, lists)), ttl=ttl)
    write_json(redis, ((KEY_USER_EMBEDDING.format(user_id=u), embedding_payload(v, scorer.model_id))
                       for u, v in zip(ids, vecs)), ttl=ttl)
    return scored - start, time.perf_counter() - scored


def bytes_per_user(redis, ids: list[int]) -> float:
    keys = [k.format(user_id=u) for u in ids for k in (KEY_RECS, KEY_USER_EMBEDDING)]
    return sum(redis.memory_usage(k) or 0 for k in keys) / len(ids)


def lists_rate_from_results(n_products: int) -> float | None:
    path = RESULTS_DIR / "precompute.json"
    if not path.exists():
        return None
    for row in json.loads(path.read_text()).get("sizes", []):
        if row["products"] == n_products:
            return float(row["users_per_s"]["lists"]["median"])
    return None


def predict(scorer, redis, block: int, users: int, seed: int) -> dict:
    """Unit costs from a calibration block (written, then deleted) and the results file."""
    n = min(users, max(block, 4096))
    score_s = write_s = 0.0
    for start in range(0, n, block):
        s, w = run_block(scorer, redis, 1_000_000_000 + start, min(block, n - start), seed + 1)
        score_s, write_s = score_s + s, write_s + w
    per_user_bytes = bytes_per_user(redis, list(range(1_000_000_000, 1_000_000_000 + min(n, 500))))
    redis.flushdb()
    from_file = lists_rate_from_results(len(scorer.products))
    lists_rate = from_file or n / score_s
    per_user_s = 1 / lists_rate + write_s / n
    return {"lists_users_per_s": lists_rate, "lists_rate_source": "precompute.json" if from_file else "calibration",
            "write_seconds_per_user": write_s / n, "users_per_s": 1 / per_user_s, "seconds": users * per_user_s,
            "redis_bytes_per_user": per_user_bytes, "redis_bytes": per_user_bytes * users}


def simulate(scorer, redis, block: int, users: int, max_seconds: float, seed: int) -> dict:
    mem0 = redis.info("memory")["used_memory"]
    start, done, score_s, write_s = time.perf_counter(), 0, 0.0, 0.0
    while done < users and time.perf_counter() - start < max_seconds:
        n = min(block, users - done)
        s, w = run_block(scorer, redis, 1 + done, n, seed)
        done, score_s, write_s = done + n, score_s + s, write_s + w
        if done % (block * 50) < block:
            log(f"{done} users in {time.perf_counter() - start:.0f}s")
    wall = time.perf_counter() - start
    used = redis.info("memory")["used_memory"] - mem0
    return {"users": done, "complete": done == users, "seconds": wall, "users_per_s": done / wall,
            "score_seconds": score_s, "write_seconds": write_s, "redis_used_bytes": used,
            "redis_bytes_per_user": used / max(done, 1), "keys": redis.dbsize(),
            "process_rss_gib": psutil.Process().memory_info().rss / 2**30}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000 if quick() else 1_000_000)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=120 if quick() else 600)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started, info, settings = time.perf_counter(), machine(), Settings()
    scorer = make_scorer(args.products, settings, args.seed)
    block = block_size(args.products, settings.precompute_block_size)
    with bench_redis() as redis:
        predicted = predict(scorer, redis, block, args.users, args.seed)
        free = psutil.virtual_memory().available
        users = args.users if predicted["redis_bytes"] * 2 < free else int(free / 2 / predicted["redis_bytes_per_user"])
        if users < args.users:
            log(f"memory: {users} users instead of {args.users} (Redis needs {predicted['redis_bytes'] / 2**30:.1f} GiB)")
        log(f"predicted: {predicted['users_per_s']:.0f} users/s, {predicted['seconds']:.0f}s, "
            f"{predicted['redis_bytes'] / 2**30:.2f} GiB of Redis")
        measured = simulate(scorer, redis, block, users, args.max_seconds, args.seed)
    scale = measured["users"] / args.users
    check = {"time_ratio_measured_to_predicted": measured["seconds"] / (predicted["seconds"] * scale),
             "memory_ratio_measured_to_predicted": measured["redis_used_bytes"] / (predicted["redis_bytes"] * scale)}
    log(f"measured {measured['users']} users at {measured['users_per_s']:.0f} users/s; {check}")
    write_result("scale_simulation", {"machine": info, "products": args.products, "users_requested": args.users,
                                      "block_users": block, "predicted": predicted, "measured": measured,
                                      "check": check, "recs_per_user": settings.recs_per_user},
                 started, "python -m bench.bench_scale " + " ".join(argv or []))


if __name__ == "__main__":
    main()
