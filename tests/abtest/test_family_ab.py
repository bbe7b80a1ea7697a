"""An A/B test across families through the real API (in-process ASGI app, real PostgreSQL and Redis):
the hybrid LIVE (control) against the sequential model (treatment), simulated shoppers, the result."""

from __future__ import annotations

import datetime as dt
import types

import numpy as np
import pytest
from sqlalchemy import text

from ab_helpers import REDIS_URL
from asgi_client import AppClient
from recsys.lab.experiment import TOKEN
from recsys.lab.family_ab import prepare_families, run_family_ab
from recsys.lab.simulate import Shoppers
from recsys.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_the_sequential_model_against_the_hybrid_through_the_api(engine, pg_url, tmp_path):
    settings = Settings(database_url=pg_url, redis_url=REDIS_URL, artifact_uri=str(tmp_path / "artifacts"),
                        var_dir=tmp_path / "var", api_refresh_seconds=3600, admin_token=TOKEN,
                        personalized_min_events=0, ab_min_detectable_effect=1.0)
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    args = types.SimpleNamespace(shop_users=300, shop_products=60, shop_days=10, shop_seed=5, day=day, epochs=5,
                                 sequential_budget=3.0)
    prep = prepare_families(args, settings)
    try:
        shoppers = Shoppers.from_shop(prep["shop"], seed=2)
        users = np.random.default_rng(1).choice(shoppers.user_ids, size=120, replace=False).tolist()
        async with AppClient(settings) as api:
            out = await run_family_ab(api, prep, shoppers, users, day=day, fraction=0.5, hours=1,
                                      visits_per_hour=2, seed=3)
            served = {r["model_version"] for r in await _answers(api, users[:40])}
    finally:
        prep["redis"].flushdb()
    sim = out["simulation"]
    assert sim["errors"] == 0 and sim["requests"] == sim["visits"] > 120
    assert out["impressions"]["control"] > 0 and out["impressions"]["treatment"] > 0
    assert sum(out["impressions"].values()) == sim["impressions"]
    assert all(0 <= c <= 1 for c in out["ctr"].values()) and 0 <= out["pvalue"] <= 1
    assert out["winner"] in ("control", "treatment", "inconclusive") and out["decision"]
    assert out["treatment"] == prep["sequential"] and out["control"] == prep["hybrid"]
    with engine.connect() as conn:  # the treatment arm's personalised answers came from the sequential model
        models = dict(conn.execute(text("SELECT arm, string_agg(DISTINCT model_id, ',') FROM ab_impressions "
                                        "WHERE source = 'personalized' GROUP BY arm")).all())
    assert models == {"control": prep["hybrid"], "treatment": prep["sequential"]}
    live = prep["sequential"] if out["winner"] == "treatment" else prep["hybrid"]
    assert served <= {live, None}  # after the decision every answer is the LIVE model's (or a fallback tier's)


async def _answers(api, users):
    out = []
    for u in users:
        r = await api.get("/recommendations", params={"user_id": u})
        out.append(r.json())
    return out


def test_the_readme_command_runs_from_a_shell(tmp_path):
    """The README's ``python -m recsys.lab.family_ab`` as a shell runs it (no test API keys in the environment;
    sizes reduced): the lab's API gets its own key and the shoppers send it. Before, every simulated request
    was a 401 and the tool still printed an "inconclusive" result."""
    import json
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    from asgi_client import free_port
    from pg_helpers import PG_ADMIN_URL

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (command,) = re.findall(r"`(python -m recsys\.lab\.family_ab[^`]*)`", readme)
    small = ("--shop-users 300 --shop-products 60 --shop-days 10 --shop-seed 5 --users 120 --hours 1 "
             "--visits-per-hour 6 --epochs 5 --sequential-budget 3")  # ~1,000 requests: past the default rate limit
    args = [*command.split()[1:], *small.split(), "--workdir", str(tmp_path / "work"), "--port", str(free_port()),
            "--redis-url", REDIS_URL, "--pg-admin-url", PG_ADMIN_URL, "--database", f"recsys_family_ab_{os.getpid()}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AIRFLOW"))}
    try:
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
    finally:
        from sqlalchemy import create_engine, text as sql

        from recsys.db.url import normalise_database_url

        admin = create_engine(normalise_database_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sql(f'DROP DATABASE IF EXISTS "recsys_family_ab_{os.getpid()}" WITH (FORCE)'))
        admin.dispose()
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "result.json").read_text())
    assert out["simulation"]["errors"] == 0 and out["simulation"]["impressions"] > 0
    assert out["impressions"]["control"] > 0 and out["impressions"]["treatment"] > 0


def test_failed_traffic_is_an_error_not_a_result():
    from recsys.lab.simulate import SimulationError, require_clean

    refused = {"requests": 40, "impressions": 0, "errors": 40, "failures": {"GET /recommendations 401": 40}}
    with pytest.raises(SimulationError, match="40 of 40 .*401"):
        require_clean(refused)
    some = {"requests": 1000, "impressions": 980, "errors": 20, "failures": {"ReadTimeout": 20}}
    with pytest.raises(SimulationError, match="20 of 1000"):
        require_clean(some)
    fine = {"requests": 1000, "impressions": 1000, "errors": 0, "failures": {}}
    assert require_clean(fine) is fine
