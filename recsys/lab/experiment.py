"""End-to-end A/B experiment on a synthetic shop: real models, the real API, simulated shoppers.

``python -m recsys.lab.experiment --out result.json`` (needs PostgreSQL and Redis):
1. a fresh database with the shop, a weak model (LIVE, control) and a stronger one
   (the treatment), both trained and published; their true CTR under the shoppers'
   hidden tastes is measured offline;
2. the API in a subprocess (uvicorn); an A/B test through ``POST /models/ab-test``,
   the arm lists precomputed, simulated traffic, ``POST /ab-tests/{id}/stop``: the
   result and whether the registry promoted the treatment;
3. an A/A test (the new LIVE model in both arms) the same way;
4. many in-process A/A repetitions through the statistics (false-positive rate).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

TOKEN = "experiment-token"
LAB_KEY_NAME = "lab"  # the API key name of the simulated traffic in the API log and metrics


def _db_url(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    from recsys.db.url import normalise_database_url

    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def prepare(args, env: dict) -> dict:
    """Database, shop, two trained and published models (weak LIVE control, strong treatment), LIVE lists."""
    from recsys import registry
    from recsys.clients import make_engine, make_redis
    from recsys.data.loading import load_shop
    from recsys.data.synthetic import generate_shop
    from recsys.db.migrate import upgrade
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model
    from recsys.pipeline.precompute import precompute_all
    from recsys.pipeline.publish import publish_model
    from recsys.settings import Settings

    upgrade(env["RECSYS_DATABASE_URL"])
    settings = Settings(database_url=env["RECSYS_DATABASE_URL"], redis_url=env["RECSYS_REDIS_URL"],
                        artifact_uri=env["RECSYS_ARTIFACT_URI"])
    engine, redis = make_engine(settings.database_url), make_redis(settings)
    redis.flushdb()
    shop = generate_shop(n_users=args.shop_users, n_products=args.shop_products, days=args.shop_days,
                         seed=args.shop_seed, end_date=args.day)
    load_shop(engine, shop)
    from recsys.clients import get_store

    store = get_store(settings)
    weak = train_model(engine, store, args.day, TrainParams(window_days=args.shop_days, epochs=1, no_components=4,
                                                             threads=2, seed=1))["model_id"]
    strong = train_model(engine, store, args.day, TrainParams(window_days=args.shop_days, epochs=20,
                                                               no_components=32, threads=2, seed=1))["model_id"]
    for model_id in (weak, strong):
        publish_model(engine, store, model_id)
    registry.promote(engine, weak, reason="experiment: the weak model is LIVE")
    precompute_all(engine, store, redis, day=args.day, settings=settings)
    return {"engine": engine, "redis": redis, "store": store, "shop": shop, "weak": weak, "strong": strong,
            "settings": settings}


def true_ctr(engine, store, shoppers, model_id: str, users, k: int = 10) -> float:
    """Mean true probability of a click on the model's top-k list (the shoppers' hidden tastes)."""
    from recsys.families.vectors.files import read_embeddings

    from recsys import registry

    emb = read_embeddings(store, model_id, registry.get_artifacts(engine, model_id))
    index = {int(u): i for i, u in enumerate(emb["user_ids"])}
    uv, iv, items = emb["user_vectors"], emb["item_vectors"], emb["item_ids"]
    out = []
    for u in users:
        if int(u) in index:
            top = items[np.argsort(-(iv @ uv[index[int(u)]]))[:k]]
            out.append(shoppers.expected_ctr(int(u), top))
    return float(np.mean(out))


@contextlib.contextmanager
def api_process(env: dict, port: int, cwd: str | None = None):
    """``python -m recsys serve`` in a subprocess, up when /health answers."""
    proc = subprocess.Popen([sys.executable, "-m", "recsys", "serve", "--port", str(port), "--log-level", "warning"],
                            env=env, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("the API did not come up")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def ab_run(url: str, prep: dict, shoppers, users, *, treatment: str, control: str, args, seed: int) -> dict:
    """Create a test through the API, precompute its arm lists, simulate traffic, stop it; the final view."""
    from recsys.abtest.precompute import precompute_test_arms
    from recsys.lab.simulate import require_clean, run_simulation

    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{url}/models/ab-test", headers=auth, timeout=30, json={
        "treatment_model_id": treatment, "control_model_id": control, "duration_hours": 24,
        "treatment_fraction": args.fraction})
    r.raise_for_status()
    created = r.json()
    arms = [precompute_test_arms(prep["engine"], prep["store"], prep["redis"], args.day, shard, prep["settings"])
            for shard in range(prep["settings"].precompute_shards)]
    sim = require_clean(asyncio.run(run_simulation(url, shoppers, users, hours=args.hours,
                                                   visits_per_hour=args.visits_per_hour, num_items=10, concurrency=8,
                                                   seed=seed, api_key=args.api_key)))
    stopped = httpx.post(f"{url}/ab-tests/{created['test_id']}/stop", headers=auth, timeout=300)
    stopped.raise_for_status()
    view = stopped.json()
    return {"created": created, "precomputed_users": sum(a["users"] for a in arms), "simulation": sim,
            "winner": view["winner"], "pvalue": view["pvalue"], "ctr_test": view["results"]["ctr_test"],
            "arms": view["results"]["arms"], "decision": view["results"]["decision"], "view": view}


def _database_name(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise argparse.ArgumentTypeError(f"{value!r}: lower-case letters, digits and _ only (it is dropped and created)")
    return value


def base_parser(description: str, workdir: str, port: int, database: str) -> argparse.ArgumentParser:
    """The options every experiment of the lab shares: stores, the shop, the simulated traffic, the API's
    port and the results file."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=port)
    p.add_argument("--out", default=None)
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--database", default=database, type=_database_name,
                   help="the experiment's PostgreSQL database, dropped and created afresh (two runs at once need two)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    p.add_argument("--workdir", default=workdir)
    p.add_argument("--shop-users", type=int, default=3000)
    p.add_argument("--shop-products", type=int, default=300)
    p.add_argument("--shop-days", type=int, default=30)
    p.add_argument("--shop-seed", type=int, default=42)
    p.add_argument("--users", type=int, default=1500, help="simulated shoppers per test")
    p.add_argument("--hours", type=float, default=3.0)
    p.add_argument("--visits-per-hour", type=float, default=1.0)
    p.add_argument("--fraction", type=float, default=0.5)
    p.add_argument("--mde", type=float, default=0.2)
    return p


