"""``bench/SCALE.md``: the scale model's reasoning around the numbers ``bench.scale_model.model`` derives."""

from __future__ import annotations

from bench.report_format import num, pct, sig, table
from bench.scale_model import (
    API_UTILISATION,
    MIN_RECALL,
    PAIRS_PER_USER,
    PRECOMPUTE_WINDOW_HOURS,
    PRODUCTS,
    REDIS_SHARD_BYTES,
    TARGET_RPS,
    USERS,
)

GB = 1e9


def _gb(x: float) -> str:
    return f"{sig(x / GB)} GB"


def _memory(m: dict) -> str:
    mem = m["memory"]
    rows = [["user vectors (float32, all users)", f"{num(USERS)} x {mem['dim']} x 4 B", _gb(mem["user_vectors_bytes"])],
            ["item vectors (float32)", f"{num(PRODUCTS)} x {mem['dim']} x 4 B", _gb(mem["item_vectors_bytes"])],
            ["IVF-Flat index (vectors + int64 ids)", f"{num(PRODUCTS)} x ({mem['dim']} x 4 + 8) B", _gb(mem["ivf_bytes"])],
            ["HNSW links on top (M=32)", f"{num(PRODUCTS)} x 64 x 4 B", _gb(mem["hnsw_links_bytes"])],
            ["API id index `{user_id: row}` (Python dict)",
             f"{num(USERS)} x {sig(mem['dict_bytes_per_entry'])} B (measured)", _gb(USERS * mem["dict_bytes_per_entry"])],
            ["Redis: `recs:` + `embedding:` per user (measured in the simulation)",
             f"{num(USERS)} x {num(mem['redis_bytes_per_user'])} B", _gb(mem["redis_bytes"])]]
    api = m.get("api_memory")
    if api:
        rows += [[f"API worker, old loading ({api['dim']} dims; per user measured, bench 1b; per product from the "
                  "layout)", f"{num(USERS)} x {num(api['old_bytes_per_user'])} B + {num(PRODUCTS)} x "
                  f"{num(api['old_bytes_per_product'])} B", _gb(api["old_worker_bytes"])],
                 [f"API node, mapped: item vectors, ids and norms in the page cache ({api['dim']} dims)",
                  f"{num(PRODUCTS)} x ({api['dim']} x 4 + 12) B", _gb(api["item_side_bytes"])],
                 [f"API node, mapped: user vectors and ids on local disk ({api['dim']} dims)",
                  f"{num(USERS)} x ({api['dim']} x 4 + 8) B", _gb(api["user_file_bytes"])]]
    return "\n\n".join([
        "## 1. Memory", table(["what", "size", "total"], rows),
        f"The cached lists dominate: {num(mem['redis_bytes_per_user'])} B per user (100 products with scores "
        f"and reason strings as JSON, the user's embedding as JSON, Redis overhead) make "
        f"**{_gb(mem['redis_bytes'])} of Redis** for 100M users, {mem['redis_shards_memory']} primaries at "
        f"{sig(REDIS_SHARD_BYTES / 2**30)} GiB of data each (twice that with one replica each). Levers, in order of "
        "effect: keep 30-50 products instead of 100 (the API serves 10; re-ranking needs a few times that), "
        "store reasons as short codes and scores as 3 decimals (or binary: int32 ids + float16 scores ≈ 300 B for "
        "50), drop `embedding:{user_id}` JSON (float16 binary is 130 B), and only precompute users active in the "
        "last 30 days (the pipeline already does: with a third of the users active, a third of the memory).",
        _api_memory(m["api_memory"])])


