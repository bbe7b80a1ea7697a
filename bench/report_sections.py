"""One Markdown section per benchmark result (tables of medians, spreads and ratios)."""

from __future__ import annotations

from bench.report_format import gib, med, num, pct, short_function, sig, table


def _lat(r: dict) -> list[str]:
    return [med(r["rps"]), med(r["p50_ms"]), med(r["p95_ms"]), med(r["p99_ms"]), num(r.get("errors", 0))]


def _plateau(sweep: list[dict]) -> str:
    best = sorted(sweep, key=lambda c: -c["hit"]["rps"]["median"])[:2]
    if len(best) < 2:
        return ""
    a, b = best
    gap = a["hit"]["rps"]["median"] / b["hit"]["rps"]["median"] - 1
    head = f"The two best settings ({a['workers']} and {b['workers']} worker(s)) are {pct(gap)} apart"
    if gap <= (a["hit"]["rps"]["spread"] or 0):
        return f"{head}, within the runs' spread ({pct(a['hit']['rps']['spread'])}): further server tuning stops paying."
    return f"{head}, more than the runs' spread ({pct(a['hit']['rps']['spread'])}): the best is kept."


def serving(r: dict) -> str:
    sbs, cfg = r["side_by_side"], r["chosen_config"]
    names = {"hit": "cache-hit `GET /recommendations` (Tier 1)", "trivial": "(a) trivial endpoint, same stack",
             "hit_baseline": f"cache hit, the baseline's API (commit {(r.get('baseline') or {}).get('git_commit')})",
             "category": "Tier 2 fallback (category bestsellers)",
             "trending_unknown": "Tier 3 fallback (trending; unknown user, seeded from the DB every request)",
             "redis_get": f"(b) `redis-benchmark` GET, {r['tiers']['recs_value_bytes']} B values, same Redis"}
    main_rows = [[names[k], *_lat(v)] for k, v in sbs.items() if isinstance(v, dict) and k in names]
    sweep = [[f"{c['workers']} x {c['loop']}/{c['http']}", med(c["hit"]["rps"]), med(c["trivial"]["rps"]),
              sig(c["ratio_to_trivial"]), med(c["hit"]["p99_ms"])] for c in r["config_sweep"]]
    conc = [[c, med(v["hit"]["rps"]), med(v["hit"]["p50_ms"]), med(v["hit"]["p95_ms"]), med(v["hit"]["p99_ms"]),
             med(v["trivial"]["rps"]), sig(v["ratio_to_trivial"])] for c, v in r["concurrency"].items()]
    enc = [[k, med(v["rps"]), med(v["p99_ms"])] for k, v in r["json_encoders"].items()]
    seq = [[k.replace("_", " "), sig(v["p50_ms"]), sig(v["p95_ms"]), sig(v["p99_ms"]), v["n"]]
           for k, v in r["sequential"].items()]
    prof = r.get("profile_hit") or {}
    areas = [[k, pct(v)] for k, v in (prof.get("profiled_share_by_area") or {}).items()]
    top = [[f"`{short_function(f['function'])}`", pct(f["share"]), sig(f["calls_per_request"])]
           for f in (prof.get("top_functions") or [])[:8]]
    shop = r["shop"]
    return "\n\n".join([
        "## 1. Serving",
        f"Shop: {num(shop['users'])} users, {num(shop['products'])} products, {num(shop['events'])} events, a LIVE "
        f"model and every active user's list precomputed in Redis DB 10 (as a nightly run leaves it). wrk "
        f"(one thread, {r['connections']} connections, {r['seconds_per_run']:g} s per run, {r['repeats']} runs "
        f"alternating between the targets) on the same 2 cores as the server and Redis. Tier users "
        f"(by the tier the API answered on their second request): "
        f"{', '.join(f'{k} {num(v)}' for k, v in r['tiers']['users'].items())}. Response "
        f"{r['tiers']['response_bytes']} B (10 items); cached list `recs:{{user_id}}` {r['tiers']['recs_value_bytes']} B.",
        f"Server settings kept (best cache-hit req/s of the sweep below): **{cfg['workers']} worker(s), "
        f"{cfg['loop']}, {cfg['http']}**. API measured: `recsys/api` + `recsys/serving` sources "
        f"{(r.get('api_source') or {}).get('sha256_16', '?')} (newest change "
        f"{(r.get('api_source') or {}).get('newest_change', '?')})"
        + ("; **the sources changed during the run: numbers mix two versions**." if r.get("api_changed_during_run")
           else ", unchanged during the run."),
        table(["target", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], main_rows),
        f"**Cache hit / trivial endpoint: {sig(sbs['ratio_hit_to_trivial'])}; cache hit / redis-benchmark GET: "
        f"{sig(sbs['ratio_hit_to_redis_get'])}.** (Medians with min–max over the runs.)",
        "### Server settings sweep (cache hit vs trivial, alternately)",
        table(["workers x loop/http", "hit req/s", "trivial req/s", "ratio", "hit p99 ms"], sweep),
        "The sweep keeps the settings with the most cache-hit req/s, not the best ratio (a slow reference "
        f"raises the ratio). {_plateau(r['config_sweep'])} The remaining gap to the trivial endpoint is the "
        "request's own work (profile below). The API already answers with orjson (see the encoder table); "
        "the cache hit's one Redis round trip is packed by hiredis and sent on a connection of the hit path's "
        "own (`recsys/serving/stores/redis_wire.py`, one per in-flight request, one timeout per trip), and the hit "
        "never touches the database pool. A plain `GET /recommendations` skips FastAPI's per-request dependency "
        "resolution (`FastRecommendationsRoute`); its rate-limit script rides in the read's round trip.",
        "### Concurrency (chosen settings)",
        table(["connections", "hit req/s", "p50 ms", "p95 ms", "p99 ms", "trivial req/s", "ratio"], conc),
        "### JSON encoder on the trivial stack (same body)",
        table(["endpoint", "req/s", "p99 ms"], enc),
        "`/trivial` answers with orjson (what the API's routes use), `/trivial/stdjson` with Starlette's "
        "`JSONResponse` (stdlib json), `/trivial/model` through a declared `response_model` (FastAPI validates "
        "and serialises the dict).",
        "### One client, one request at a time (unloaded latency, ms)",
        table(["path", "p50", "p95", "p99", "requests"], seq),
        "`miss sequential`: the user's cached list deleted just before the request: Tier 1 scores the user "
        "against every product from the embeddings in memory and writes the list back.",
        "### Where a cache hit's time goes (in process, cProfile on asyncio's loop)",
        f"The route's call, `respond(user_id, 10)` (the cached answer's checks and bytes, or the tiers; the JSON "
        f"body), takes {sig(prof.get('mean_ms_per_call_uvloop'))} ms per call in process on uvloop, the servers' "
        f"loop, and {sig(prof.get('mean_ms_per_call_unprofiled'))} ms on asyncio's own loop "
        f"(sequential, without the profiler, the rate limiter left out as in the baseline's `recommend`). "
        f"Profiler time by area:",
        table(["area", "share"], areas), table(["function", "share", "calls per request"], top)])


