"""Write ``bench/README.md`` from ``bench/results/*.json``: method, machine, one table per benchmark.

``python -m bench.report`` (``scripts/bench.sh`` runs it after the benchmarks).
The prose around the tables is in ``bench/README.head.md``; every number is read
from the results files, so the summary never drifts from what was measured.
"""

from __future__ import annotations

from bench.common import BENCH_DIR
from bench.report_api_memory import api_memory, api_memory_headline
from bench.report_format import load_results, num, pct, short_function, sig, table
from bench.report_sections import ann, ingest, nightly, precompute, scale, serving, training
from bench.report_selection import selection
from bench.report_shards import shards, shards_headline
from bench.report_filtered import serving_filtered
from bench.report_sequential import sequential, sequential_headline
from bench.serving_baseline import before_after, change_finding


def ingest_batch_summary(level: dict) -> str:
    """The batch endpoint's rate beside the single events' in the summary (when the run measured it)."""
    if "batch" not in level:
        return ""
    b = level["batch"]
    return f", {num(b['events_per_s']['median'])} events/s with {b['events_per_request']} events per request"


def machine_section(results: dict) -> str:
    first = next(iter(results.values()))
    m = first["machine"]
    blas = (results.get("precompute") or {}).get("reference", {}).get("blas") or []
    kernel = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
                       for b in blas) or "–"
    rows = [["CPU", f"{m['cpu']}, {m['cores']} cores ({' '.join(m['cpu_flags'])})"],
            ["memory", f"{m['memory_gib']} GiB"], ["Python", m["python"]], ["platform", m["platform"]],
            ["BLAS (numpy reference)", kernel],
            ["OpenBLAS overrides in the environment", str(m["openblas_env"] or "none")],
            ["git commit", str(m.get("git_commit"))]]
    load = [[name, r["date"], "yes" if r["quick"] else "no", num(r["wall_seconds"]),
             f"{r['machine']['cpu_busy_percent_before']:.0f}%",
             " / ".join(f"{x:.1f}" for x in r["machine"]["loadavg_1_5_15"]),
             " / ".join(f"{x:.1f}" for x in r.get("loadavg_end", [])), f"`{r['command']}`"]
            for name, r in results.items()]
    return "\n\n".join([
        "## Machine and load", table(["", ""], rows),
        "The machine is shared with other engineers' test runs: the CPU already in use just before each "
        "benchmark (whole machine, 1 s sample) and the load averages at its start and end are listed. Absolute "
        "figures move with that load; the ratios to references run alternately in the same run move much less.",
        table(["benchmark", "date (UTC)", "quick", "wall s", "CPU busy before", "load 1/5/15 at start",
               "load at end", "command"], load)])


