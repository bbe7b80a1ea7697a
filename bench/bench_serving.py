"""Serving: cache-hit ``GET /recommendations`` under concurrent load, next to its references.

wrk (a separate process) loads the API and, alternately in the same run, (a) a trivial
endpoint on the same stack (``bench/serve.py``) and (b) ``redis-benchmark`` GET of a value
the size of a cached list on the same Redis. Phases:
1. server settings: workers x (event loop, HTTP parser); the best by cache-hit req/s is kept;
2. concurrency: 1 to 128 connections, API and trivial alternately;
3. side by side at the main concurrency: cache hit, trivial, Tier 2, Tier 3, redis-benchmark;
4. JSON encoder on the trivial stack: orjson (the API's) vs stdlib json vs a response_model;
5. one client, one request at a time: cache hit and cache miss (scored on the fly);
6. where a cache hit's time goes (``bench/serving_profile.py``, in process).
With ``--baseline PATH`` the API of another source tree is measured beside this one in phases 3, 5
and 6 (``bench/serving_baseline.py``).

``python -m bench.bench_serving [--seconds 5] [--repeats 3] [--users 20000] [--baseline PATH]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import API_KEY_HEADERS, REPO, log, machine, quick, ratio, summary, write_result
from bench.fixtures import REDIS_URL, bench_database, bench_redis, serve_ready_shop
from bench.loadgen import Server, run_redis_benchmark, run_wrk, write_ids
from bench.serving_baseline import git_commit, profile_in
from bench.serving_profile import profile_hits
from bench.serving_users import probe_latencies, sequential_latency, tier_users
from recsys.clients import make_engine
from recsys.keys import KEY_RECS
from recsys.settings import Settings

API_PORT, TRIVIAL_PORT, BASELINE_PORT = 18080, 18081, 18082
REC_PATH = "/recommendations?num_items=10&user_id="


def api_fingerprint(source: Path = REPO) -> dict:
    """Which version of the API (``recsys/api`` and the serving core ``recsys/serving``) was measured: a hash of
    their sources and their newest change."""
    import datetime as dt
    import hashlib

    files = sorted(f for package in ("api", "serving") for f in (source / "recsys" / package).rglob("*.py"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    newest = max(f.stat().st_mtime for f in files)
    return {"sha256_16": digest, "files": len(files),
            "newest_change": dt.datetime.fromtimestamp(newest, dt.timezone.utc).isoformat(timespec="seconds")}


def summarise_runs(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms")
    return {**{k: summary([r[k] for r in runs]) for k in keys},
            "errors": sum(r.get("errors", 0) for r in runs), "requests": sum(r["requests"] for r in runs)}


class Bench:
    """The running shop, its tier users and the two servers of one server configuration."""

    def __init__(self, args, shop, workdir: Path):
        self.args, self.shop, self.workdir = args, shop, workdir
        self.env = {"RECSYS_DATABASE_URL": shop.url, "RECSYS_REDIS_URL": REDIS_URL,
                    "RECSYS_ARTIFACT_URI": shop.artifact_dir, "BENCH_TRIVIAL_BODY": str(workdir / "body.json")}
        self.ids: dict[str, str] = {}
        self.api = self.trivial = self.baseline = None

    def _env(self, workers: int) -> dict:
        env = dict(self.env)
        if workers > 1:  # as in production: every worker's metrics in /metrics
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prom-", dir=self.workdir)
        return env

    def start(self, workers: int, loop: str, http: str) -> None:
        self.stop()
        kw = {"workers": workers, "loop": loop, "http": http}
        self.api = Server("recsys", API_PORT, ready_path="/health", log_path=self.workdir / "api.log",
                          env=self._env(workers), **kw)
        self.trivial = Server("trivial", TRIVIAL_PORT, ready_path="/trivial",
                              log_path=self.workdir / "trivial.log", env=self._env(workers), **kw)
        self.api.wait_ready()
        self.trivial.wait_ready()

    def start_baseline(self, workers: int, loop: str, http: str) -> None:
        """The API of the ``--baseline`` source tree, beside this one (same settings, shop and Redis)."""
        self.baseline = Server("recsys", BASELINE_PORT, ready_path="/health", log_path=self.workdir / "baseline.log",
                               workers=workers, loop=loop, http=http, env=self._env(workers),
                               source=Path(self.args.baseline).resolve())
        self.baseline.wait_ready()

    def stop(self) -> None:
        for server in (self.api, self.trivial, self.baseline):
            if server is not None:
                server.stop()
        self.api = self.trivial = self.baseline = None

    def wrk(self, target: str, connections: int) -> dict:
        seconds = self.args.seconds
        if target == "trivial":
            return run_wrk(self.trivial.url, "/trivial", connections=connections, seconds=seconds)
        if target.startswith("trivial/"):
            return run_wrk(self.trivial.url, "/" + target, connections=connections, seconds=seconds)
        if target == "hit_baseline":
            return run_wrk(self.baseline.url, REC_PATH, connections=connections, seconds=seconds, ids_file=self.ids["hit"])
        return run_wrk(self.api.url, REC_PATH, connections=connections, seconds=seconds, ids_file=self.ids[target])

    def alternate(self, targets: list[str], connections: int, extra: dict | None = None) -> dict:
        runs: dict[str, list[dict]] = {t: [] for t in [*targets, *(extra or {})]}
        for _ in range(self.args.repeats):
            for t in targets:
                runs[t].append(self.wrk(t, connections))
            for name, fn in (extra or {}).items():
                runs[name].append(fn())
        return {t: summarise_runs(r) for t, r in runs.items()}


def sweep_configs(bench: Bench, configs: list[tuple[int, str, str]]) -> list[dict]:
    rows = []
    for workers, loop, http in configs:
        bench.start(workers, loop, http)
        res = bench.alternate(["hit", "trivial"], bench.args.connections)
        rows.append({"workers": workers, "loop": loop, "http": http, **res,
                     "ratio_to_trivial": ratio(res["hit"]["rps"], res["trivial"]["rps"])})
        log(f"workers={workers} {loop}/{http}: hit {res['hit']['rps']['median']:.0f} req/s, trivial "
            f"{res['trivial']['rps']['median']:.0f} req/s, ratio {rows[-1]['ratio_to_trivial']:.3f}")
    return rows


def setup_tiers(bench: Bench, redis_client, settings: Settings) -> dict:
    engine = make_engine(bench.shop.url)
    tiers = tier_users(bench.api.url, engine, redis_client, settings.personalized_min_events, bench.args.per_tier)
    engine.dispose()
    for name, ids in tiers.items():
        if ids:
            bench.ids[name] = write_ids(ids)
    body = httpx.get(bench.api.url + REC_PATH + str(tiers["hit"][0]), headers=API_KEY_HEADERS).content
    (bench.workdir / "body.json").write_bytes(body)
    sizes = [redis_client.strlen(KEY_RECS.format(user_id=u)) for u in tiers["hit"][:200]]
    return {"users": {k: len(v) for k, v in tiers.items()}, "response_bytes": len(body),
            "recs_value_bytes": round(sum(sizes) / len(sizes))}


def side_by_side(bench: Bench, redis_client, value_bytes: int) -> dict:
    c = bench.args.connections
    db = int(REDIS_URL.rsplit("/", 1)[1])

    def redis_get() -> dict:
        return run_redis_benchmark(db, value_bytes=value_bytes, connections=c, requests=bench.args.redis_requests)

    targets = ["hit", *(["hit_baseline"] if bench.baseline else []), "trivial"]
    targets += [t for t in ("category", "trending_unknown") if t in bench.ids]
    res = bench.alternate(targets, c, extra={"redis_get": redis_get})
    for key in redis_client.scan_iter("key:*", count=1000):  # redis-benchmark's keys
        redis_client.delete(key)
    res["ratio_hit_to_trivial"] = ratio(res["hit"]["rps"], res["trivial"]["rps"])
    if bench.baseline:
        res["ratio_baseline_to_trivial"] = ratio(res["hit_baseline"]["rps"], res["trivial"]["rps"])
    res["ratio_hit_to_redis_get"] = ratio(res["hit"]["rps"], res["redis_get"]["rps"])
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3 if quick() else 5)
    parser.add_argument("--repeats", type=int, default=2 if quick() else 3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=5000 if quick() else 20000)
    parser.add_argument("--products", type=int, default=1000 if quick() else 5000)
    parser.add_argument("--per-tier", type=int, default=500 if quick() else 2000)
    parser.add_argument("--redis-requests", type=int, default=100_000 if quick() else 300_000)
    parser.add_argument("--baseline", help="a source tree (say a git worktree of an older commit) whose API is "
                                           "measured beside this one")
    args = parser.parse_args(argv)
    started, info, settings, fingerprint = time.perf_counter(), machine(), Settings(), api_fingerprint()
    configs = ([(1, "uvloop", "httptools"), (2, "uvloop", "httptools")] if quick() else
               [(1, "asyncio", "h11"), (1, "uvloop", "httptools"), (2, "asyncio", "h11"),
                (2, "uvloop", "httptools"), (3, "uvloop", "httptools")])
    levels = [8, 32] if quick() else [1, 8, 32, 128]
    with tempfile.TemporaryDirectory(prefix="recsys-bench-serving-") as tmp, bench_database("serving") as url, \
            bench_redis() as redis_client:
        workdir = Path(tmp)
        shop = serve_ready_shop(url, redis_client, str(workdir / "artifacts"), n_users=args.users,
                                n_products=args.products)
        bench = Bench(args, shop, workdir)
        try:
            out = run_phases(bench, redis_client, settings, configs, levels)
        finally:
            bench.stop()
            for path in bench.ids.values():
                os.unlink(path)
    after = api_fingerprint()
    if after != fingerprint:
        log(f"WARNING: recsys/api changed during the run ({fingerprint} -> {after}): run it again")
    write_result("serving", {"machine": info, "api_source": fingerprint,
                             "api_changed_during_run": after != fingerprint, "shop": {k: v for k, v in vars(shop).items() if k != "url"},
                             "connections": args.connections, "seconds_per_run": args.seconds,
                             "repeats": args.repeats, **out},
                 started, "python -m bench.bench_serving " + " ".join(argv or []))


def run_phases(bench: Bench, redis_client, settings: Settings, configs, levels) -> dict:
    bench.start(*configs[0])
    tiers = setup_tiers(bench, redis_client, settings)
    log(f"tier users {tiers['users']}, response {tiers['response_bytes']} B, recs value {tiers['recs_value_bytes']} B")
    sweep = sweep_configs(bench, configs)
    best = max(sweep, key=lambda r: r["hit"]["rps"]["median"])
    chosen = (best["workers"], best["loop"], best["http"])
    bench.start(*chosen)
    conc = {c: bench.alternate(["hit", "trivial"], c) for c in levels}
    if bench.args.baseline:
        bench.start_baseline(*chosen)
        warm_baseline(bench)
    main_run = side_by_side(bench, redis_client, tiers["recs_value_bytes"])
    log(f"side by side: {({k: round(v['rps']['median']) for k, v in main_run.items() if isinstance(v, dict)})}")
    encoders = bench.alternate(["trivial", "trivial/stdjson", "trivial/model"], bench.args.connections)
    base_seq = sequential_latency(bench.baseline.url, bench_users(bench)[:200]) if bench.baseline else None
    probes = probe_latencies(bench.api.url, redis_client, bench_users(bench), 200)
    bench.stop()
    profile = profile_hits(bench.shop.url, REDIS_URL, bench.shop.artifact_dir, bench_users(bench)[:500])
    log(f"profile of a cache hit: {profile['mean_ms_per_call_unprofiled']:.3f} ms/call in process "
        f"({profile['mean_ms_per_call_uvloop']:.3f} on uvloop), "
        f"{profile['profiled_share_by_area']}")
    baseline = None
    if bench.args.baseline:
        source = Path(bench.args.baseline).resolve()
        probes["hit_sequential_baseline"] = base_seq
        baseline = {"source": str(source), "git_commit": git_commit(source), "api_source": api_fingerprint(source),
                    "profile_hit": profile_in(source, bench.shop.url, REDIS_URL, bench.shop.artifact_dir,
                                              bench_users(bench)[:500])}
        log(f"baseline {baseline['git_commit']}: {baseline['profile_hit']['mean_ms_per_call_unprofiled']:.2f} "
            "ms/call in process")
    return {"profile_hit": profile, "baseline": baseline, "tiers": tiers, "config_sweep": sweep,
            "chosen_config": dict(zip(("workers", "loop", "http"), chosen)),
            "concurrency": {str(c): {**v, "ratio_to_trivial": ratio(v["hit"]["rps"], v["trivial"]["rps"])}
                            for c, v in conc.items()},
            "side_by_side": main_run, "json_encoders": encoders, "sequential": probes}


def warm_baseline(bench: Bench) -> None:
    """Two requests per hit user on the baseline's API first, as ``tier_users`` does on this one: an older
    release may read other key names (``recs:42`` before the hash tags), and then its first request per
    user scores on the fly and writes its own list back."""
    import asyncio

    from bench.serving_users import _sources

    for _ in range(2):
        asyncio.run(_sources(bench.baseline.url, bench_users(bench)))


def bench_users(bench: Bench) -> list[int]:
    return [int(x) for x in Path(bench.ids["hit"]).read_text().split()]


if __name__ == "__main__":
    main()
