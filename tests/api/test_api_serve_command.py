"""``python -m recsys serve``: uvicorn with the app factory, two workers, multiprocess metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api_helpers import REDIS_URL, write_lists
from asgi_client import KEY_HEADERS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            r = httpx.get(url + "/health", timeout=1)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the server did not become healthy")


def test_serve_runs_workers_with_summed_metrics(catalog_engine, redis_client, pg_url, tmp_path):
    write_lists(redis_client)
    port = free_port()
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = {**os.environ, "RECSYS_DATABASE_URL": pg_url, "RECSYS_REDIS_URL": REDIS_URL,
           "RECSYS_ARTIFACT_URI": str(tmp_path / "artifacts"), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    proc = subprocess.Popen([sys.executable, "-m", "recsys", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "2", "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()