def precompute(r: dict) -> str:
    def rate(s: dict, name: str) -> str:
        return med(s["users_per_s"][name]) if name in s["users_per_s"] else "-"

    def rel(s: dict, name: str) -> str:
        return sig(s["ratio_to_numpy"][name]) if name in s["ratio_to_numpy"] else "-"

    rows = [[num(s["products"]), s["block_users"], med(s["users_per_s"]["numpy"]), rate(s, "score_top"),
             rate(s, "fused_top"), rate(s, "faiss_knn"), rate(s, "lists"), rel(s, "score_top"), rel(s, "fused_top"),
             rel(s, "faiss_knn"), rel(s, "lists"), sig(s["numpy_gflops"])] for s in r["sizes"]]
    slopes = ", ".join(f"{k} {sig(v['loglog_slope'])}" for k, v in r["scaling"].items() if v["loglog_slope"])
    tiles = (f"tiles of {r['settings']['tile_mb']} MB in {r['settings']['threads']} threads"
             if "tile_mb" in r["settings"] else "tiles")
    return "\n\n".join([
        "## 2. Precompute: users scored per second",
        f"Vectors of the production size ({r['sizes'][0]['dim']} = {r['sizes'][0]['dim'] - 1} LightFM components + bias), "
        f"{r['sizes'][0]['candidates']} candidates per user (3 x recs_per_user), {r['settings']['recs_per_user']} "
        f"kept. `numpy`: bare `users @ items.T` of the block (the arithmetic limit; {r['reference']['process']}). "
        "`score+top (old)`: that product plus the previous `top_matrix` (argpartition + sort over the dense block). "
        f"`fused top`: `topk.fused_top`, what precompute runs now ({tiles}; per tile the product, a threshold "
        "from strided group maxima, a stable sort of ~300 candidates per user). `faiss.knn`: faiss's exhaustive "
        "inner-product search with its own top-k, for comparison (not used: slower here). `lists`: precompute's "
        "whole per-block core `_user_lists` (seen mask, fused top, stock and diversity re-ranking, Candidates and "
        "reasons), no database or Redis I/O. Runs alternate on the same block.",
        table(["products", "block", "numpy users/s", "score+top (old)", "fused top", "faiss.knn", "lists users/s",
               "old / numpy", "fused / numpy", "faiss / numpy", "lists / numpy", "numpy GFLOP/s (best)"], rows),
        f"Scaling (log-log slope of users/s against products; -1 = linear in the catalogue): {slopes}. "
        f"The dense references (`numpy`, `score+top`) need 16 bytes per score for a block of "
        f"{r['settings']['default_block']} users (scores, their negation, argpartition's int64 indexes): 32 GiB at "
        "1M products, so the block is cut to fit 2 GiB; `fused top` and `lists` hold at most threads x tile."])


