"""Load generators in their own processes: wrk for HTTP, redis-benchmark for Redis.

Each run returns requests/s and p50/p95/p99 latency in milliseconds, plus errors.
Servers are started and stopped here too (``Server``), waiting until they answer.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import API_ENV, BENCH_API_KEY, BENCH_DIR, REPO

WRK_SCRIPT = BENCH_DIR / "wrk" / "report.lua"


class LoadGenError(RuntimeError):
    """A load generator is missing or its run failed."""


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LoadGenError(f"{name} is not installed (scripts/bench.sh installs it with apt-get)")
    return path


def run_wrk(url: str, path: str, *, connections: int, seconds: float, ids_file: str | None = None,
            threads: int = 1, timeout_s: int = 5) -> dict:
    """One wrk run against ``url + path`` (``path`` + an id from ``ids_file`` per request)."""
    env = {**os.environ, "BENCH_WRK_PATH": path, "BENCH_WRK_IDS": ids_file or "", "BENCH_API_KEY": BENCH_API_KEY}
    cmd = [require_tool("wrk"), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           f"--timeout={timeout_s}s", "-s", str(WRK_SCRIPT), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if out.returncode != 0 or line is None:
        raise LoadGenError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    raw = json.loads(line.split(" ", 1)[1])
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1e3,
            "p95_ms": raw["p95_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3,
            "mean_ms": raw["mean_us"] / 1e3, "requests": raw["requests"], "errors": errors,
            "non_2xx": raw["errors_status"], "connections": connections}


def run_redis_benchmark(redis_url_db: int, *, value_bytes: int, connections: int, requests: int,
                        keyspace: int = 10_000, host: str = "127.0.0.1", port: int = 6379) -> dict:
    """``redis-benchmark -t get`` on ``--dbnum``; the keys are SET first (same size), deleted by the caller."""
    tool = require_tool("redis-benchmark")
    base = [tool, "-h", host, "-p", str(port), "--dbnum", str(redis_url_db), "-c", str(connections),
            "-d", str(value_bytes), "-r", str(keyspace), "--csv"]
    subprocess.run([*base, "-t", "set", "-n", str(keyspace * 3)], capture_output=True, check=True, timeout=300)
    out = subprocess.run([*base, "-t", "get", "-n", str(requests)], capture_output=True, text=True, check=True,
                         timeout=300)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    if not rows:
        raise LoadGenError(f"redis-benchmark printed no result: {out.stdout!r} {out.stderr!r}")
    row = rows[0]
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p95_ms": float(row["p95_latency_ms"]), "p99_ms": float(row["p99_latency_ms"]),
            "mean_ms": float(row["avg_latency_ms"]), "requests": requests, "connections": connections,
            "value_bytes": value_bytes}


def write_ids(ids: list[int]) -> str:
    fd, path = tempfile.mkstemp(prefix="recsys-bench-ids-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(str(i) for i in ids) + "\n")
    return path


class Server:
    """``python -m bench.serve`` in its own process group, stopped on exit."""

    def __init__(self, app: str, port: int, *, workers: int, loop: str, http: str, env: dict,
                 ready_path: str, log_path: Path, source: Path = REPO):
        """``source``: the source tree whose ``recsys`` and ``bench`` run (another checkout: its own code)."""
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        cmd = [sys.executable, "-m", "bench.serve", "--app", app, "--port", str(port), "--workers", str(workers),
               "--loop", loop, "--http", http]
        self.log = open(log_path, "ab")
        env = {**os.environ, **API_ENV, **env}
        if source != REPO:
            env["PYTHONPATH"] = ""
        self.proc = subprocess.Popen(cmd, cwd=source, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LoadGenError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise LoadGenError(f"server at {self.url} not ready after {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