def experiment_env(args) -> dict:
    """The environment of the experiment's API and pipeline (a fresh ``args.database``), also set in this process;
    ``args.day`` becomes yesterday and ``args.api_key`` the API key of this run (the API refuses requests
    without one: the simulated shoppers send it; its rate limit is off, since every shopper shares it); the
    request-id secret is generated per run too (the API and the A/B results share it, as in production)."""
    args.day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    args.api_key = secrets.token_urlsafe(24)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RECSYS_DATABASE_URL=_db_url(args.pg_admin_url, args.database),
               RECSYS_REDIS_URL=args.redis_url, RECSYS_ARTIFACT_URI=str(work / "artifacts"),
               RECSYS_API_KEYS=f"{LAB_KEY_NAME}:{args.api_key}",
               # the simulated shop's traffic all comes through this one key: no per-key limit for it
               RECSYS_RATE_LIMITS=json.dumps({LAB_KEY_NAME: [0, 1]}),
               RECSYS_ADMIN_TOKEN=TOKEN, RECSYS_REQUEST_ID_SECRET=secrets.token_hex(32),
               RECSYS_PERSONALIZED_MIN_EVENTS="0", RECSYS_API_REFRESH_SECONDS="5",
               RECSYS_AB_MIN_DETECTABLE_EFFECT=str(args.mde), RECSYS_VAR_DIR=str(work / "var"))
    os.environ.update({k: v for k, v in env.items() if k.startswith("RECSYS_")})
    return env


def _parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0], "/tmp/recsys-ab-experiment", port=8765,
                    database="recsys_ab_experiment")
    p.add_argument("--aa-reps", type=int, default=2000)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    env = experiment_env(args)
    from recsys.lab.calibration import repeat
    from recsys.lab.simulate import Shoppers

    prep = prepare(args, env)
    shoppers = Shoppers.from_shop(prep["shop"], seed=args.shop_seed)
    users = np.random.default_rng(1).choice(shoppers.user_ids, size=args.users, replace=False).tolist()
    truth = {name: true_ctr(prep["engine"], prep["store"], shoppers, prep[name], users) for name in ("weak", "strong")}
    out = {"models": {"control": prep["weak"], "treatment": prep["strong"]}, "true_ctr": truth}
    with api_process(env, args.port) as url:
        out["ab"] = ab_run(url, prep, shoppers, users, treatment=prep["strong"], control=prep["weak"], args=args,
                           seed=11)
        status = httpx.get(f"{url}/models/status", headers={"X-API-Key": args.api_key})
        status.raise_for_status()
        out["live_after_ab"] = status.json()["model_version"]
        live = out["live_after_ab"]
        out["aa"] = ab_run(url, prep, shoppers, users, treatment=live, control=live, args=args, seed=12)
    lists = {}
    rng = np.random.default_rng(3)
    items = np.arange(1, args.shop_products + 1)
    for u in users:
        lists[u] = list(items[np.argsort(-(shoppers.relevance(u, items) + 1.5 * rng.normal(size=len(items))))[:10]])
    out["aa_in_process"] = repeat(shoppers, users, {"control": lists, "treatment": lists}, repetitions=args.aa_reps,
                                  fraction=args.fraction, visits_mean=max(1.0, args.hours * args.visits_per_hour),
                                  mde=args.mde, seed=5)
    text = json.dumps({k: v for k, v in out.items()}, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0



def cache_hit_latency(url: str, user_ids: list[int], n: int) -> dict:
    """Sequential ``GET /recommendations`` of users with a cached list over one keep-alive connection."""
    times = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for u in user_ids[:50]:  # warm: seeded sessions, cached lists
            client.get("/recommendations", params={"user_id": u})
        for i in range(n):
            started = time.perf_counter()
            r = client.get("/recommendations", params={"user_id": user_ids[i % len(user_ids)]})
            times.append(time.perf_counter() - started)
            r.raise_for_status()
    ms = np.asarray(times) * 1000
    return {"n": n, "mean_ms": float(ms.mean()), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def compare_latency(env: dict, head_dir: str, user_ids: list[int], n: int, rounds: int, port: int) -> dict:
    """Cache-hit latency of the code at ``head_dir`` (before) and of this code (after), alternating."""
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(rounds):
        for name, cwd in (("before", head_dir), ("after", None)):
            run_env = dict(env, PYTHONPATH=head_dir) if cwd else env
            with api_process(run_env, port, cwd=cwd) as url:
                runs[name].append(cache_hit_latency(url, user_ids, n))
    return {name: {k: float(np.median([r[k] for r in rs])) for k in ("mean_ms", "p50_ms", "p99_ms")} | {"runs": rs}
            for name, rs in runs.items()}


if __name__ == "__main__":
    sys.exit(main())
