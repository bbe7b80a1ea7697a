"""``kill -9`` of an API worker under event load loses no acknowledged event.

The real server (``python -m recsys serve``, two uvicorn workers) takes concurrent
``POST /events`` with client event ids; mid-load one worker is killed with SIGKILL
(its queued and in-flight batches die with it) and the load goes on against the
other. Afterwards every event that got a 200 ``logged`` answer must be a row of
``user_events``: an answer is only sent after the commit of the batch holding the event.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import httpx
import psutil
import pytest
from sqlalchemy import text

from api_helpers import now_ms, pid, write_lists
from asgi_client import KEY_HEADERS
from serve_helpers import start_serve, stop, wait_healthy
from worker_resources import port_block

PORTS = port_block(18300, 50)  # this suite's port range for servers it starts (one per pytest-xdist worker)
CONCURRENCY = 32
pytestmark = pytest.mark.integration


def free_port_in_range() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


async def drive(url: str, stop: asyncio.Event, acked: list[str], errors: dict[str, int]) -> None:
    """CONCURRENCY clients posting distinct events until ``stop``; a 200 ``logged`` id goes to ``acked``."""
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, headers=KEY_HEADERS, timeout=10, limits=limits) as http:
        async def client() -> None:
            while not stop.is_set():
                i = next(counter)
                body = {"user_id": 1 + i % 500, "product_id": pid(("Books", "Home", "Shoes")[i % 3], 1 + i % 4),
                        "timestamp": now_ms(), "event_type": "VIEW", "event_id": f"kill-{i}"}
                try:
                    r = await http.post("/events", json=body)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await asyncio.sleep(0.01)
                    continue
                if r.status_code == 200 and r.json()["status"] == "logged":
                    acked.append(body["event_id"])
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


def busiest(workers: list[psutil.Process], port: int) -> psutil.Process:
    """The worker holding the most client connections (the kernel need not spread them evenly)."""
    def held(p: psutil.Process) -> int:
        return sum(c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in p.net_connections())

    return max(workers, key=held)


async def load_and_kill(url: str, workers: list[psutil.Process], port: int) -> tuple[list[str], int, dict[str, int]]:
    stop, acked, errors = asyncio.Event(), [], {}
    load = asyncio.create_task(drive(url, stop, acked, errors))
    deadline = time.monotonic() + 20
    while len(acked) < 100 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    os.kill(busiest(workers, port).pid, signal.SIGKILL)  # mid-load: batches queued and in flight
    acked_at_kill = len(acked)
    await asyncio.sleep(2)
    stop.set()
    await load
    return acked, acked_at_kill, errors


def test_kill_9_of_a_worker_mid_load_loses_no_acknowledged_event(catalog_engine, redis_client, pg_url, tmp_path):
    write_lists(redis_client)
    port = free_port_in_range()
    # a wait of 5 ms: batches of many events waiting for their commit when the worker dies
    proc = start_serve(pg_url, tmp_path, port, RECSYS_INGEST_BATCH_WAIT_MS="5")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        workers = [c for c in psutil.Process(proc.pid).children()
                   if "resource_tracker" not in " ".join(c.cmdline())]  # uvicorn's spawned workers
        assert len(workers) == 2, [c.cmdline() for c in workers]
        acked, acked_at_kill, errors = asyncio.run(load_and_kill(url, workers, port))
    finally:
        stop(proc)
    with catalog_engine.connect() as conn:
        stored = set(conn.execute(text("SELECT client_event_id FROM user_events WHERE client_event_id LIKE 'kill-%'"))
                     .scalars())
    missing = set(acked) - stored
    assert acked_at_kill >= 100 and len(acked) > acked_at_kill, (acked_at_kill, len(acked), errors)
    assert missing == set(), f"{len(missing)} acknowledged events missing of {len(acked)} (errors {errors})"
    assert len(set(acked)) == len(acked)
