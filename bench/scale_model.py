"""The scale model: unit costs measured by the benchmarks, extrapolated to 100M users x 10M products.

``python -m bench.scale_model`` reads ``bench/results/*.json`` and writes ``bench/SCALE.md``
(numbers computed here, the reasoning in ``bench/scale_text.py``). Pure arithmetic over
the results: ``model(results)`` returns every derived figure, so each is traceable.
"""

from __future__ import annotations

import math
import sys

from bench.common import BENCH_DIR
from bench.report_format import load_results

USERS, PRODUCTS = 100_000_000, 10_000_000
TARGET_RPS = 100_000
API_UTILISATION = 0.7  # run API nodes at 70% of their measured capacity
REDIS_SHARD_BYTES = 25 * 2**30  # data per Redis primary (a 32 GiB node with headroom for fork/replication)
PRECOMPUTE_WINDOW_HOURS = 2.0  # of the nightly run's 4-hour deadline
MIN_RECALL = 0.95
PAIRS_PER_USER = 14  # distinct (user, product) pairs per user over 30 days in the synthetic shop
SCORE_BYTES_PER_PRODUCT = 28  # one on-the-fly score: float32 scores, float64 copy, its negation, int64 argpartition


def dict_bytes_per_entry(n: int = 200_000) -> float:
    """Python memory of an ``{int: int}`` id index (the API's user_index), per entry, measured."""
    import tracemalloc

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = {i + 10**9: i for i in range(n)}
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del index
    return used / n


def api_memory(r: dict) -> dict | None:
    """API node memory at USERS x PRODUCTS from bench 1b: per-user bytes measured (RSS slope between two sizes),
    the rest from the file layout and the scoring code path; None without its results."""
    a = r.get("api_memory")
    if not a or not a.get("bytes_per_user"):
        return None
    big, dim = max(a["sizes"], key=lambda x: x["users"]), a["dim"]
    old_per_product = dim * 4 + (dim - 1) * 4 + 8 + dict_bytes_per_entry()  # vectors, normalised copy, id, dict
    workers = r["serving"]["chosen_config"]["workers"] if "serving" in r else 3
    new, old = big["new"], big["old"]
    private = new["first"]["anon"]["median"]
    transient = PRODUCTS * SCORE_BYTES_PER_PRODUCT
    item_side = PRODUCTS * (dim * 4 + 8 + 4)
    return {"dim": dim, "users": big["users"], "products": big["products"], "lookups": a["lookups"],
            "old_rss": old["first"]["rss"]["median"],
            "old_second_rss": old["second"]["rss"]["median"] if old["second"] else None,
            "old_node_pss": (old.get("node_pss_two_workers") or {}).get("median"),
            "new_rss": new["first"]["rss"]["median"], "new_private": private, "new_pss": new["first"]["pss"]["median"],
            "new_second_rss": new["second"]["rss"]["median"], "new_second_pss": new["second"]["pss"]["median"],
            "new_node_pss": new["node_pss_two_workers"]["median"],
            "old_bytes_per_user": a["bytes_per_user"]["old"]["rss"], "old_bytes_per_product": old_per_product,
            "new_private_bytes_per_user": a["bytes_per_user"]["new"]["anon"],
            "old_worker_bytes": USERS * a["bytes_per_user"]["old"]["rss"] + PRODUCTS * old_per_product,
            "workers": workers, "score_transient_bytes": transient, "item_side_bytes": item_side,
            "user_file_bytes": USERS * (dim * 4 + 8),
            "node_bytes": item_side + workers * (private + transient)}


def _ivf_choice(ann: dict) -> dict:
    rows = ann["ivf"]["nprobe"]
    ok = [r for r in rows if r["recall_at_10"] >= MIN_RECALL]
    return min(ok, key=lambda r: r["nprobe"]) if ok else max(rows, key=lambda r: r["recall_at_10"])


def _lists_overhead(pre: dict) -> float:
    """Seconds per user that precompute spends after scoring (re-ranking, Candidates, reasons): lists minus the
    candidate selection it runs (``fused_top``; ``score_top`` in results from before the fused top-k)."""
    row = min(pre["sizes"], key=lambda r: r["products"])
    top = "fused_top" if "fused_top" in row["users_per_s"] else "score_top"
    return max(0.0, 1 / row["users_per_s"]["lists"]["median"] - 1 / row["users_per_s"][top]["median"])


def _machine_note(pre: dict, ann: dict) -> dict | None:
    """How bench 2 ran, when not on the machine (CPU flags, platform) of bench 2b: its unit costs are then mixed
    with costs from another machine."""
    a, b = pre.get("machine") or {}, ann.get("machine") or {}
    if (a.get("cpu_flags"), a.get("platform")) == (b.get("cpu_flags"), b.get("platform")):
        return None
    blas = (pre.get("reference") or {}).get("blas") or [{}]
    return {"flags": a.get("cpu_flags"), "blas_kernel": blas[0].get("architecture"),
            "load": a.get("loadavg_1_5_15") or [], "gflops": min(x["numpy_gflops"] for x in pre["sizes"])}