def headline(results: dict) -> str:
    """The answers in a few lines; the sections below have the tables."""
    lines = []
    if "serving" in results:
        sb = results["serving"]["side_by_side"]
        hit = sb["hit"]
        tiers = ", ".join(f"{k} p50 {sig(sb[k]['p50_ms']['median'])} / p99 {sig(sb[k]['p99_ms']['median'])} ms"
                          for k in ("category", "trending_unknown") if k in sb)
        seq = results["serving"]["sequential"]
        lines.append(f"- **Serving (cache hit)**: {num(hit['rps']['median'])} req/s, p50/p95/p99 "
                     f"{sig(hit['p50_ms']['median'])}/{sig(hit['p95_ms']['median'])}/{sig(hit['p99_ms']['median'])} ms "
                     f"at {results['serving']['connections']} connections; one request alone "
                     f"{sig(seq['hit_sequential']['p50_ms'])} ms (p50). Ratio to the trivial endpoint "
                     f"{sig(sb['ratio_hit_to_trivial'])}, to redis-benchmark GET {sig(sb['ratio_hit_to_redis_get'])}. "
                     f"Fallbacks at the same load: {tiers}; cache miss alone {sig(seq['miss_sequential']['p50_ms'])} ms.")
    if "api_memory" in results:
        lines.append(api_memory_headline(results["api_memory"]))
    if "precompute" in results:
        rows = "; ".join(f"{num(r['products'])} products: {num(r['users_per_s']['lists']['median'])} users/s "
                         f"(numpy {num(r['users_per_s']['numpy']['median'])}, ratio "
                         f"{sig(r['ratio_to_numpy']['lists'])})" for r in results["precompute"]["sizes"])
        lines.append(f"- **Precompute**: {rows}.")
    if "shards" in results:
        lines.append(shards_headline(results["shards"]))
    if "ann" in results:
        a = results["ann"]
        ivf = "; ".join(f"nprobe {p['nprobe']}: {num(p['users_per_s']['median'])} users/s, recall@10 "
                        f"{sig(p['recall_at_10'])}" for p in a["ivf"]["nprobe"])
        lines.append(f"- **{num(a['products'])} products**: exact {sig(a['exact']['exact']['median'])} users/s; "
                     f"faiss IVF {ivf}.")
    if "ingest" in results:
        lv = results["ingest"]["levels"]
        best = max(lv, key=lambda c: lv[c]["api"]["events_per_s"]["median"])
        lines.append(f"- **Ingestion**: {num(lv[best]['api']['events_per_s']['median'])} durable events/s at "
                     f"concurrency {best} (PostgreSQL alone {num(lv[best]['pg']['events_per_s']['median'])} "
                     f"commits/s){ingest_batch_summary(lv[best])}; nothing lost: "
                     f"{'yes' if results['ingest']['nothing_lost'] else 'NO'}.")
    if "training" in results:
        rows = "; ".join(f"{num(r['interactions'])}: {sig(r['epoch_seconds']['median'])} s/epoch ({r['threads']} "
                         f"thread{'s' if r['threads'] > 1 else ''})" for r in results["training"]["sizes"])
        lines.append(f"- **Training**: {rows}.")
    if "nightly" in results:
        rows = "; ".join(f"{num(r['shop']['events'])} events: {sig(r['dag_seconds'])} s"
                         for r in results["nightly"]["sizes"])
        lines.append(f"- **Nightly DAG end to end**: {rows}.")
    if "sequential_latency" in results:
        lines.append(sequential_headline(results["sequential_latency"]))
    return "## Headline numbers\n\n" + "\n".join(lines) + "\n\nThe scale model built on them: `bench/SCALE.md`."


