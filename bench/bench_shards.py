"""Precompute's fan-out measured: the real ``precompute_shard`` for every user-hash shard of a served shop.

A synthetic shop is loaded into a throw-away PostgreSQL database and served
(``fixtures.serve_ready_shop``: a LIVE model, every list precomputed). Then, in each
repeat, one after another:
- ``shards``: ``precompute.precompute_shard(engine, store, redis, day, shard)`` for every
  shard ``0 .. --shards - 1``, as the nightly DAG's mapped tasks call it (each call loads
  the model and catalogue, reads the active users, then reads its users' history,
  scores, re-ranks and writes their keys to Redis), each call timed;
- ``whole``: the same function with one shard (``RECSYS_PRECOMPUTE_SHARDS=1``): every
  user in one call, one model load;
- ``setup``: what every shard repeats before its users, alone: ``Scorer.load`` and
  ``active_users``;
- ``selection``: the in-core candidate selection (``topk.fused_top``, no seen mask) of every
  active user's vector against the same item vectors, so that the scale model can swap
  this catalogue's selection for the ANN index's at 10M products.
Reported per shard: users, seconds, users/s; across shards (per-shard medians over the
repeats): median, max/min and max/mean (the balance), the sum against the whole run,
and from the two the fixed cost of a call and the cost of each user (``fan_out_cost``).

``python -m bench.bench_shards [--users 50000] [--products 5000] [--shards 8] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import log, machine, quick, summary, write_result
from bench.fixtures import bench_database, bench_redis, serve_ready_shop
from recsys.artifacts import LocalArtifactStore
from recsys.clients import make_engine
from recsys.constants import COL_USER
from recsys.families import servable_users
from recsys.pipeline.precompute import CANDIDATE_FACTOR, Scorer, active_users, precompute_shard
from recsys.ranking.topk import fused_top
from recsys.settings import Settings


def balance(seconds: list[float], users: list[int]) -> dict:
    """How evenly ``len(seconds)`` shards share the work: their seconds and users (same order) summarised."""
    if not seconds or len(seconds) != len(users) or min(users) < 1:
        raise ValueError("one time and a positive user count per shard are needed")
    mean_s, mean_u = statistics.fmean(seconds), statistics.fmean(users)
    return {"shards": len(seconds), "median_seconds": statistics.median(seconds), "sum_seconds": sum(seconds),
            "max_over_min": max(seconds) / min(seconds), "max_over_mean": max(seconds) / mean_s,
            "users_max_over_mean": max(users) / mean_u,
            "median_users_per_s": statistics.median(u / s for u, s in zip(users, seconds)),
            "seconds_per_user": sum(seconds) / sum(users)}


def fan_out_cost(sum_seconds: float, whole_seconds: float, shards: int, users: int) -> dict:
    """What a call costs whatever its users, and what each user costs, from ``shards`` calls (``sum_seconds``)
    and one call for all ``users`` (``whole_seconds``): sum = shards x fixed + users x per_user,
    whole = fixed + users x per_user."""
    if shards < 2 or users < 1:
        raise ValueError("at least two shards and one user are needed to split fixed and per-user costs")
    fixed = (sum_seconds - whole_seconds) / (shards - 1)
    return {"fixed_seconds_per_call": fixed, "seconds_per_user": (whole_seconds - fixed) / users}


def timed_shards(engine, store, redis, day, settings: Settings, shards: int) -> list[dict]:
    """``precompute_shard`` for shards ``0 .. shards - 1`` with ``RECSYS_PRECOMPUTE_SHARDS=shards``, each timed."""
    s = settings.model_copy(update={"precompute_shards": shards})
    out = []
    for shard in range(shards):
        start = time.perf_counter()
        res = precompute_shard(engine, store, redis, day, shard, settings=s)
        out.append({"shard": shard, "users": res["users"], "seconds": time.perf_counter() - start})
    return out


def timed_setup(engine, store, day, settings: Settings) -> dict:
    """Seconds of a shard's set-up: the model and catalogue load, the read of every active user."""
    start = time.perf_counter()
    Scorer.load(engine, store, day, None, settings)
    loaded = time.perf_counter()
    active_users(engine, day, settings.active_days, settings)
    return {"scorer_load": loaded - start, "active_users": time.perf_counter() - loaded}


def selection_blocks(engine, store, day, settings: Settings) -> tuple[Scorer, list[np.ndarray]]:
    """The LIVE scorer and its active users' vectors in precompute's blocks."""
    scorer = Scorer.load(engine, store, day, None, settings)
    users = servable_users(scorer.family, scorer.model, active_users(engine, day, settings.active_days, settings),
                           COL_USER)
    step = settings.precompute_block_size
    blocks = [users.iloc[i : i + step] for i in range(0, len(users), step)]
    return scorer, [scorer.scorer.block(b, b.set_index(COL_USER)["value_segment"]) for b in blocks]


