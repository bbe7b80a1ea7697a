"""A week in the life of a shop, on PostgreSQL: state that builds up over days.

Seven simulated days. Each day the synthetic generator adds that day's events,
the real API (``python -m recsys serve``, a separate process) serves traffic
(recommendations, clicks on what it showed, purchases), the nightly DAG runs for
that day, and the hourly A/B DAG flushes the impressions and computes results.
The first days' impressions are logged while no A/B test runs; from day 3 the
nightly run uses the ``ab_test`` promotion policy, so the first candidate that
wins starts a test (on day 2 an operator forced a one-epoch model live, so the
next candidate beats it); near the end the operator rolls back with the CLI. A malformed impression entry is injected on day 4.

After every day: exactly one LIVE model; every list the API served names a model
that exists in the registry; the impression stream has no backlog; the
dead-letter count is what the test injected; the API log has no unhandled error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from recsys.clients import make_engine
from recsys.keys import IMPRESSIONS_GROUP, KEY_IMPRESSIONS
from recsys.data.synthetic import Shop, generate_shop
from pg_helpers import clear_client_caches, flushed_redis, fresh_database
from shop_dates import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "week-admin-token-0123456789"
SHOP_KEY = "week-shop-key-0123456789abcdef"
TODAY = dt.datetime.now(dt.timezone.utc).date()
WEEK = [TODAY - dt.timedelta(days=7 - i) for i in range(7)]  # the seven processed days, the last is yesterday
SHOPPERS = 60  # users who ask for recommendations each day
INJECTED_DEAD_LETTERS = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def database():
    with fresh_database("recsys_week") as url:
        engine = make_engine(url)
        yield url, engine
        engine.dispose()


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="recsys-week")
    yield url
    server.stop()


@pytest.fixture(scope="module")
def env(database, s3_endpoint, tmp_path_factory):
    """The environment every process of the week shares (API, CLI, the DAGs in this process)."""
    url, _ = database
    var = tmp_path_factory.mktemp("week-var")
    values = {
        "RECSYS_DATABASE_URL": url,
        "RECSYS_REDIS_URL": REDIS_URL,
        "RECSYS_ARTIFACT_URI": "s3://recsys-week/artifacts",
        "RECSYS_VAR_DIR": str(var),
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RECSYS_ADMIN_TOKEN": ADMIN_TOKEN,
        "RECSYS_API_KEYS": f"shop-backend:{SHOP_KEY}",
        "RECSYS_REQUEST_ID_SECRET": "week-request-id-secret-0123456789",  # the API signs, the hourly DAG checks
        "RECSYS_NO_COMPONENTS": "32",
        "RECSYS_EPOCHS": "15",
        "RECSYS_TRAIN_THREADS": "1",
        "RECSYS_TRAINING_WINDOW_DAYS": "21",
        "RECSYS_API_REFRESH_SECONDS": "1",
        "RECSYS_AB_DEFAULT_DURATION_HOURS": "72",
        "RECSYS_AB_DEFAULT_TREATMENT_FRACTION": "0.5",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    clear_client_caches()
    yield values
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    clear_client_caches()



@pytest.fixture(scope="module")
def shop(database, env):
    """Three weeks of history before the week; the week's days are loaded one per simulated day."""
    from recsys.data.loading import load_shop

    _, engine = database
    full = generate_shop(n_users=800, n_products=120, days=28, seed=11, end_date=WEEK[-1])
    days = full.events["timestamp"].map(lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date())
    load_shop(engine, Shop(full.users, full.products, full.events[days < WEEK[0]]))
    return full, days


@pytest.fixture(scope="module")
def redis_client():
    with flushed_redis(REDIS_URL) as client:  # module scope: the week's state stays between its days
        yield client


@pytest.fixture(scope="module")
def api(env, redis_client, tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("week-api") / "api.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsys", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"the API did not start: {log_path.read_text()[-3000:]}")
    client = httpx.Client(base_url=base, timeout=10, headers={"X-API-Key": SHOP_KEY})
    yield client, log_path
    client.close()
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def dags(env):
    """Each run gets the DAG freshly parsed, as a scheduler's task process does.

    Reusing one DAG object across dag.test() calls leaks a run's conf into the next
    run's params: Airflow's process_params copies the DAG's Param objects by
    reference and resolve(value=...) stores the conf value on them.
    """
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    def load(dag_id: str):
        bag = DagBag(dag_folder=str(REPO / "dags"))
        assert bag.import_errors == {}
        return bag.dags[dag_id]

    return load


# --- one simulated day --------------------------------------------------------------


