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
