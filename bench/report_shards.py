"""The ``bench/README.md`` section on precompute's fan-out (``bench/results/shards.json``, bench 2c)."""

from __future__ import annotations

from bench.report_format import med, num, sig, table


def shards_headline(r: dict) -> str:
    b = r["balance"]
    return (f"- **Precompute per shard** ({r['shards']} shards of a shop of {num(r['whole']['users'])} users x "
            f"{num(r['shop']['products'])} products): {sig(b['median_seconds'])} s per shard (median), "
            f"{num(b['median_users_per_s'])} users/s, slowest / mean {sig(b['max_over_mean'])}; all shards "
            f"{sig(r['sum_over_whole'])}x one call for every user.")


def shards(r: dict) -> str:
    b, fan, setup, sel = r["balance"], r["fan_out"], r["setup_seconds"], r["selection"]
    rows = [[x["shard"], num(x["users"]), med(x["seconds"]), sig(x["users_per_s"])] for x in r["per_shard"]]
    whole = r["whole"]
    summary = [["median seconds per shard", sig(b["median_seconds"])],
               ["median users/s per shard", num(b["median_users_per_s"])],
               ["slowest / fastest shard (time)", sig(b["max_over_min"])],
               ["slowest / mean shard (time)", sig(b["max_over_mean"])],
               ["largest / mean shard (users)", sig(b["users_max_over_mean"])],
               [f"sum of the {r['shards']} shards, s", sig(b["sum_seconds"])],
               [f"one call for all {num(whole['users'])} users, s", med(whole["seconds"])],
               ["sum / one call", sig(r["sum_over_whole"])],
               ["fixed cost per call, s (from the two)", sig(fan["fixed_seconds_per_call"])],
               ["model + catalogue load alone, s", med(setup["scorer_load"])],
               ["reading every active user alone, s", med(setup["active_users"])],
               ["ms per user (besides the fixed cost)", sig(fan["seconds_per_user"] * 1e3)],
               ["ms per user, all in (sum of the shards / users)", sig(b["seconds_per_user"] * 1e3)],
               [f"candidate selection at {num(sel['products'])} products alone, ms per user",
                sig(sel["seconds_per_user"] * 1e3)]]
    shop = r["shop"]
    return "\n\n".join([
        "## 2c. Precompute fan-out: the cost of each shard",
        f"Shop: {num(shop['users'])} users, {num(shop['products'])} products, {num(shop['events'])} events, served "
        f"(a LIVE model, lists precomputed). Per repeat ({r['repeats']}), one after another: the real "
        f"`precompute_shard(engine, store, redis, day, shard)` for each of {r['shards']} user-hash shards, as the "
        "nightly DAG's mapped tasks call it (each call loads the model and catalogue, reads the active users, then "
        "reads its users' history, scores, re-ranks and writes their keys to Redis); the same function with one "
        "shard (every user in one call); a shard's set-up alone; the candidate selection (`fused_top`) of every "
        f"user alone. Blocks of {r['settings']['block']} users, {r['settings']['threads']} scoring threads. "
        "Seconds per shard: median (min–max) over the repeats; the balance is over the shards' medians.",
        table(["shard", "users", "seconds", "users/s"], rows), table(["", ""], summary),
        "The fixed cost per call and the per-user cost come from the sum of the shards and the one call "
        "(sum = shards x fixed + users x per user; one call = fixed + users x per user). `bench/SCALE.md` "
        "carries the per-user cost, with the IVF selection in place of this catalogue's, to 100M users."])