def _api_memory(api: dict | None) -> str:
    if not api:
        return "API worker memory: run `BENCH_ONLY=api_memory make bench` (bench 1b) for the measured figures."
    mib, gib = (lambda x: f"{sig(x / 2**20)} MiB"), (lambda x: f"{sig(x / 2**30)} GiB")
    second_old = f", a second worker another {gib(api['old_second_rss'])}" if api["old_second_rss"] else ""
    pair_old = f" against {gib(api['old_node_pss'])} the old way" if api["old_node_pss"] else ""
    return (
        f"API workers (bench 1b, measured at {num(api['users'])} users x {api['dim']} dims, {num(api['products'])} "
        f"products): loaded the old way (`embeddings.npz` in each worker's heap, dict id indexes) a worker held "
        f"{gib(api['old_rss'])} of RSS ({num(api['old_bytes_per_user'])} B per user){second_old}; at "
        f"{num(USERS)} users x {num(PRODUCTS)} products that is **{_gb(api['old_worker_bytes'])} per worker "
        f"process**, which does not fit. Memory-mapped from the node's local copy (`var/embeddings/<model_id>/`), "
        f"a worker's private memory is **{mib(api['new_private'])}** ({sig(api['new_private_bytes_per_user'])} B "
        f"per user); its RSS is {mib(api['new_rss'])} after {num(api['lookups'])} lookups because RSS counts the "
        "page-cache pages it maps (the kernel maps up to 64 KiB of cached file around each touched page), which the "
        f"workers share: a second worker's Pss is {mib(api['new_second_pss'])}, the two workers together "
        f"{mib(api['new_node_pss'])}{pair_old}. At {num(USERS)} users x {num(PRODUCTS)} products an API "
        f"node needs the files on local disk ({_gb(api['user_file_bytes'] + api['item_side_bytes'])} per model, "
        f"twice while a new model is switched in), the item side resident ({_gb(api['item_side_bytes'])}: every "
        f"on-the-fly score reads all item vectors), per worker its private memory plus "
        f"{_gb(api['score_transient_bytes'])} while it scores a user on the fly (scores over every product): "
        f"**{_gb(api['node_bytes'])} for {api['workers']} workers**, plus whatever page cache it can give to user "
        "vectors (a user vector not in memory costs one 4 KiB read from local disk; the whole user file is "
        f"{_gb(api['user_file_bytes'])}). Redis's `embedding:{{user_id}}` stays a fallback, not a necessity.")


def _precompute(m: dict) -> str:
    p = m["precompute"]
    ivf = p["ivf"]
    rows = [["exact (`top_matrix(users @ items.T)`)", sig(p["exact_users_per_s"]), "1.0",
             sig(p["exact_hours_per_worker"]), num(round(p["exact_hours_per_worker"] / PRECOMPUTE_WINDOW_HOURS))],
            [f"IVF nprobe={ivf['nprobe']} + re-rank + reasons + Redis write", sig(p["ann_users_per_s"]),
             sig(ivf["recall_at_10"]), sig(p["ann_hours_per_worker"]), num(p["workers_for_window"])]]
    return "\n\n".join(part for part in [
        "## 2. Nightly precompute",
        f"Unit costs on this 2-core machine (one worker = 2 cores): scoring against {num(p['ann_products'])} "
        f"products exactly runs at {sig(p['exact_users_per_s'])} users/s (bench 2b); the IVF index at the "
        f"smallest nprobe with recall@10 ≥ {MIN_RECALL} (nprobe={ivf['nprobe']}, recall@10 "
        f"{sig(ivf['recall_at_10'])}, true top 10 within its 300 candidates {sig(ivf['recall_top10_in_300'])}) "
        f"at {sig(p['ivf_users_per_s'])} users/s; after scoring, re-ranking and reasons cost "
        f"{sig(p['post_seconds_per_user'] * 1e3)} ms per user (bench 2, lists minus the candidate selection) and the Redis "
        f"writes {sig(p['write_seconds_per_user'] * 1e3)} ms per user (bench 5).",
        table(["method", "users/s per worker", "recall@10", f"hours for {num(USERS)} users, one worker",
               f"workers for a {PRECOMPUTE_WINDOW_HOURS:g} h window"], rows),
        f"Exact scoring is out of reach at 10M products{_fused_note(p)}. With the ANN index the night needs **{num(p['workers_for_window'])} two-core "
        f"workers for a {PRECOMPUTE_WINDOW_HOURS:g}-hour precompute window** (fewer with a third of the users "
        f"active). The IVF index over 10M products builds in {sig(p['ivf_build_seconds'] / 60)} minutes on 2 cores: "
        "one task after training, stored as an artifact next to the model, loaded by every worker.",
        _dag_rate(p), _measured_shards(p), _worst_case(m)] if part)


