"""`make run`'s ports are configurable, and task runners reach the execution API on the Airflow port chosen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json
from airflow.configuration import conf
from airflow.executors.base_executor import get_execution_api_server_url
print(json.dumps({"port": conf.getint("api", "port"), "base_url": conf.get("api", "base_url"),
                  "execution_api": get_execution_api_server_url(),
                  "lineage": conf.get("openlineage", "transport"), "lineage_namespace": conf.get("openlineage", "namespace")}))
"""


def _demo_config(tmp_path, **ports) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECSYS_"))} | ports
    script = f'ROOT="{REPO}"; VAR="{tmp_path}"; source scripts/demo_env.sh; exec "{sys.executable}" -c "$PROBE"'
    out = subprocess.run(["bash", "-c", script], cwd=REPO, env=env | {"PROBE": PROBE}, capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_the_airflow_port_moves_the_ui_and_the_execution_api_together(tmp_path):
    config = _demo_config(tmp_path, RECSYS_DEMO_AIRFLOW_PORT="18186")
    assert {k: config[k] for k in ("port", "base_url", "execution_api")} == {
        "port": 18186, "base_url": "http://127.0.0.1:18186", "execution_api": "http://127.0.0.1:18186/execution/",
    }
    assert _demo_config(tmp_path)["execution_api"] == "http://127.0.0.1:8080/execution/"


def test_lineage_goes_to_a_file_under_var(tmp_path):
    config = _demo_config(tmp_path)
    assert json.loads(config["lineage"]) == {"type": "file", "log_file_path": f"{tmp_path}/openlineage.jsonl",
                                             "append": True}
    assert config["lineage_namespace"] == "recsys"


def test_run_demo_uses_the_demo_env_and_its_ports():
    script = (REPO / "scripts" / "run_demo.sh").read_text()
    assert "source scripts/demo_env.sh" in script
    assert "RECSYS_DAG_DEADLINE_HOURS" not in script  # `dags test` needs no workaround variable any more
    assert '--port "$API_PORT"' in script and "$AIRFLOW_PORT" in script
