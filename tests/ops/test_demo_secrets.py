"""``make run`` generates the demo's API key, admin token and request-id secret once and reuses them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from recsys.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHOW = ('. scripts/demo_secrets.sh; demo_secrets "$1" "$2"; '
        'printf "%s\\n" "$RECSYS_API_KEYS" "$RECSYS_ADMIN_TOKEN" "$RECSYS_REQUEST_ID_SECRET" "$DEMO_API_KEY"')


def secrets(var_dir: Path, **env) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("RECSYS_API_KEYS", "RECSYS_ADMIN_TOKEN",
                                                               "RECSYS_REQUEST_ID_SECRET")}
    out = subprocess.run(["bash", "-c", SHOW, "-", str(var_dir), sys.executable], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_generated_once_private_reused_and_valid_for_production(tmp_path):
    first = secrets(tmp_path)
    assert secrets(tmp_path) == first  # reused on the next start
    keys, admin, secret, key = first
    assert keys == f"demo:{key}" and len(key) == 48 and len(admin) == 48 and len(secret) == 64
    assert stat.S_IMODE((tmp_path / "demo-secrets.env").stat().st_mode) == 0o600
    settings = Settings(environment="production", api_keys=keys, admin_token=admin, request_id_secret=secret)
    assert settings.api_key_pairs == [("demo", key)]
    assert secrets(tmp_path, RECSYS_API_KEYS="mine:0123456789abcdef0")[0] == "mine:0123456789abcdef0"


def test_run_demo_uses_them_and_prints_a_curl_with_the_key():
    script = (ROOT / "scripts/run_demo.sh").read_text()
    assert script.index('demo_secrets "$VAR"') < script.index("recsys serve")
    assert "curl -H 'X-API-Key: $DEMO_API_KEY'" in script and "/recommendations?user_id=$USER_ID" in script


def test_make_run_starts_without_an_environment_flag(tmp_path):
    """`make run`'s environment (demo_env.sh, then demo_secrets) passes the production checks the API runs at
    start, with RECSYS_ENVIRONMENT unset as a shop's deployment leaves it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AIRFLOW"))}
    check = ("from recsys.settings import Settings; s = Settings(); s.check_api(); "
             "print(s.environment, len(s.request_id_secret), len(s.admin_token))")
    script = (f'ROOT="{ROOT}"; VAR="{tmp_path}"; source scripts/demo_env.sh; . scripts/demo_secrets.sh; '
              f'demo_secrets "$VAR" "{sys.executable}"; exec "{sys.executable}" -c "$CHECK"')
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, env={**clean, "CHECK": check}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["production", "64", "48"]
