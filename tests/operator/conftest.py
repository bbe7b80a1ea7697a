"""One real Airflow stack per test module (see airflow_stack.py), and the on-call webhook it pages.

Fresh PostgreSQL databases (Airflow metadata, recsys), the recsys Redis test DB,
S3 on a moto server, a tiny synthetic shop. Ports: RECSYS_TEST_AIRFLOW_PORT,
RECSYS_TEST_MOTO_PORT, RECSYS_TEST_WEBHOOK_PORT, RECSYS_TEST_LOG_SERVER_PORT,
RECSYS_TEST_TRIGGERER_LOG_PORT (each a free port when unset).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from airflow_stack import ADMIN_PASSWORD, ADMIN_USER, COMPONENTS, REPO, AirflowStack, port_from_env, wait_for
from recsys.db.url import normalise_database_url
from shop_dates import REDIS_URL

PG_ADMIN_URL = os.environ.get("RECSYS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
SHORT_DEADLINE_HOURS = "0.004"  # 14.4 s: every real run of the stack misses it and pages
BUCKET = "recsys-ops"


class Webhook:
    """A local Slack-compatible webhook: keeps every alert posted to it."""

    def __init__(self, port: int):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hooks/oncall"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, kind_icon: str) -> list[str]:
        return [m["text"] for m in self.received if m.get("text", "").startswith(kind_icon)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _fresh_database(admin, prefix: str) -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return name


def _base_env() -> dict[str, str]:
    """This process's environment without the Airflow/recsys/AWS settings pytest's conftest set."""
    drop = ("AIRFLOW", "RECSYS_", "AWS_", "_AIRFLOW")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `airflow`, `python`: this venv
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook(port_from_env("RECSYS_TEST_WEBHOOK_PORT"))
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def stack(webhook):
    from moto.server import ThreadedMotoServer

    root = Path(tempfile.mkdtemp(prefix="recsys-operator-"))
    admin = create_engine(normalise_database_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    pg_base = normalise_database_url(PG_ADMIN_URL).rsplit("/", 1)[0]
    names: list[str] = []
    moto = stack = None
    redis_db = int(REDIS_URL.rsplit("/", 1)[1])
    try:
        names = [_fresh_database(admin, "airflow_ops"), _fresh_database(admin, "recsys_ops")]
        airflow_db, recsys_db = names
        api_port = port_from_env("RECSYS_TEST_AIRFLOW_PORT")
        moto_port = port_from_env("RECSYS_TEST_MOTO_PORT")
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        (root / "passwords.json").write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
        env = _base_env() | {
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{airflow_db}",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port_from_env("RECSYS_TEST_LOG_SERVER_PORT")),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port_from_env("RECSYS_TEST_TRIGGERER_LOG_PORT")),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",  # parse once: the files do not change
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "RECSYS_DATABASE_URL": f"{pg_base}/{recsys_db}",
            "RECSYS_REDIS_URL": REDIS_URL,
            "RECSYS_ARTIFACT_URI": f"s3://{BUCKET}/artifacts",
            "RECSYS_REQUEST_ID_SECRET": uuid.uuid4().hex,  # RECSYS_ENVIRONMENT unset: production's checks
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "RECSYS_NO_COMPONENTS": "8", "RECSYS_EPOCHS": "5", "RECSYS_TRAINING_WINDOW_DAYS": "7",
            # the nightly run's own model choice, time-boxed for the tiny shop: two families selected, the first
            # night's weekly search 20 s, the sequential branch 10 s of wall clock (defaults: all, 1200 s, 600 s)
            "RECSYS_SELECTION_CANDIDATES": "hybrid-default,item-knn", "RECSYS_TUNING_BUDGET_SECONDS": "20",
            "RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS": "10",
            "RECSYS_DAG_RETRIES": "0",
            "RECSYS_DAG_DEADLINE_HOURS": SHORT_DEADLINE_HOURS,
            "RECSYS_ALERT_WEBHOOK_URL": webhook.url,
            "RECSYS_VAR_DIR": str(root / "var"),
        }
        redis.Redis.from_url(REDIS_URL).flushdb()
        stack = AirflowStack(root, env, api_port)
        stack.recsys_db_url, stack.airflow_db, stack.redis_db, stack.bucket = env["RECSYS_DATABASE_URL"], airflow_db, redis_db, BUCKET
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        stack.run("python -m recsys db upgrade")
        stack.run("python -m recsys generate --users 300 --products 60 --days 10 --seed 5")
        stack.airflow("db", "migrate", timeout=600)
        for component in COMPONENTS:
            stack.start(component, component)
        wait_for(lambda: stack.api("GET", "/dags/recsys_nightly").status_code == 200, timeout=180,
                 what="the api-server to answer and the dag-processor to parse recsys_nightly", every=2, stack=stack)
        yield stack
    finally:
        if stack is not None:
            stack.stop_all()
            if os.environ.get("RECSYS_TEST_KEEP_AIRFLOW_LOGS"):
                print(f"operator-suite logs kept in {root}")
        if moto is not None:
            moto.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        if not os.environ.get("RECSYS_TEST_KEEP_AIRFLOW_LOGS"):
            shutil.rmtree(root, ignore_errors=True)