def timed_selection(scorer: Scorer, blocks: list[np.ndarray]) -> float:
    s, none = scorer.settings, np.zeros(0, dtype=np.int64)
    start = time.perf_counter()
    for vectors in blocks:
        fused_top(vectors, scorer.item_vectors, CANDIDATE_FACTOR * s.recs_per_user, none, none,
                  tile_bytes=s.precompute_tile_mb * 2**20, threads=s.precompute_threads)
    return time.perf_counter() - start


def measure(url: str, artifact_dir: str, redis, day, settings: Settings, shards: int, repeats: int) -> dict:
    engine, store = make_engine(url), LocalArtifactStore(artifact_dir)
    scorer, blocks = selection_blocks(engine, store, day, settings)
    if not scorer.has_vectors:
        raise SystemExit(f"the LIVE model ({scorer.family.name}) has no vectors: no fused selection to time")
    n_selected = sum(len(b) for b in blocks)
    runs: dict[str, list] = {"shards": [], "whole": [], "scorer_load": [], "active_users": [], "selection": []}
    for r in range(repeats):
        runs["shards"].append(timed_shards(engine, store, redis, day, settings, shards))
        runs["whole"].append(timed_shards(engine, store, redis, day, settings, 1)[0])
        for name, secs in timed_setup(engine, store, day, settings).items():
            runs[name].append(secs)
        runs["selection"].append(timed_selection(scorer, blocks))
        log(f"repeat {r + 1}/{repeats}: shards {sum(x['seconds'] for x in runs['shards'][-1]):.1f}s, whole "
            f"{runs['whole'][-1]['seconds']:.1f}s, selection {runs['selection'][-1]:.2f}s")
    engine.dispose()
    per_shard = [{"shard": k, "users": runs["shards"][0][k]["users"],
                  "seconds": summary([rep[k]["seconds"] for rep in runs["shards"]])} for k in range(shards)]
    for row in per_shard:
        row["users_per_s"] = row["users"] / row["seconds"]["median"]
    whole = {"users": runs["whole"][0]["users"], "seconds": summary([x["seconds"] for x in runs["whole"]])}
    bal = balance([r["seconds"]["median"] for r in per_shard], [r["users"] for r in per_shard])
    return {"per_shard": per_shard, "whole": whole, "balance": bal,
            "sum_over_whole": bal["sum_seconds"] / whole["seconds"]["median"],
            "fan_out": fan_out_cost(bal["sum_seconds"], whole["seconds"]["median"], shards, whole["users"]),
            "setup_seconds": {"scorer_load": summary(runs["scorer_load"]),
                              "active_users": summary(runs["active_users"])},
            "selection": {"users": n_selected, "seconds": summary(runs["selection"]),
                          "seconds_per_user": statistics.median(runs["selection"]) / n_selected,
                          "products": int(scorer.item_vectors.shape[0]), "dim": int(scorer.item_vectors.shape[1])}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000 if quick() else 50_000)
    parser.add_argument("--products", type=int, default=2_000 if quick() else 5_000)
    parser.add_argument("--shards", type=int, default=4 if quick() else 8)
    parser.add_argument("--repeats", type=int, default=2 if quick() else 3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.shards < 2:
        parser.error("--shards must be at least 2 (the sum of the shards is compared with one whole run)")
    started, info, settings = time.perf_counter(), machine(), Settings()
    with tempfile.TemporaryDirectory(prefix="recsys-bench-shards-") as tmp, bench_database("shards") as url, \
            bench_redis() as redis:
        shop = serve_ready_shop(url, redis, str(Path(tmp) / "artifacts"), n_users=args.users,
                                n_products=args.products, seed=args.seed)
        out = measure(url, shop.artifact_dir, redis, shop.day, settings, args.shards, args.repeats)
    b = out["balance"]
    log(f"{args.shards} shards: median {b['median_seconds']:.2f}s, {b['median_users_per_s']:.0f} users/s, "
        f"max/mean {b['max_over_mean']:.3f}, sum/whole {out['sum_over_whole']:.3f}")
    write_result("shards", {"machine": info, "shop": {"users": shop.users, "products": shop.products,
                                                     "events": shop.events, "seconds": shop.seconds},
                            "shards": args.shards, "repeats": args.repeats, **out,
                            "settings": {"block": settings.precompute_block_size,
                                         "tile_mb": settings.precompute_tile_mb,
                                         "threads": settings.precompute_threads, "active_days": settings.active_days,
                                         "recs_per_user": settings.recs_per_user}},
                 started, "python -m bench.bench_shards " + " ".join(argv or []))


if __name__ == "__main__":
    main()