def _serve_traffic(client, users: list[int], day_index: int) -> list[str | None]:
    """Each shopper asks for recommendations; some click what they were shown, some buy it."""
    versions = []
    now_ms = int(time.time() * 1000)
    for n, user_id in enumerate(users):
        answer = client.get("/recommendations", params={"user_id": user_id, "num_items": 10})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        versions.append(body["model_version"])
        if not body["items"] or n % 3:
            continue
        product = body["items"][0]["product_id"]
        event_id = f"week-{day_index}-{user_id}"
        click = client.post("/events/click", json={
            "user_id": user_id, "product_id": product, "timestamp": now_ms, "request_id": body["request_id"],
            "event_id": f"{event_id}-c"})
        assert click.status_code == 200, click.text
        if n % 2 == 0:
            buy = client.post("/events/purchase", json={
                "user_id": user_id, "product_id": product, "timestamp": now_ms, "price": 12.5,
                "event_id": f"{event_id}-p"})
            assert buy.status_code == 200, buy.text
    return versions


def _run_nightly(dags, day: dt.date, conf: dict):
    logical = dt.datetime(day.year, day.month, day.day, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    run = dags("recsys_nightly").test(logical_date=logical, run_conf=conf)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", (day, states)
    return states


def _run_hourly(dags):
    run = dags("recsys_ab_results").test(logical_date=dt.datetime.now(dt.timezone.utc))
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}


def _registry(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT model_id, status FROM recommendation_models")).all())


def _backlog(redis_client) -> dict:
    groups = {g["name"].decode(): g for g in redis_client.xinfo_groups(KEY_IMPRESSIONS)}
    group = groups[IMPRESSIONS_GROUP]
    return {"pending": group["pending"], "lag": group.get("lag")}


def _dead_letters(engine) -> int:
    from recsys.abtest import dead_letters

    return dead_letters.count(engine)


def _api_errors(log_path: Path) -> list[str]:
    lines = log_path.read_text().splitlines()
    return [ln for ln in lines if "Traceback" in ln or " ERROR " in ln or ln.startswith("ERROR")]


def test_a_week_in_the_life(database, shop, api, dags, redis_client):
    from recsys.data.loading import load_shop

    _, engine = database
    full, days = shop
    client, log_path = api
    users = sorted(full.users["user_id"].tolist())
    test_id = started_on = None
    rolled_back = None

    for i, day in enumerate(WEEK):
        load_shop(engine, Shop(full.users, full.products, full.events[days == day]))
        shoppers = users[(i * SHOPPERS) % len(users):][:SHOPPERS]
        served = _serve_traffic(client, shoppers, i)

        conf = {"epochs": 15}
        if i == 1:  # during an incident an operator forces a quick one-epoch model live
            conf = {"epochs": 1, "force_promotion": True}
        if i >= 2:  # from mid-week a winning candidate waits for an A/B test against LIVE
            conf["promotion_policy"] = "ab_test"
        _run_nightly(dags, day, conf)

        if i == 4:  # a malformed entry reaches the stream (e.g. an old API version's field names)
            redis_client.xadd(KEY_IMPRESSIONS, {"garbage": "1", "user_id": "not-a-number"})
        if i == 5:  # near the end, on-call rolls back with the CLI
            out = subprocess.run([sys.executable, "-m", "recsys", "models", "rollback"], cwd=REPO,
                                 capture_output=True, text=True, env=os.environ.copy())
            assert out.returncode == 0, out.stderr
            rolled_back = json.JSONDecoder().raw_decode(out.stdout.lstrip())[0]["model_id"]

        time.sleep(1.0)  # the API hands buffered impressions to Redis every 0.25 s
        _run_hourly(dags)

        # --- what must hold after every day ---
        models = _registry(engine)
        live = [m for m, status in models.items() if status == "LIVE"]
        assert len(live) == 1, (day, models)
        assert all(v is None or v in models for v in served), (day, set(served) - set(models))
        assert _backlog(redis_client) == {"pending": 0, "lag": 0}, day
        assert _dead_letters(engine) == (INJECTED_DEAD_LETTERS if i >= 4 else 0), day
        assert _api_errors(log_path) == [], day
        if rolled_back:
            assert live == [rolled_back] or i > 5
        status = client.get("/models/status")
        assert status.status_code == 200 and status.json()["model_version"] == live[0], status.text
        time.sleep(2.5)  # the API reloads its model every RECSYS_API_REFRESH_SECONDS

        with engine.connect() as conn:
            running = conn.execute(text("SELECT test_id FROM ab_tests WHERE status = 'RUNNING'")).scalars().all()
        if running and test_id is None:
            test_id, started_on = running[0], i
            assert i >= 2
        if test_id is not None:
            dashboard = client.get(f"/ab-tests/{test_id}/dashboard", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert dashboard.status_code == 200, dashboard.text
            results = client.get(f"/ab-tests/{test_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert results.status_code == 200, results.text

    assert test_id is not None, "no A/B test was started during the week"
    assert started_on <= 3, "the candidate that beats the forced one-epoch model should start a test mid-week"
    with engine.connect() as conn:
        impressions = conn.execute(text("SELECT count(*), count(test_id) FROM ab_impressions")).one()
    assert impressions[0] >= len(WEEK) * SHOPPERS  # every answer was flushed, test or not
    assert 0 < impressions[1] < impressions[0]     # impressions before the test carry no test id