def _fused_note(p: dict) -> str:
    x = p.get("fused_over_old_1m")
    note = p.get("machine_note")
    text = ("" if x is None else
            f" (bench 2b's exact row is the previous argpartition selection; precompute's fused top-k picks the same "
            f"candidates {sig(x)}x as fast at 1M products in one run of bench 2, still orders of magnitude short of "
            "the IVF rate)")
    if note:
        text += (f". Bench 2 ran on another machine than benches 2b and 5 (CPU flags {', '.join(note['flags'])}, "
                 f"OpenBLAS kernel {note['blas_kernel']}, numpy at {sig(note['gflops'])} GFLOP/s, load "
                 f"{' / '.join(sig(v) for v in note['load'])} on 2 cores, shared with other runs): the per-user cost "
                 "after scoring above comes from it and is higher than it would be on theirs")
    return text


def _dag_rate(p: dict) -> str:
    if not p.get("dag_users_per_s"):
        return ""
    return (f"These are in-core rates. In the real nightly DAG (bench 4b) precompute wrote {num(p['dag_users'])} "
            f"users against {num(p['dag_products'])} products at {sig(p['dag_users_per_s'])} users/s, database "
            "reads of each block's history and one model and catalogue load per segment included. At small catalogues the I/O around "
            "the scoring costs several times the scoring itself, so the workers above should read "
            "history from the day's Parquet partitions in bulk and load the model once per worker.")


def _worst_case(m: dict) -> str:
    worst = m["precompute"].get("worst_case")
    if not worst:
        return ""
    rows = ", ".join(f"nprobe={r['nprobe']}: recall@10 {sig(r['recall_at_10'])} at {sig(r['users_per_s']['median'])}"
                     " users/s" for r in worst["nprobe"])
    return ("The recall above is on clustered synthetic vectors: a shop's trained embeddings are structured by "
            "category and taste, but how tightly is a property of the real catalogue, not of this benchmark. "
            f"On unstructured Gaussian vectors ({num(worst['products'])} products, the worst case) an IVF index "
            f"(nlist {worst['nlist']}) "
            f"gives {rows}. So nprobe must be chosen on the real model's embeddings, and the nightly run should "
            "check it: exact top 10 for a sample of 1,000 users costs minutes, and a recall below the target "
            "should raise nprobe (or page) rather than silently serve worse lists.")


def _serving(m: dict) -> str:
    s = m["serving"]
    return "\n\n".join([
        "## 3. Serving",
        f"One 2-core API node served **{num(s['hit_rps'])} cache-hit requests/s** ({s['workers']} worker(s), "
        f"p99 {sig(s['p99_ms'])} ms at the benchmark's concurrency) with wrk and Redis on the same 2 cores, so "
        f"a dedicated node does somewhat better. At {100 * API_UTILISATION:.0f}% utilisation, **{num(TARGET_RPS)} "
        f"requests/s need {num(s['nodes'])} such nodes**. The same stack answers a trivial endpoint at "
        f"{num(s['trivial_rps'])} req/s: the recommendation's own work (the Redis round trip, checking the cached "
        f"answer and copying its bytes; re-ranking the 100-item list only when the session or the catalog "
        f"changed) is what costs, and cutting it to the level of the "
        f"trivial endpoint would need {num(s['nodes_if_trivial'])} nodes (bench 1: in process, on uvloop, a cache hit takes "
        f"{sig(s['in_process_ms'])} ms, the profile's largest areas "
        f"{', '.join(f'{k} {pct(v)}' for k, v in s['profile_areas']) or '?'}).",
        "Redis: each request is one pipelined round trip of 4 commands on 7 keys (MGET of the list, the cached "
        "answer, the A/B assignment and the counter; HGETALL of the session; the API key's token-bucket script, "
        "which reads and writes one hash; the XADD of the previous answer's impression, and the SET of an answer "
        "a request re-ranked), "
        f"counted as {s['redis_key_operations']} GETs: {num(s['redis_commands_per_s'])} "
        f"per second at {num(TARGET_RPS)} req/s. One Redis here did {num(s['redis_get_rps'])} GET/s "
        f"(`redis-benchmark`), so throughput needs about {num(s['redis_shards_throughput'])} primaries; memory "
        f"needs {num(m['memory']['redis_shards_memory'])} (section 1), so memory decides."])