def _fused_over_old(pre: dict) -> float | None:
    """Fused top-k / the previous argpartition selection at the largest catalogue of bench 2 (same run)."""
    big = max(pre["sizes"], key=lambda x: x["products"])
    rates = big["users_per_s"]
    if "fused_top" not in rates:
        return None
    return rates["fused_top"]["median"] / rates["score_top"]["median"]


def shards(per_user_seconds: float, workers: int, imbalance: float = 1.0) -> dict:
    """The nightly fan-out at USERS: ``RECSYS_PRECOMPUTE_SHARDS`` (at least one shard per worker, a power of two)
    and the slowest shard's cost on one worker: USERS / count users at ``per_user_seconds`` each, times
    ``imbalance`` (the slowest shard's time over the mean shard's)."""
    count = 1 << max(0, math.ceil(math.log2(max(workers, 1))))
    return {"count": count, "users_per_shard": USERS // count, "imbalance": imbalance,
            "hours_per_shard": USERS / count * per_user_seconds * imbalance / 3600}


def measured_shards(sh: dict, ivf_users_per_s: float) -> dict:
    """Bench 2c's measured per-shard cost carried to USERS x PRODUCTS: its cost per user (the real
    ``precompute_shard`` calls, their fixed cost per call taken off) with its own candidate selection (at its
    catalogue, timed in the same run) replaced by the IVF index's at PRODUCTS, times its measured imbalance;
    the workers a PRECOMPUTE_WINDOW_HOURS window needs at that cost. Linear extrapolation from one size."""
    per_user = sh["fan_out"]["seconds_per_user"]
    select = sh["selection"]["seconds_per_user"]
    rest = max(0.0, per_user - select)
    at_scale = rest + 1 / ivf_users_per_s
    imbalance = sh["balance"]["max_over_mean"]
    workers = math.ceil(USERS * at_scale * imbalance / 3600 / PRECOMPUTE_WINDOW_HOURS)
    active = sh["setup_seconds"]["active_users"]["median"]
    fan = shards(at_scale, workers, imbalance)
    return {**fan, "workers": workers, "bench_shards": sh["shards"],
            "shop_users": sh["whole"]["users"], "shop_products": sh["selection"]["products"],
            "median_seconds": sh["balance"]["median_seconds"], "median_users_per_s": sh["balance"]["median_users_per_s"],
            "users_max_over_mean": sh["balance"]["users_max_over_mean"], "sum_over_whole": sh["sum_over_whole"],
            "fixed_seconds_per_call": sh["fan_out"]["fixed_seconds_per_call"],
            "measured_seconds_per_user": per_user, "selection_seconds_per_user": select,
            "rest_seconds_per_user": rest, "seconds_per_user": at_scale,
            "hours_per_shard_at_shop_catalogue": fan["users_per_shard"] * per_user * imbalance / 3600,
            "active_users_seconds": active,
            "active_users_hours_at_users": active * USERS / sh["whole"]["users"] / 3600}


def memory(r: dict) -> dict:
    dim = r["precompute"]["sizes"][0]["dim"]
    sim = r["scale_simulation"]["measured"]
    per_user = sim["redis_bytes_per_user"]
    return {"dim": dim, "user_vectors_bytes": USERS * dim * 4, "item_vectors_bytes": PRODUCTS * dim * 4,
            "ivf_bytes": PRODUCTS * (dim * 4 + 8), "hnsw_links_bytes": PRODUCTS * 32 * 2 * 4,
            "dict_bytes_per_entry": dict_bytes_per_entry(),
            "redis_bytes_per_user": per_user, "redis_bytes": USERS * per_user,
            "redis_shards_memory": math.ceil(USERS * per_user / REDIS_SHARD_BYTES)}


