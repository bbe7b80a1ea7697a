"""The nightly DAG end to end against the number of interactions (events): ``dag.test()``.

For each size a synthetic shop of about that many events (30 days ending yesterday)
is loaded into a fresh PostgreSQL database, and the real ``recsys_nightly`` DAG runs
once with ``dag.test()`` (Airflow in a throw-away home, SQLite metadata, tasks run
one after another in this process; Redis DB 10; artifacts on local disk), with the
production training settings (64 components, WARP, ``RECSYS_EPOCHS`` epochs, all
cores). Reported: the run's wall time and every task's duration (precompute is
mapped over segments: their sum), the shop load time (not part of the DAG).
Sizes are time-boxed: a size whose predicted time (10x the previous one) does not
fit in what is left of ``--max-seconds`` is skipped and reported as skipped.

``python -m bench.bench_nightly [--sizes 100000,1000000,10000000] [--max-seconds 1500]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, log, machine, quick, write_result

EVENTS_PER_USER = 27.5  # synthetic shop over 30 days (measured)


def airflow_env(home: str) -> dict[str, str]:
    return {"AIRFLOW_HOME": home, "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "RECSYS_DAG_RETRIES": "0"}


def _clear_caches() -> None:
    import recsys_hooks

    from recsys import clients, settings

    settings.get_settings.cache_clear()
    clients.get_engine.cache_clear()
    clients.get_redis.cache_clear()
    for fn in (recsys_hooks.engine, recsys_hooks.redis_client, recsys_hooks.store):
        fn.cache_clear()


def load(url: str, n_events: int, seed: int, day: dt.date) -> dict:
    from recsys.clients import make_engine
    from recsys.data.loading import load_shop
    from recsys.data.synthetic import generate_shop

    n_users = max(500, int(n_events / EVENTS_PER_USER))
    start = time.perf_counter()
    shop = generate_shop(n_users=n_users, n_products=max(500, n_users // 20), days=30, seed=seed, end_date=day)
    engine = make_engine(url)
    load_shop(engine, shop)
    engine.dispose()
    return {"events": len(shop.events), "users": n_users, "products": len(shop.products),
            "load_seconds": time.perf_counter() - start}


def run_dag(run_date: dt.date) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    _clear_caches()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags["recsys_nightly"]
    start = time.perf_counter()
    run = dag.test(logical_date=dt.datetime(run_date.year, run_date.month, run_date.day, 1, tzinfo=dt.timezone.utc))
    wall = time.perf_counter() - start
    tasks: dict[str, float] = {}
    for ti in run.get_task_instances():
        tasks[ti.task_id] = tasks.get(ti.task_id, 0.0) + float(ti.duration or 0.0)
    return {"state": str(run.state), "dag_seconds": wall, "task_seconds": tasks}


def measure(n_events: int, seed: int) -> dict:
    from bench.fixtures import REDIS_URL, bench_database, bench_redis
    from recsys.settings import Settings

    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    with tempfile.TemporaryDirectory(prefix="recsys-bench-nightly-") as tmp, \
            bench_database(f"nightly_{n_events}") as url, bench_redis() as redis_client:
        shop = load(url, n_events, seed, day)
        os.environ.update({"RECSYS_DATABASE_URL": url, "RECSYS_REDIS_URL": REDIS_URL,
                           "RECSYS_ARTIFACT_URI": str(Path(tmp) / "artifacts")})
        out = run_dag(day + dt.timedelta(days=1))
        out["recs_keys"] = sum(1 for _ in redis_client.scan_iter("recs:*", count=10_000))
        _clear_caches()
    s = Settings()
    out.update(shop=shop, epochs=s.epochs, no_components=s.no_components, cores=os.cpu_count())
    log(f"{shop['events']} events: DAG {out['state']} in {out['dag_seconds']:.0f}s "
        f"{ {k: round(v, 1) for k, v in out['task_seconds'].items()} }")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000" if quick() else "100000,1000000,10000000")
    parser.add_argument("--max-seconds", type=float, default=300 if quick() else 1500)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started, info = time.perf_counter(), machine()
    home = tempfile.mkdtemp(prefix="recsys-bench-airflow-")
    os.environ.update(airflow_env(home))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    rows, skipped, last = [], [], None
    for n in (int(s) for s in args.sizes.split(",")):
        left = args.max_seconds - (time.perf_counter() - started)
        predicted = None if last is None else 10 * (last["dag_seconds"] + last["shop"]["load_seconds"]) * n / (
            10 * last["shop"]["events"])
        if predicted is not None and predicted > left:
            skipped.append({"events": n, "predicted_seconds": predicted, "seconds_left": left})
            log(f"{n} events skipped: predicted {predicted:.0f}s > {left:.0f}s left in the time box")
            continue
        last = measure(n, args.seed)
        rows.append(last)
    write_result("nightly", {"machine": info, "method": "dag.test() of dags/recsys_nightly.py", "sizes": rows,
                             "skipped": skipped, "max_seconds": args.max_seconds},
                 started, "python -m bench.bench_nightly " + " ".join(argv or []))


if __name__ == "__main__":
    main()
