"""``python -m recsys serve``: uvicorn with the app factory, two workers, multiprocess metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest

from api_helpers import write_lists
from asgi_client import KEY_HEADERS
from serve_helpers import ROOT, start_serve, stop, wait_healthy

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_workers_with_summed_metrics(catalog_engine, redis_client, pg_url, tmp_path):
    write_lists(redis_client)
    port = free_port()
    proc = start_serve(pg_url, tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_healthy(url, proc)
        assert health.json()["status"] == "ok" and health.headers["x-request-id"]
        with httpx.Client(base_url=url, timeout=5, headers=KEY_HEADERS) as client:
            for user in range(1, 21):
                r = client.get("/recommendations", params={"user_id": user})
                assert r.status_code == 200 and r.json()["source"] == "trending"
            text = client.get("/metrics").text
        assert 'recsys_request_latency_seconds_count{endpoint="/recommendations"} 20.0' in text
        assert 'recsys_recommendation_source_total{source="trending"} 20.0' in text
    finally:
        stop(proc)


def serve_without_settings(**env: str):
    """``python -m recsys serve`` as an operator starts it: none of the suite's RECSYS_* variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    return subprocess.run([sys.executable, "-m", "recsys", "serve", "--port", str(free_port())], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_serve_without_an_environment_refuses_the_placeholder_secret_in_one_line():
    out = serve_without_settings()  # the README's command, nothing set
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "RECSYS_REQUEST_ID_SECRET" in lines[0], out.stderr


@pytest.mark.parametrize("env, secret", [
    ({"RECSYS_API_KEYS": "shop:Mn2Rc6Lg"}, "Mn2Rc6Lg"),
    ({"RECSYS_API_KEYS": "Mn2Rc6LgMn2Rc6LgMn2Rc6Lg"}, "Mn2Rc6Lg"),  # the key without its name
    ({"RECSYS_ADMIN_TOKEN": "Pk4Jh7Ty"}, "Pk4Jh7Ty"),
])
def test_serve_names_a_bad_secret_without_echoing_it(env, secret):
    out = serve_without_settings(RECSYS_REQUEST_ID_SECRET="r" * 32, **env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and next(iter(env)) in lines[0], out.stderr
    assert not [secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in out.stderr + out.stdout]