def _where(m: dict) -> str:
    return "\n\n".join([
        "## 4. What runs where",
        "- **Airflow** (CeleryExecutor or KubernetesExecutor): the nightly DAG as today — extract, validate, "
        "train, evaluate, promote, publish — plus one `build_ann_index` task after publish. Precompute already fans "
        "out as mapped tasks over user-hash shards of `user_id` (`RECSYS_PRECOMPUTE_SHARDS`, equal shares whatever "
        f"the segments): {_shards(m)} Each worker loads the item index once and streams its users' history from "
        "the day's Parquet partitions (not the OLTP database).",
        "- **Redis Cluster** for the cached lists, answers, sessions and counters "
        "(`RECSYS_REDIS_URL=redis+cluster://host:port`). The API reads a user's keys in one pipelined round trip: "
        "the key names carry a hash tag on the user id (`recs:{123}`, `answer:{123}`, `session:{123}`, "
        "`user:events:{123}`, `recsys/keys.py`), so they share a slot; the rate-limit bucket and the impression "
        "stream live on their own slots (redis-py's cluster pipeline sends those to their nodes in parallel).",
        "- **ANN index** (faiss IVF-Flat, inner product) built nightly, used by precompute workers and by the "
        "API's cache-miss path (instead of scoring every product in process).",
        "- **API nodes**: stateless uvicorn processes behind a load balancer, the LIVE model's user and item "
        "embeddings memory-mapped from a local copy the node downloads once (section 1), "
        "database for event writes only (PostgreSQL primary; events could go through a queue to absorb peaks).",
        "- **PostgreSQL**: events (see bench 3 for one node's durable commit rate), registry, A/B tests; "
        "training reads the aggregated window (a read replica or the Parquet partitions)."])


def _shards(m: dict) -> str:
    sh, ms = m["precompute"].get("shards"), m["precompute"].get("measured_shards")
    if not sh:
        return "one shard per worker."
    if not ms:
        return (f"at {num(USERS)} users, {num(sh['count'])} shards (at least one per worker above, "
                f"`max_active_tis_per_dagrun` = the worker count) of {num(sh['users_per_shard'])} users each, "
                f"**{sig(sh['hours_per_shard'])} hours per shard on one worker** (the per-user costs of section 2: "
                "scoring, re-ranking and reasons, Redis writes).")
    return (f"at {num(USERS)} users, {num(ms['count'])} shards (at least one per worker: "
            f"`max_active_tis_per_dagrun` = {num(ms['workers'])} workers for a {PRECOMPUTE_WINDOW_HOURS:g}-hour "
            f"window) of {num(ms['users_per_shard'])} users each, **{sig(ms['hours_per_shard'])} hours per shard on "
            f"one worker** (bench 2c's per-shard cost, measured at {num(ms['shop_users'])} users and extrapolated: "
            "section 2).")


def _measured_shards(p: dict) -> str:
    ms, sh = p.get("measured_shards"), p.get("shards")
    if not ms:
        return ""
    return (
        f"Per shard, measured (bench 2c, this 2-core machine, {num(ms['shop_users'])} users x "
        f"{num(ms['shop_products'])} products): the real `precompute_shard`, as the nightly DAG's mapped tasks call "
        f"it, took {sig(ms['median_seconds'])} s per shard (median of {ms['bench_shards']}; "
        f"{num(ms['median_users_per_s'])} users/s), the slowest {sig(ms['imbalance'])}x the mean (the largest "
        f"shard has {sig(ms['users_max_over_mean'])}x the mean's users; the rest is timing noise on a shared "
        f"machine, kept as a margin). The {ms['bench_shards']} shards together took {sig(ms['sum_over_whole'])}x one "
        f"call for every user: {sig(ms['fixed_seconds_per_call'])} s per call whatever its users (model and "
        f"catalogue load, the read of every active user) and {sig(ms['measured_seconds_per_user'] * 1e3)} ms per "
        f"user (history read, scoring, re-ranking, reasons, Redis writes), of which the candidate selection at "
        f"{num(ms['shop_products'])} products {sig(ms['selection_seconds_per_user'] * 1e3)} ms. With the IVF "
        f"selection at {num(PRODUCTS)} products in its place a user costs {sig(ms['seconds_per_user'] * 1e3)} ms: "
        f"**{sig(ms['hours_per_shard'])} hours for each of {num(ms['count'])} shards of {num(ms['users_per_shard'])} "
        f"users, {num(ms['workers'])} workers for the window** (linear extrapolation from one size; at this shop's "
        f"catalogue {sig(ms['hours_per_shard_at_shop_catalogue'])} hours per shard). The in-core unit costs above "
        f"give {sig(sh['hours_per_shard'])} hours for {num(sh['count'])} shards: the difference is the database "
        "reads and answer writes they leave out. Each shard also reads every active user of the shop to keep its "
        f"own (`active_users`, {sig(ms['active_users_seconds'])} s at {num(ms['shop_users'])} users): linear in the "
        f"shop, about {sig(ms['active_users_hours_at_users'] * 60)} minutes per shard at {num(USERS)} users, a read "
        "each shard should restrict to its own hash range.")


