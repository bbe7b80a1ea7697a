"""A real Airflow deployment in processes, for the operator-path tests.

``AirflowStack`` starts api-server, scheduler, dag-processor and triggerer (and
an ``airflow celery worker`` when asked) as child processes, each in its own
process group with its log under ``root/logs``, against a fresh PostgreSQL
metadata database. ``stop()`` ends every process it started, by process group.
Operators' commands run through ``sh`` exactly as typed (``run``), REST calls
through the public API v2 with a JWT from the simple auth manager (``api``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.datetime.now(dt.timezone.utc).date()  # the test shop's events end yesterday, as `generate` makes them
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
ADMIN_USER, ADMIN_PASSWORD = "admin", "operator-test-password"


def port_from_env(name: str) -> int:
    """The port in ``name`` (an environment variable), else a free one."""
    if os.environ.get(name):
        return int(os.environ[name])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComponentDied(RuntimeError):
    """An Airflow process of the stack exited: waiting longer cannot help."""


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 1.0, stack=None) -> Any:
    """Poll ``check`` until it returns something truthy; on timeout fail with the components' log tails."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ComponentDied:
            raise
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(every)
    tails = stack.log_tails() if stack is not None else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})\n{tails}")


class AirflowStack:
    def __init__(self, root: Path, env: dict[str, str], api_port: int):
        self.root = root
        self.env = env
        self.api_port = api_port
        self.base_url = f"http://127.0.0.1:{api_port}"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None

    # --- processes -------------------------------------------------------
    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args], env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.root, start_new_session=True,  # its own process group: stop() ends its children too
        )
        log.close()
        self.procs[name] = proc
        return proc

    def stop(self, name: str, grace: float = 20.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                # the group may outlive its leader (task runners): make sure it is gone
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
            break

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise ComponentDied(f"Airflow components exited: {dead}\n{self.log_tails()}")

    def log_tails(self, lines: int = 25) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    # --- what an operator types --------------------------------------------
    def run(self, command: str, *, timeout: float = 300, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run one shell command line as typed (README commands), with the stack's environment."""
        done = subprocess.run(["sh", "-c", command], env=env or self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"`{command}` exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return done

    def airflow(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        import shlex

        return self.run("airflow " + " ".join(shlex.quote(a) for a in args), **kwargs)

    # --- the public REST API -------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            r = httpx.post(f"{self.base_url}/auth/token", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
                           timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.base_url}/api/v2{path}", headers=headers, timeout=60, **kwargs)

    def runs(self, dag_id: str) -> list[dict]:
        r = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})
        r.raise_for_status()
        return r.json()["dag_runs"]

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float, states=("success", "failed")) -> dict:
        def finished():
            self.check_alive()
            r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            r.raise_for_status()
            run = r.json()
            return run if run["state"] in states else None

        return wait_for(finished, timeout=timeout, what=f"run {run_id} of {dag_id} to finish", every=2, stack=self)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                     params={"full_content": True}, headers={"Accept": "application/json"})
        r.raise_for_status()
        content = r.json()["content"]
        return "\n".join(c.get("event", "") if isinstance(c, dict) else str(c) for c in content)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
                     params={"deserialize": True})
        r.raise_for_status()
        value = r.json()["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


# --- docker-compose.yml's executor settings, pointed at this machine ---------------

COMPOSE_EXECUTOR_KEYS = re.compile(r"^AIRFLOW__(CORE__EXECUTOR|CORE__EXECUTION_API_SERVER_URL|CELERY__.*)$")


def _compose_value(value: str) -> str:
    """``${VAR:-default}`` -> default, ``${VAR:?message}`` / ``${VAR}`` -> empty (no secrets on this machine)."""
    return re.sub(r"\$\{[A-Z0-9_]+(?::-([^}]*)|:\?[^}]*)?\}", lambda m: m.group(1) or "", value)


def compose_executor_env(compose_file: Path, *, metadata_db: str, redis_db: int, api_port: int) -> dict[str, str]:
    """The executor variables of compose's ``x-airflow-env``, with its hosts and credentials replaced by local ones."""
    import yaml

    compose = yaml.safe_load(compose_file.read_text())
    env = {k: _compose_value(str(v)) for k, v in compose["x-airflow-env"].items() if COMPOSE_EXECUTOR_KEYS.match(k)}
    local = {
        r"//airflow:@postgres:5432/airflow": f"//postgres@127.0.0.1:5432/{metadata_db}",
        r"redis://:@redis:6379/\d+": f"redis://127.0.0.1:6379/{redis_db}",
        r"//airflow-api-server:8080/": f"//127.0.0.1:{api_port}/",
    }
    for pattern, replacement in local.items():
        env = {k: re.sub(pattern, replacement, v) for k, v in env.items()}
    return env