def ann(r: dict) -> str:
    ex, ivf = r["exact"], r["ivf"]
    rows = [["numpy `users @ items.T` only (no top-k)", med(ex["numpy"]), "1", "1"],
            ["exact: precompute's `top_matrix(scores, 300)`", med(ex["exact"]), "1", "1"],
            ["faiss `IndexFlatIP` (exact), k=300", med(r["faiss_flat"]["users_per_s"]), "1", "1"]]
    rows += [[f"faiss IVF{ivf['nlist']},Flat nprobe={p['nprobe']}, k=300", med(p["users_per_s"]),
              sig(p["recall_at_10"]), sig(p["recall_top10_in_300"])] for p in ivf["nprobe"]]
    parts = ["## 2b. Exact scoring vs an ANN index at " + num(r["products"]) + " products",
             f"Data: {r['data']}, {r['dim']} dims, inner product. Recall: share of the "
             f"true top 10 (exact) found in the index's top 10, and in its top 300 (the candidates precompute "
             f"re-ranks), over {r['truth_queries']} users; speed over {r['queries']} users, "
             f"{r['faiss_threads']} threads, faiss {r['faiss']}. IVF build (train + add): "
             f"{sig(ivf['build_seconds'])} s; vectors held: {sig(ivf['memory_gib'])} GiB.",
             table(["method", "users/s", "recall@10", "top-10 in top-300"], rows)]
    worst = r.get("ivf_gaussian_worst_case")
    if worst:
        parts += [f"Worst case, unstructured Gaussian vectors ({num(worst['products'])} products, "
                  f"IVF{worst['nlist']}):",
                  table(["nprobe", "users/s", "recall@10", "top-10 in top-300"],
                        [[p["nprobe"], med(p["users_per_s"]), sig(p["recall_at_10"]),
                          sig(p["recall_top10_in_300"])] for p in worst["nprobe"]])]
    h = r.get("hnsw")
    if h:
        parts += [f"HNSW (faiss `IndexHNSWFlat`, M={h['M']}, efConstruction={h['ef_construction']}) on "
                  f"{num(h['products'])} products: build {sig(h['build_seconds'])} s "
                  f"({num(h['build_items_per_s'])} items/s, so at least {sig(r['products'] / h['build_items_per_s'] / 3600)} h "
                  f"for {num(r['products'])}: the build slows as the graph grows).",
                  "Speed is of the k=300 search (efSearch = max(ef, 300)); recall@10 of a k=10 search at efSearch = "
                  "ef. HNSW's graph assumes a metric: with raw inner products (item biases, unnormalised vectors) "
                  "it does worse than IVF here; the usual fix is the MIPS-to-L2 transform (one extra dimension).",
                  table(["efSearch", "users/s (k=300)", "recall@10", "top-10 in top-300"],
                        [[e["ef_search"], med(e["users_per_s_k300"]), sig(e["recall_at_10"]),
                          sig(e["recall_top10_in_300"])] for e in h["ef"]])]
    return "\n\n".join(parts)