def _check(m: dict) -> str:
    sim = m["simulation"]
    pr, me, c = sim["predicted"], sim["measured"], sim["check"]
    return "\n\n".join([
        "## 5. Check: the scaled-down simulation",
        f"{num(me['users'])} users x {num(sim['products'])} products went through one worker's precompute loop "
        f"into Redis (bench 5). Predicted from unit costs: {sig(pr['users_per_s'])} users/s and "
        f"{num(pr['redis_bytes_per_user'])} B of Redis per user; measured {sig(me['users_per_s'])} users/s and "
        f"{num(me['redis_bytes_per_user'])} B. **Measured / predicted: time {sig(c['time_ratio_measured_to_predicted'])},"
        f" memory {sig(c['memory_ratio_measured_to_predicted'])}.** Memory scales linearly with users (it is per "
        "key); time per user is the sum of the unit costs above, so the extrapolation holds as long as the workers "
        "are CPU-bound and Redis keeps up.",
        _not_simulated(m)])


def _not_simulated(m: dict) -> str:
    rate = m["precompute"].get("lists_1m_users_per_s")
    why = (f"Precompute's lists at 1M products run at {sig(rate)} users/s here (bench 2), so 10M users would take "
           f"{sig(10_000_000 / rate / 3600)} hours on this machine" if rate else "It does not fit the time box")
    return (f"Not simulated: 10M users x 1M products. {why}; the simulation uses the largest catalogue at which "
            "1M users fit in the time box, and the 1M/10M-product figures come from benches 2 and 2b.")


def _training(m: dict) -> str:
    t = m["training"]
    speed = (f"; an epoch on two threads took {sig(1 / t['thread_speedup_1_to_2'])}x the time of one thread "
             "(the other core was busy with other users' work: thread scaling was not measurable here)"
             if t["thread_speedup_1_to_2"] else "")
    return "\n\n".join([
        "## 6. Training",
        f"An epoch of the hybrid model took {sig(t['seconds_per_epoch'])} s for {num(t['measured_interactions'])} "
        f"interactions on {t['threads']} threads{speed}. 100M users at ~{PAIRS_PER_USER} pairs each are "
        f"{num(t['interactions'])} interactions: about {sig(t['epoch_hours'])} hours per epoch on 2 cores if time "
        f"stays linear, {sig(30 * t['epoch_hours'])} hours for the default 30 epochs. LightFM's Hogwild threads scale on one machine only: at that size train on one large "
        "machine (32-64 cores), on a sample of users, or with fewer epochs warm-started from yesterday's model."])


def render(m: dict) -> str:
    head = (f"# Scale model: {num(USERS)} users x {num(PRODUCTS)} products\n\n"
            "Generated by `python -m bench.scale_model` from `bench/results/*.json` (run `make bench` to refresh); "
            "every figure below is a unit cost measured on this repository's 2-core benchmark machine "
            "(`bench/README.md`) multiplied out. Assumptions: every user has a cached list (worst case; the "
            f"pipeline precomputes only users active in 30 days), {num(TARGET_RPS)} cache-hit requests/s at peak, "
            f"a {PRECOMPUTE_WINDOW_HOURS:g}-hour precompute window.")
    return "\n\n".join([head, _memory(m), _precompute(m), _serving(m), _where(m), _check(m), _training(m)]) + "\n"
