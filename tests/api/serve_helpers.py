"""Start the real server as the README does (``python -m recsys serve``) on the tests' database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api_helpers import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def start_serve(pg_url: str, tmp_path: Path, port: int, workers: int = 2, **env: str) -> subprocess.Popen:
    """``python -m recsys serve`` with ``workers`` workers and multiprocess metrics; ``env`` adds variables."""
    multiproc = tmp_path / "prom"
    multiproc.mkdir(exist_ok=True)
    env = {**os.environ, "RECSYS_DATABASE_URL": pg_url, "RECSYS_REDIS_URL": REDIS_URL,
           "RECSYS_ARTIFACT_URI": str(tmp_path / "artifacts"), "PROMETHEUS_MULTIPROC_DIR": str(multiproc), **env}
    return subprocess.Popen([sys.executable, "-m", "recsys", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


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


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    proc.stderr.close()
