"""A real local Redis Cluster for tests: primaries from ``redis-server --cluster-enabled yes``, joined
with ``redis-cli --cluster create``, stopped (and their folders removed) on exit."""

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
def local_cluster(workdir: Path, ports: tuple[int, ...] = CLUSTER_PORTS):
    """Yields the cluster's URL for recsys (``redis+cluster://127.0.0.1:<first port>``)."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed for the Redis Cluster tests (apt-get install redis-server)")
    procs = []
    try:
        for port in ports:
            folder = workdir / str(port)
            folder.mkdir(parents=True, exist_ok=True)
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--cluster-enabled", "yes", "--cluster-config-file",
                 "nodes.conf", "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                 "--dir", str(folder), "--bind", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 15
        while not all(_cli(p, "ping").strip() == "PONG" for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis cluster nodes on {ports} did not start")
            time.sleep(0.1)
        out = subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                              "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-800:]} {out.stderr[-800:]}")
        while not all("cluster_state:ok" in _cli(p, "cluster", "info") for p in ports):
            if time.monotonic() > deadline + 30:
                raise RuntimeError("the Redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
