"""Event ingestion: durable events per second through the API into PostgreSQL, nothing lost.

At each concurrency the load generator (``bench/ingest_client.py``, its own process)
sends a fixed number of events to ``POST /events`` and, alternately in the same run,
the same rows as single-row INSERT transactions straight into PostgreSQL (the
reference: this database's durable commit rate). After every API run the rows are
counted: every acknowledged event must be in ``user_events`` (by its client event id).
The batch mode, alternately too, sends ``--batch`` events per request to ``POST /events/batch``
(``--batch-events`` per run, so that every level keeps its requests in flight), counted the same way.
With ``--baseline TREE`` (a git worktree of an older commit) that tree's API runs beside this one, on
the same database, Redis and server settings, and its single-event and batch runs alternate with
this one's (``api_base``, ``batch_base``): a before/after measured in one run.

``python -m bench.bench_ingest [--events 5000] [--levels 8,32,64] [--repeats 3] [--batch 100]
[--batch-events 50000] [--baseline ../before]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.common import REPO, RESULTS_DIR, log, machine, quick, ratio, summary, write_result
from bench.fixtures import REDIS_URL, bench_database, bench_redis, serve_ready_shop
from bench.loadgen import Server
from bench.serving_baseline import git_commit
from recsys.clients import make_engine

API_PORT = int(os.environ.get("RECSYS_BENCH_INGEST_PORT", "18090"))  # another port when benches run side by side


def chosen_server_config() -> dict:
    """The server settings the serving benchmark found best (its results file), else one uvloop worker."""
    path = RESULTS_DIR / "serving.json"
    if path.exists():
        return json.loads(path.read_text()).get("chosen_config") or {}
    return {"workers": 1, "loop": "uvloop", "http": "httptools"}


def free_connections(engine) -> int:
    """Connections PostgreSQL can still accept (max_connections less the reserved and the open ones)."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity)")).scalar())


def client(mode: str, args, shop, prefix: str, concurrency: int, acked_file: str, pool: int = 0) -> dict:
    """One run of the load generator: ``api`` (one event per request), ``batch`` (``args.batch`` per request)
    or ``pg`` (the reference); ``api_base`` and ``batch_base`` against the baseline's API."""
    dsn = shop.url.replace("postgresql+psycopg://", "postgresql://")
    kind, _, base = mode.partition("_")
    events, batch = (args.batch_events, args.batch) if kind == "batch" else (args.events, 0)
    port = API_PORT + 1 if base else API_PORT
    cmd = [sys.executable, "-m", "bench.ingest_client", "--mode", "pg" if mode == "pg" else "api",
           "--url", f"http://127.0.0.1:{port}", "--batch", str(batch),
           "--dsn", dsn, "--events", str(events), "--concurrency", str(concurrency),
           "--users", str(shop.users), "--products", str(shop.products), "--prefix", prefix,
           "--acked-file", acked_file, "--pool", str(pool)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:  # e.g. too many connections for the reference's pool: say so
        raise RuntimeError(f"ingest_client --mode {mode} -c {concurrency} failed: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def count_check(engine, prefix: str, acked_file: str) -> dict:
    """Rows stored under ``prefix`` against the acknowledged ids: none missing, none doubled."""
    acked = {x for x in Path(acked_file).read_text().split() if x}
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT client_event_id FROM user_events "
                                                  "WHERE client_event_id LIKE :p"), {"p": prefix + "-%"})]
    missing = acked - set(stored)
    return {"acked": len(acked), "rows": len(stored), "missing": len(missing),
            "duplicates": len(stored) - len(set(stored)), "stored_not_acked": len(set(stored) - acked),
            "ok": not missing and len(stored) == len(set(stored))}


def level_modes(batch: int, baseline: bool) -> tuple[str, ...]:
    """The runs of a level, in the order they alternate."""
    modes = ("api", "batch") if batch else ("api",)
    if baseline:
        modes = tuple(m for mode in modes for m in (mode, f"{mode}_base"))
    return modes + ("pg",)


