"""A/B test across model families: the hybrid (LIVE, control) against the sequential model (treatment).

``python -m recsys.lab.family_ab --out result.json`` (needs PostgreSQL and Redis; torch for training):
a fresh database with the synthetic shop, both families trained on the same window and published, the
hybrid LIVE with its lists precomputed; the API in a subprocess (``python -m recsys serve``); an A/B test
created through ``POST /models/ab-test``, the arm lists precomputed, simulated shoppers
(``recsys.lab.simulate``: they click what they truly like, and every click goes back to the API, so the
sequential arm is re-scored in real time), then ``POST /ab-tests/{id}/stop``: CTR per arm, the p-value
and the decision (the registry promotes the treatment when it wins and ``RECSYS_AB_AUTO_PROMOTE`` is on).
``run_family_ab`` takes any client of the API (the tests pass the in-process ASGI app).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from recsys.lab.experiment import TOKEN, api_process, base_parser, experiment_env


def prepare_families(args, settings) -> dict:
    """The shop in the database; a hybrid (LIVE) and a sequential model trained on it, published, LIVE lists."""
    from recsys.clients import get_store, make_engine, make_redis
    from recsys.data.loading import load_shop
    from recsys.data.synthetic import generate_shop
    from recsys.db.migrate import upgrade
    from recsys.families import ConfigBase, TrainParams, family_of
    from recsys.pipeline.publish import publish_model
    from recsys.pipeline.release import make_live
    from recsys.pipeline.train import train_model

    upgrade(settings.database_url)
    engine, redis, store = make_engine(settings.database_url), make_redis(settings), get_store(settings)
    redis.flushdb()
    shop = generate_shop(n_users=args.shop_users, n_products=args.shop_products, days=args.shop_days,
                         seed=args.shop_seed, end_date=args.day)
    load_shop(engine, shop)
    day = args.day + dt.timedelta(days=1)  # train on every day of the shop
    params = TrainParams(window_days=args.shop_days + 1, epochs=args.epochs, no_components=32, threads=2, seed=1)
    hybrid = train_model(engine, store, day, params)["model_id"]
    treatment = family_of("sequential")  # this experiment's treatment family
    config = treatment.default_config(ConfigBase(params, options={treatment.name: {"time_budget_s": args.sequential_budget}}))
    sequential = train_model(engine, store, day, params, family=treatment.name, config=config)["model_id"]
    publish_model(engine, store, sequential)
    make_live(engine, store, redis, hybrid, "family A/B: the hybrid is LIVE", settings=settings, day=args.day)
    return {"engine": engine, "redis": redis, "store": store, "shop": shop, "hybrid": hybrid,
            "sequential": sequential, "settings": settings}


async def run_family_ab(client, prep: dict, shoppers, users, *, day: dt.date, fraction: float, hours: float,
                        visits_per_hour: float, seed: int) -> dict:
    """Create the test (sequential = treatment), precompute its arms, simulate, stop: the result."""
    from recsys.abtest.precompute import precompute_test_arms
    from recsys.lab.simulate import require_clean, run_simulation

    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = await client.post("/models/ab-test", headers=auth, json={
        "treatment_model_id": prep["sequential"], "control_model_id": prep["hybrid"], "duration_hours": 24,
        "treatment_fraction": fraction})
    r.raise_for_status()
    created = r.json()
    engine, settings = prep["engine"], prep["settings"]
    arms = [precompute_test_arms(engine, prep["store"], prep["redis"], day, shard, settings)
            for shard in range(settings.precompute_shards)]
    sim = require_clean(await run_simulation("", shoppers, users, hours=hours, visits_per_hour=visits_per_hour,
                                             num_items=10, concurrency=8, seed=seed, client=client))
    stopped = await client.post(f"/ab-tests/{created['test_id']}/stop", headers=auth)
    stopped.raise_for_status()
    view = stopped.json()
    results = view["results"]
    return {"test_id": created["test_id"], "control": prep["hybrid"], "treatment": prep["sequential"],
            "precomputed_users": sum(a["users"] for a in arms), "simulation": sim,
            "ctr": {arm: results["arms"][arm]["ctr"] for arm in ("control", "treatment")},
            "impressions": {arm: results["arms"][arm]["impressions"] for arm in ("control", "treatment")},
            "pvalue": view["pvalue"], "winner": view["winner"], "decision": results["decision"]}


def _parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0], "/tmp/recsys-family-ab", port=8766, database="recsys_family_ab")
    p.add_argument("--epochs", type=int, default=20, help="hybrid epochs")
    p.add_argument("--sequential-budget", type=float, default=120.0, help="sequential training budget (s)")
    return p


def main(argv=None) -> int:
    import asyncio

    import httpx

    from recsys.lab.simulate import Shoppers
    from recsys.settings import Settings

    args = _parser().parse_args(argv)
    env = experiment_env(args)
    prep = prepare_families(args, Settings())
    shoppers = Shoppers.from_shop(prep["shop"], seed=args.shop_seed)
    users = np.random.default_rng(1).choice(shoppers.user_ids, size=min(args.users, len(shoppers.user_ids)),
                                            replace=False).tolist()

    async def drive(url: str) -> dict:
        async with httpx.AsyncClient(base_url=url, timeout=300, headers={"X-API-Key": args.api_key}) as client:
            return await run_family_ab(client, prep, shoppers, users, day=args.day, fraction=args.fraction,
                                       hours=args.hours, visits_per_hour=args.visits_per_hour, seed=11)

    with api_process(env, args.port) as url:
        out = asyncio.run(drive(url))
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
