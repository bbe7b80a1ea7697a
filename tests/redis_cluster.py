"""Real local Redis servers for tests: a Redis Cluster (primaries from ``redis-server --cluster-enabled yes``,
joined with ``redis-cli --cluster create``) and a plain private server, stopped (folders removed) on exit."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from worker_resources import port_block

CLUSTER_PORTS = tuple(port_block(7101, 3))  # 7101-7103; 7104-7106 for pytest-xdist worker gw1, ...


def _cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=30).stdout


@contextlib.contextmanager
def _servers(workdir: Path, ports: tuple[int, ...], *extra: str):
    """``redis-server`` on each of ``ports`` (answering PING), terminated and their folders removed on exit."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed for these Redis tests (apt-get install redis-server)")
    procs = []
    try:
        for port in ports:
            folder = workdir / str(port)
            folder.mkdir(parents=True, exist_ok=True)
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), *extra, "--save", "", "--appendonly", "no",
                 "--dir", str(folder), "--bind", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 15
        while not all(_cli(p, "ping").strip() == "PONG" for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis servers on {ports} did not start")
            time.sleep(0.1)
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def local_server(workdir: Path):
    """A plain ``redis-server`` of the caller's own on a free port (its own CONFIG: a test that sets
    ``maxmemory`` must not refuse the writes of the tests running meanwhile on the shared server); yields
    ``redis://127.0.0.1:<port>/0``."""
    from asgi_client import free_port

    port = free_port()
    with _servers(workdir, (port,)):
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def local_cluster(workdir: Path, ports: tuple[int, ...] = CLUSTER_PORTS):
    """Yields the cluster's URL for recsys (``redis+cluster://127.0.0.1:<first port>``)."""
    with _servers(workdir, ports, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                  "--cluster-node-timeout", "5000"):
        deadline = time.monotonic() + 15
        out = subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                              "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-800:]} {out.stderr[-800:]}")
        while not all("cluster_state:ok" in _cli(p, "cluster", "info") for p in ports):
            if time.monotonic() > deadline + 30:
                raise RuntimeError("the Redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