def ingest(r: dict) -> str:
    rows = []
    for c, v in r["levels"].items():
        checks = v["count_checks"]
        rows.append([c, med(v["api"]["events_per_s"]), med(v["pg"]["events_per_s"]), sig(v["ratio_api_to_pg"]),
                     med(v["api"]["p50_ms"]), med(v["api"]["p99_ms"]), num(v["api"]["sent"]),
                     num(sum(x["acked"] for x in checks)), num(sum(x["rows"] for x in checks)),
                     num(sum(x["missing"] for x in checks)), "yes" if v["nothing_lost"] else "**NO**"])
    pg = r["postgres"]
    srv = r["server"]
    return "\n\n".join([
        "## 3. Event ingestion (durable)",
        f"`POST /events` ({srv.get('workers')} worker(s), {srv.get('loop')}/{srv.get('http')}) from an aiohttp "
        f"load generator in its own process, {num(r['events_per_run'])} events per run, each with a client "
        "event id; reference, alternately: the same rows as single-row INSERT transactions straight into "
        "PostgreSQL (asyncpg, one commit each; on a shared server its pool may be smaller than the concurrency: "
        f"pools per level {ingest_pools(r)}). After every API run the rows are counted by client event id. "
        f"PostgreSQL: synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']}, "
        f"wal_sync_method={pg['wal_sync_method']}: an acknowledged event is on disk.",
        table(["concurrency", "API events/s", "PostgreSQL INSERT commits/s", "API / PG", "API p50 ms",
               "API p99 ms", "sent", "acknowledged", "rows stored", "missing", "nothing lost"], rows),
        *ingest_batches(r),
        f"**Nothing lost over all runs: {'yes' if r['nothing_lost'] else 'NO'}.**", *ingest_before_after(r)])


def ingest_batches(r: dict) -> list[str]:
    """The ``POST /events/batch`` runs of each level (absent from results of before the batch endpoint)."""
    levels = {c: v for c, v in r["levels"].items() if "batch" in v}
    if not levels:
        return []
    rows = []
    for c, v in levels.items():
        b, checks = v["batch"], v["batch_count_checks"]
        rows.append([c, b["events_per_request"], med(b["events_per_s"]), med(v["pg"]["events_per_s"]),
                     sig(v["ratio_batch_to_pg"]), med(b["p50_ms"]), med(b["p99_ms"]), num(b["sent"]),
                     num(sum(x["acked"] for x in checks)), num(sum(x["rows"] for x in checks)),
                     num(sum(x["missing"] for x in checks)), "yes" if all(x["ok"] for x in checks) else "**NO**"])
    per_run = next(iter(levels.values()))["batch"]["events_per_run"]
    return [f"`POST /events/batch`, alternately in the same runs: each request carries the given number of "
            f"events ({num(per_run)} events per run), each event answered on its own once its transaction "
            "committed and counted the same way (latencies are per request).",
            table(["concurrency (requests)", "events per request", "API batch events/s",
                   "PostgreSQL INSERT commits/s", "batch / PG", "request p50 ms", "request p99 ms", "sent",
                   "acknowledged", "rows stored", "missing", "nothing lost"], rows)]


def ingest_pools(r: dict) -> str:
    return "; ".join(f"{c}: {', '.join(str(p) for p in v['pg'].get('pool') or ['='])}" for c, v in r["levels"].items())


def failed_events(runs: dict) -> int:
    """Events answered with an error over a mode's runs (``errors``: one dict per run, counted per event: a
    failed batch request counts each of its events)."""
    return sum(sum(errors.values()) for errors in runs.get("errors", []))


def ingest_before_after(r: dict) -> list[str]:
    """This API and the baseline tree's, alternately in the same run (``--baseline``): events/s per mode."""
    base = r.get("baseline")
    levels = {c: v for c, v in r["levels"].items() if "api_base" in v}
    if not base or not levels:
        return []
    rows = []
    for c, v in levels.items():
        row = [c]
        for mode in ("api", "batch"):
            if f"{mode}_base" in v:
                before, after = v[f"{mode}_base"]["events_per_s"]["median"], v[mode]["events_per_s"]["median"]
                row += [num(before), num(after), sig(after / before),
                        f"{num(failed_events(v[f'{mode}_base']))} / {num(failed_events(v[mode]))}"]
            else:
                row += ["–"] * 4
        rows.append(row)
    lost = {True: "none", False: "**some**", None: "?"}
    return [f"Before / after, measured alternately in the same run: the API of commit {base['git_commit']} "
            "(`--baseline`, a worktree of it) beside this one, same database, Redis and server settings; "
            "events/s medians, and the events answered with an error (503, each event of a failed batch request "
            "counted: a transaction that failed or waited past the database timeout; a real client retries them). "
            "Acknowledged events missing: "
            f"before {lost[all(v.get('baseline_nothing_lost', True) for v in levels.values())]}, after "
            f"{lost[all(v['nothing_lost'] for v in levels.values())]}.",
            table(["concurrency", "single events/s before", "after", "after / before", "events failed before / after",
                   "batch events/s before", "after", "after / before", "events failed before / after"], rows)]