def measure_level(args, shop, engine, concurrency: int, tmp: Path) -> dict:
    modes = level_modes(args.batch, bool(args.baseline))
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    checks: dict[str, list[dict]] = {mode: [] for mode in modes if mode != "pg"}
    for rep in range(args.repeats):
        for mode in modes:
            prefix = f"bench-c{concurrency}-r{rep}-{mode}"
            acked_file = str(tmp / f"{prefix}.txt")
            # on a shared server the reference may get fewer connections than clients (kept in the results)
            pool = min(concurrency, free_connections(engine) - 4) if mode == "pg" else 0
            res = {**client(mode, args, shop, prefix, concurrency, acked_file, pool), "pool": pool or None}
            check = count_check(engine, prefix, acked_file)
            runs[mode].append(res)
            if mode != "pg":
                checks[mode].append(check)
            log(f"c={concurrency} {mode}: {res['events_per_s']:.0f} events/s, acked {res['acked']}/{res['sent']},"
                f" rows {check['rows']}, missing {check['missing']}, errors {res['errors']}")
    out = {mode: {"events_per_s": summary([r["events_per_s"] for r in rs]),
                  "p50_ms": summary([r["p50_ms"] for r in rs]), "p99_ms": summary([r["p99_ms"] for r in rs]),
                  "sent": sum(r["sent"] for r in rs), "acked": sum(r["acked"] for r in rs),
                  "errors": [r["errors"] for r in rs], "pool": [r["pool"] for r in rs]} for mode, rs in runs.items()}
    out["ratio_api_to_pg"] = ratio(out["api"]["events_per_s"], out["pg"]["events_per_s"])
    out["count_checks"] = checks["api"]
    if args.batch:
        out["batch"] = {**out["batch"], "events_per_request": args.batch, "events_per_run": args.batch_events}
        out["ratio_batch_to_pg"] = ratio(out["batch"]["events_per_s"], out["pg"]["events_per_s"])
        out["batch_count_checks"] = checks["batch"]
    for mode in ("api_base", "batch_base"):
        if mode in checks:
            out[f"{mode}_count_checks"] = checks[mode]
    out["nothing_lost"] = all(c["ok"] for mode in ("api", "batch") for c in checks.get(mode, []))
    if args.baseline:
        out["baseline_nothing_lost"] = all(c["ok"] for mode in ("api_base", "batch_base") for c in checks.get(mode, []))
    return out


def pg_settings(engine) -> dict:
    with engine.connect() as conn:
        return {name: conn.execute(text(f"SHOW {name}")).scalar() for name in
                ("synchronous_commit", "fsync", "wal_sync_method", "shared_buffers", "max_connections")}


def ingest_settings() -> dict:
    """The group-commit settings the API ran with (their defaults: the bench sets none of them)."""
    from recsys.settings import Settings

    names = ("ingest_batch_max", "ingest_batches_in_flight", "ingest_batch_wait_ms")
    return {n: Settings.model_fields[n].default for n in names if n in Settings.model_fields}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1500 if quick() else 5000)
    parser.add_argument("--levels", default="8,32" if quick() else "8,32,64")
    parser.add_argument("--repeats", type=int, default=2 if quick() else 3)
    parser.add_argument("--batch", type=int, default=100, help="events per POST /events/batch (0: no batch runs)")
    parser.add_argument("--batch-events", type=int, default=10_000 if quick() else 50_000,
                        help="events per batch run (more than --events: a run must keep every client busy)")
    parser.add_argument("--baseline", default="", help="a source tree (say a git worktree of an older commit) "
                                                       "whose API is measured beside this one, alternately")
    args = parser.parse_args(argv)
    baseline = {"source": str(Path(args.baseline).resolve()), "git_commit": git_commit(Path(args.baseline))} \
        if args.baseline else None
    started, info, config = time.perf_counter(), machine(), chosen_server_config()
    with tempfile.TemporaryDirectory(prefix="recsys-bench-ingest-") as tmp, bench_database("ingest") as url, \
            bench_redis() as redis_client:
        shop = serve_ready_shop(url, redis_client, str(Path(tmp) / "artifacts"), n_users=5000, n_products=1000,
                                epochs=2)
        engine = make_engine(url)
        env = {"RECSYS_DATABASE_URL": url, "RECSYS_REDIS_URL": REDIS_URL, "RECSYS_ARTIFACT_URI": shop.artifact_dir}
        if config.get("workers", 1) > 1:
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prom-", dir=tmp)
        server_args = {"workers": config.get("workers", 1), "loop": config.get("loop", "uvloop"),
                       "http": config.get("http", "httptools"), "env": env, "ready_path": "/health"}
        with contextlib.ExitStack() as servers:
            started_servers = [servers.enter_context(Server("recsys", API_PORT, log_path=Path(tmp) / "api.log",
                                                            **server_args))]
            if baseline:
                started_servers.append(servers.enter_context(Server(
                    "recsys", API_PORT + 1, log_path=Path(tmp) / "api-baseline.log", source=Path(args.baseline),
                    **{**server_args, "env": {**env, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=tmp)}})))
            for server in started_servers:
                server.wait_ready()
            levels = {int(c): measure_level(args, shop, engine, int(c), Path(tmp)) for c in args.levels.split(",")}
        settings = pg_settings(engine)
        engine.dispose()
    write_result("ingest", {"machine": info, "server": config, "ingest_settings": ingest_settings(),
                            "postgres": settings, "events_per_run": args.events, "baseline": baseline,
                            "levels": {str(k): v for k, v in levels.items()},
                            "nothing_lost": all(v["nothing_lost"] for v in levels.values())},
                 started, "python -m bench.bench_ingest " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