def findings(results: dict) -> str:
    """What the numbers say, each point computed from the results."""
    out = []
    sv = results.get("serving")
    if sv:
        prof = sv.get("profile_hit") or {}
        areas = sorted((prof.get("profiled_share_by_area") or {}).items(), key=lambda kv: -kv[1])
        top = (prof.get("top_functions") or [{}])[0]
        ratio = sv["side_by_side"]["ratio_hit_to_trivial"]
        out.append(f"- A cache hit takes about {sig(1 / ratio, 2)}x the server time of a trivial answer on the same "
                   f"stack (cache hit / trivial endpoint {sig(ratio)}). In process the route's call (`respond`) takes "
                   f"{sig(prof.get('mean_ms_per_call_uvloop'))} ms per call on uvloop "
                   f"({sig(prof.get('mean_ms_per_call_unprofiled'))} ms on asyncio's loop), its profile spread over "
                   f"{', '.join(f'{k} {pct(v)}' for k, v in areas[:4])}; the largest single function is "
                   f"`{short_function(top.get('function') or '')}` at {pct(top.get('share'))} "
                   f"({sig(top.get('calls_per_request'))} calls per request).")
        if change_finding(sv):
            out.append(change_finding(sv))
        slow = [c for c in sv["config_sweep"] if c["trivial"]["p50_ms"]["median"] > 30 and c["workers"] > 1
                and c["loop"] == "asyncio"]
        if slow:
            out.append(f"- {slow[0]['workers']} workers with asyncio/h11 cap the trivial endpoint at "
                       f"{num(slow[0]['trivial']['rps']['median'])} req/s with a p50 of "
                       f"{sig(slow[0]['trivial']['p50_ms']['median'])} ms per request (a ~40 ms floor, the signature of "
                       "a delayed-ACK stall; not investigated further); uvloop/httptools, uvicorn's default when installed, does not show it.")
    pre = results.get("precompute")
    if pre:
        big = max(pre["sizes"], key=lambda x: x["products"])
        if "fused_top" in big["ratio_to_numpy"]:
            out.append(f"- Precompute at {num(big['products'])} products: picking the top candidates with the "
                       f"previous argpartition over the dense block ran at {pct(big['ratio_to_numpy']['score_top'])} of "
                       f"the bare matrix product, the fused top-k at {pct(big['ratio_to_numpy']['fused_top'])} and the "
                       f"whole block core at {pct(big['ratio_to_numpy']['lists'])}; the threshold pass (one max and one "
                       "comparison per score) replaces the selection over every product.")
        else:
            out.append(f"- Precompute at {num(big['products'])} products runs at {pct(big['ratio_to_numpy']['score_top'])} "
                       "of the bare matrix product when it also picks the top candidates: the argpartition over every "
                       "product (single-threaded) costs more than the arithmetic.")
    ing = results.get("ingest")
    if ing:
        lv = ing["levels"]
        lo, hi = min(lv, key=int), max(lv, key=int)
        out.append(f"- Ingestion through the API (group commit: one transaction per batch of concurrent events) goes "
                   f"from {num(lv[lo]['api']['events_per_s']['median'])} events/s at concurrency {lo} to "
                   f"{num(lv[hi]['api']['events_per_s']['median'])} at {hi}, {sig(lv[hi]['ratio_api_to_pg'])}x the "
                   "single-row INSERT commits of PostgreSQL alone in the same run "
                   f"({num(lv[hi]['pg']['events_per_s']['median'])}/s): the commits are shared, so what is left per "
                   "event is the HTTP request itself and the session script in Redis."
                   + (f" `POST /events/batch` ({lv[hi]['batch']['events_per_request']} events per request) pays "
                      f"them once per request: {num(lv[hi]['batch']['events_per_s']['median'])} events/s at "
                      f"concurrency {hi}, {sig(lv[hi]['ratio_batch_to_pg'])}x PostgreSQL's single-row commits in "
                      "the same run."
                      if "batch" in lv[hi] else ""))
    ni = results.get("nightly")
    if ni and ni["sizes"]:
        big = max(ni["sizes"], key=lambda x: x["shop"]["events"])
        share = big["task_seconds"].get("precompute", 0) / big["dag_seconds"]
        out.append(f"- In the nightly DAG at {num(big['shop']['events'])} events, precompute takes {pct(share)} of the "
                   f"run ({num(big['recs_keys'] / big['task_seconds']['precompute'])} users/s with its database "
                   "reads and per-segment model loads) and training most of the rest.")
    return "## Findings\n\n" + "\n".join(out) if out else ""


def main() -> None:
    results = load_results()
    if not results:
        raise SystemExit("no results in bench/results/: run `make bench` (or BENCH_QUICK=1 make bench) first")
    head = (BENCH_DIR / "README.head.md").read_text()
    parts = [head.rstrip(), headline(results), findings(results), machine_section(results)]
    sections = (("serving", serving), ("api_memory", api_memory), ("precompute", precompute), ("shards", shards),
                ("ann", ann), ("ingest", ingest), ("training", training), ("nightly", nightly), ("selection", selection),
                ("scale_simulation", scale), ("sequential_latency", sequential))
    for name, section in sections:
        if name in results:
            parts.append(section(results[name]))
        if name == "serving" and name in results and before_after(results[name]):
            parts.append(before_after(results[name]))
        if name == "serving" and "serving_filtered" in results:
            parts.append(serving_filtered(results["serving_filtered"]))
    (BENCH_DIR / "README.md").write_text("\n\n".join(parts) + "\n")
    print("wrote bench/README.md")


if __name__ == "__main__":
    main()
