"""The bench README's section and headline of ``bench_api_memory``: an API worker's memory, old vs new."""

from __future__ import annotations

from bench.report_format import med, num, sig, table

MODE_NAMES = {"old": "old: `.npz` in the heap + dicts", "new": "new: mapped `.npy` + searchsorted"}


def _mib(s: dict | None) -> str:
    """A summary of bytes as ``median (min–max)`` MiB."""
    if not s:
        return "–"
    return med({k: s[k] / 2**20 for k in ("median", "min", "max")})


def _memory_row(size: dict, mode: str) -> list[str]:
    r = size[mode]
    first, second = r["first"], r["second"]
    return [num(size["users"]), MODE_NAMES[mode], _mib(first["rss_loaded"]), _mib(first["rss"]), _mib(first["anon"]),
            _mib(first["pss"]), _mib(first["peak_rss"]), _mib(second and second["rss"]),
            _mib(second and second["pss"]), _mib(r.get("node_pss_two_workers"))]


def _latency_row(size: dict, mode: str) -> list[str]:
    first = size[mode]["first"]
    return [num(size["users"]), MODE_NAMES[mode], med(first["load_seconds"]), med(first["lookup_us_p50"]),
            med(first["lookup_us_p99"]), med(first["score_ms_p50"]), med(first["score_ms_p99"])]


def api_memory(r: dict) -> str:
    sizes = r["sizes"]
    memory = [_memory_row(s, m) for s in sizes for m in ("old", "new")]
    latency = [_latency_row(s, m) for s in sizes for m in ("old", "new")]
    skipped = [f"{num(s['users'])} users: {x}" for s in sizes for x in s["old"]["second_skipped"]]
    files = "; ".join(f"{num(s['users'])} users: `.npy` files {sig(s['files']['npy_bytes'] / 2**30)} GiB, "
                      f"`.npz` {sig(s['files']['npz_bytes'] / 2**30)} GiB" for s in sizes)
    slope = r.get("bytes_per_user") or {}
    per_user = (f" Bytes per user (slope between the two sizes, first worker): old {sig(slope['old']['rss'])} B of "
                f"RSS; new {sig(slope['new']['anon'])} B of private memory (its RSS grows with the pages mapped "
                "around each lookup, not with the users held)." if slope else "")
    parts = [
        "## 1b. API worker memory: embeddings in each worker's heap vs memory-mapped",
        f"One API worker's embeddings of the LIVE model, {r['dim']} dims (96 LightFM components + bias), "
        f"{num(r['products'])} products, in a fresh process per worker: **old**, the previous version's loading "
        "(`embeddings.npz` read whole, `{id: row}` dicts, a normalised item copy); **new**, `load_embeddings` "
        "(files downloaded once per node into `var/embeddings/<model_id>/`, mapped read-only, ids found with "
        f"`np.searchsorted`). Each worker looks up {num(r['lookups'])} distinct random users, then scores "
        f"{num(r['queries'])} of them against every product (top {r['k']}); a second worker does the same while "
        f"the first still holds its pages. {r['repeats']} rounds alternating old and new; memory from "
        "`/proc/self/status` and `/proc/self/smaps_rollup` of each worker. Files: " + files + ".",
        "**RSS** counts every resident page the process maps, including page-cache pages of mapped files that "
        "other processes share (and the kernel maps up to 64 KiB around each touched page); **RssAnon** is the "
        "worker's private memory; **Pss** divides shared pages among the processes that map them, so the two "
        "workers' Pss add up to what the pair really holds." + per_user,
        table(["users", "loading", "RSS after load MiB", "RSS after lookups MiB", "private (RssAnon) MiB",
               "Pss MiB", "peak RSS MiB", "2nd worker RSS MiB", "2nd worker Pss MiB", "both workers' Pss MiB"],
              memory),
        ("Second old worker not started (not enough free memory): " + "; ".join(skipped) + ".") if skipped else "",
        table(["users", "loading", "load s (first worker)", "lookup µs p50", "lookup µs p99",
               "lookup + score ms p50", "lookup + score ms p99"], latency),
        "Scoring is the same code in both (`score_user`: item vectors @ user vector, top-k); the lookup is a dict "
        "`get` (old) or a `searchsorted` plus a copy of the row (new). The new first worker's load time includes "
        "the download into the node cache (here a local copy); the second worker only maps the files."]
    return "\n\n".join(p for p in parts if p)


def api_memory_headline(r: dict) -> str:
    big = max(r["sizes"], key=lambda s: s["users"])
    old, new = big["old"], big["new"]
    gib, mib = (lambda x: f"{sig(x / 2**30)} GiB"), (lambda x: f"{sig(x / 2**20)} MiB")
    old_pair = f", two workers {gib(old['node_pss_two_workers']['median'])} (Pss)" if old["second"] else ""
    return (f"- **API worker memory** ({num(big['users'])} users x {r['dim']} dims, {num(r['products'])} products): "
            f"old loading {gib(old['first']['rss']['median'])} RSS per worker{old_pair}; memory-mapped "
            f"{mib(new['first']['anon']['median'])} private per worker, {mib(new['first']['rss']['median'])} RSS after "
            f"{num(r['lookups'])} lookups (shared page-cache pages), two workers "
            f"{mib(new['node_pss_two_workers']['median'])} (Pss); lookup + score p50 "
            f"{sig(old['first']['score_ms_p50']['median'])} ms (old) vs {sig(new['first']['score_ms_p50']['median'])} "
            "ms (new).")