def precompute(r: dict) -> dict:
    ann, sim = r["ann"], r["scale_simulation"]["measured"]
    ivf = _ivf_choice(ann)
    post = _lists_overhead(r["precompute"])
    write = sim["write_seconds"] / sim["users"]
    exact = ann["exact"]["exact"]["median"]
    ivf_rate = ivf["users_per_s"]["median"]
    nightly = max((r.get("nightly") or {}).get("sizes") or [{}], key=lambda x: x.get("recs_keys", 0))
    dag_rate = (nightly["recs_keys"] / nightly["task_seconds"]["precompute"]
                if nightly.get("task_seconds", {}).get("precompute") else None)
    exact_1m = next((x["users_per_s"]["lists"]["median"] for x in r["precompute"]["sizes"]
                     if x["products"] == 1_000_000), None)
    per_user_ann = 1 / ivf_rate + post + write
    per_user_exact = 1 / exact + post + write
    hours_ann = USERS * per_user_ann / 3600
    return {"exact_users_per_s": exact, "exact_hours_per_worker": USERS * per_user_exact / 3600,
            "ivf": ivf, "ivf_users_per_s": ivf_rate, "post_seconds_per_user": post, "write_seconds_per_user": write,
            "ann_users_per_s": 1 / per_user_ann, "ann_hours_per_worker": hours_ann,
            "workers_for_window": math.ceil(hours_ann / PRECOMPUTE_WINDOW_HOURS),
            "shards": shards(per_user_ann, math.ceil(hours_ann / PRECOMPUTE_WINDOW_HOURS)),
            "measured_shards": measured_shards(r["shards"], ivf_rate) if r.get("shards") else None,
            "machine_note": _machine_note(r["precompute"], ann),
            "fused_over_old_1m": _fused_over_old(r["precompute"]),
            "ivf_build_seconds": ann["ivf"]["build_seconds"], "ann_products": ann["products"],
            "worst_case": ann.get("ivf_gaussian_worst_case"), "dag_users_per_s": dag_rate,
            "dag_users": nightly.get("recs_keys"), "dag_products": (nightly.get("shop") or {}).get("products"),
            "lists_1m_users_per_s": exact_1m}


def serving(r: dict) -> dict:
    s = r["serving"]["side_by_side"]
    hit, trivial, rget = s["hit"]["rps"]["median"], s["trivial"]["rps"]["median"], s["redis_get"]["rps"]["median"]
    # one pipelined round trip of 4 commands per request: MGET of recs, cached answer, A/B assignment and
    # counter, HGETALL of the session, the API key's token-bucket script (HMGET, HSET, PEXPIRE of one hash)
    # and the XADD of the previous answer's impression; counted as one GET per key operation (4+1+3+1 = 9)
    key_operations = 9
    profile = r["serving"].get("profile_hit") or {}
    areas = sorted((profile.get("profiled_share_by_area") or {}).items(), key=lambda kv: -kv[1])
    return {"hit_rps": hit, "trivial_rps": trivial, "redis_get_rps": rget,
            "p99_ms": s["hit"]["p99_ms"]["median"], "nodes": math.ceil(TARGET_RPS / (hit * API_UTILISATION)),
            "nodes_if_trivial": math.ceil(TARGET_RPS / (trivial * API_UTILISATION)),
            "redis_key_operations": key_operations, "redis_commands_per_s": TARGET_RPS * key_operations,
            "redis_shards_throughput": math.ceil(TARGET_RPS * key_operations / (rget * API_UTILISATION)),
            "workers": r["serving"]["chosen_config"]["workers"],
            "in_process_ms": profile.get("mean_ms_per_call_uvloop") or profile.get("mean_ms_per_call_unprofiled"),
            "profile_areas": areas[:3]}


def training(r: dict) -> dict:
    rows = [x for x in r["training"]["sizes"] if x["threads"] == max(y["threads"] for y in r["training"]["sizes"])]
    big = max(rows, key=lambda x: x["interactions"])
    per = big["epoch_seconds"]["median"] / big["interactions"]
    interactions = USERS * PAIRS_PER_USER
    one = [x for x in r["training"]["sizes"] if x["threads"] == 1]
    speedup = None
    if one:
        o = max(one, key=lambda x: x["interactions"])
        same = next((x for x in rows if x["interactions"] == o["interactions"]), None)
        if same:
            speedup = o["epoch_seconds"]["median"] / same["epoch_seconds"]["median"]
    return {"measured_interactions": big["interactions"], "threads": big["threads"],
            "seconds_per_epoch": big["epoch_seconds"]["median"], "interactions": interactions,
            "epoch_hours": interactions * per / 3600, "thread_speedup_1_to_2": speedup}


def model(results: dict) -> dict:
    missing = [n for n in ("precompute", "ann", "serving", "scale_simulation", "training") if n not in results]
    if missing:
        raise SystemExit(f"bench/results lacks {missing}: run those benchmarks first")
    return {"memory": memory(results), "api_memory": api_memory(results), "precompute": precompute(results),
            "serving": serving(results), "training": training(results), "simulation": results["scale_simulation"],
            "ingest": results.get("ingest"), "nightly": results.get("nightly")}


def main() -> None:
    from bench.scale_text import render

    m = model(load_results())
    (BENCH_DIR / "SCALE.md").write_text(render(m))
    print("wrote bench/SCALE.md", file=sys.stderr)


if __name__ == "__main__":
    main()