def training(r: dict) -> str:
    rows = [[num(s["interactions"]), num(s["users"]), num(s["products"]), s["threads"], med(s["epoch_seconds"]),
             med(s["reference_cf_epoch_seconds"]), sig(s["ratio_hybrid_to_cf"]), sig(s["setup_seconds"]),
             num(s["interactions_per_s"]), num(s["generate_seconds"])] for s in r["sizes"]]
    skipped = f" Skipped by the time box: {r['skipped']}." if r["skipped"] else ""
    return "\n\n".join([
        "## 4. Training: seconds per epoch",
        "`fit_hybrid` on the aggregated training frame of a synthetic shop (64 components, WARP, sample weights, "
        "user and item features), each epoch timed inside LightFM; setup = the rest of `fit_hybrid` (features, "
        "dataset, sparse matrices). Reference, same run: bare LightFM without features on the same "
        f"interactions (pure CF). Machine cores: {r['cpu_count']}.{skipped}",
        table(["interactions", "users", "products", "threads", "s/epoch", "CF s/epoch", "hybrid / CF",
               "setup s", "interactions/s", "shop generation s (not training)"], rows),
        "Threads: LightFM's OpenMP build (Hogwild); with other users holding about one of the two cores during "
        "these runs, two threads gained nothing over one — compare the thread rows of the same size only within "
        "a quiet machine. The shop generator is O(users x products), which is why the largest size spends most "
        "of its time generating data."])


def nightly(r: dict) -> str:
    tasks = sorted({t for s in r["sizes"] for t in s["task_seconds"]})
    rows = [[num(s["shop"]["events"]), num(s["shop"]["users"]), num(s["shop"]["products"]), s["state"],
             sig(s["dag_seconds"]), sig(s["shop"]["load_seconds"]), *(sig(s["task_seconds"].get(t)) for t in tasks),
             num(s["recs_keys"])] for s in r["sizes"]]
    skipped = "; ".join(f"{num(s['events'])} events (predicted {sig(s['predicted_seconds'] / 60)} min, "
                        f"{sig(s['seconds_left'] / 60)} min left)" for s in r["skipped"]) or "none"
    s0 = r["sizes"][0] if r["sizes"] else {}
    return "\n\n".join([
        "## 4b. Nightly DAG end to end",
        f"{r['method']}: the real `recsys_nightly` DAG, tasks in one process, one after another (precompute's "
        f"mapped segments summed), {s0.get('epochs')} epochs, {s0.get('no_components')} components, "
        f"{s0.get('cores')} cores. The shop load (generate + COPY into PostgreSQL) is not part of the DAG.",
        table(["events", "users", "products", "state", "DAG s", "load s", *tasks, "recs keys"], rows),
        f"Skipped by the time box of {sig(r['max_seconds'] / 60)} min: {skipped}."])


def scale(r: dict) -> str:
    p, m, c = r["predicted"], r["measured"], r["check"]
    rows = [["users/s", sig(p["users_per_s"]), sig(m["users_per_s"])],
            ["seconds (for the users done)", sig(p["seconds"] * m["users"] / r["users_requested"]), sig(m["seconds"])],
            ["Redis bytes per user", num(p["redis_bytes_per_user"]), num(m["redis_bytes_per_user"])],
            ["Redis memory", gib(p["redis_bytes"] * m["users"] / r["users_requested"]), gib(m["redis_used_bytes"])]]
    return "\n\n".join([
        "## 5. Scale simulation (checks bench/SCALE.md)",
        f"{num(m['users'])} of {num(r['users_requested'])} users x {num(r['products'])} products through one "
        f"precompute worker's loop (`_user_lists`, then `recs:` and `embedding:` written with pipelined SETs to "
        f"Redis DB 10), blocks of {r['block_users']}. Predicted beforehand from unit costs (lists rate from "
        f"{p['lists_rate_source']}, write cost and bytes per user from a calibration block).",
        table(["", "predicted", "measured"], rows),
        f"Measured / predicted: time {sig(c['time_ratio_measured_to_predicted'])}, Redis memory "
        f"{sig(c['memory_ratio_measured_to_predicted'])}. Process RSS at the end {sig(m['process_rss_gib'])} GiB."])
