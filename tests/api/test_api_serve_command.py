"""``python -m recsys serve``: uvicorn with the app factory, two workers, multiprocess metrics."""

from __future__ import annotations

import socket

import httpx
import pytest

from api_helpers import write_lists
from asgi_client import KEY_HEADERS
from serve_helpers import start_serve, stop, wait_healthy

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
