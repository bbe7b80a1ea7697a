#!/usr/bin/env bash
# Start PostgreSQL and Redis on this machine when they are not answering.
# Tests use the real services (127.0.0.1:5432 database `test`, 127.0.0.1:6379).
set -u
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null
echo "PostgreSQL and Redis are up"
# promtool (Debian's prometheus package) runs the alert-rule unit tests (tests/ops/test_prometheus_rules.py);
# installed once where apt-get and root are available, otherwise those tests are skipped with a reason.
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing promtool (Debian package prometheus)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
    >/tmp/recsys-promtool-install.log 2>&1 || echo "could not install promtool (see /tmp/recsys-promtool-install.log)" >&2
fi
# chromium (Debian's package) runs the A/B dashboard browser test (tests/abtest/test_ab_dashboard_browser.py,
# driven by Playwright with executable_path=/usr/bin/chromium: no browser download); installed once where
# apt-get and root are available, otherwise that test is skipped with a reason.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium (Debian package chromium)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >/tmp/recsys-chromium-install.log 2>&1 || echo "could not install chromium (see /tmp/recsys-chromium-install.log)" >&2
fi
