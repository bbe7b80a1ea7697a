#!/usr/bin/env bash
# `make bench`: every performance benchmark, then bench/README.md tables and bench/SCALE.md.
#
#   BENCH_QUICK=1     reduced sizes, a few minutes (development)
#   BENCH_ONLY="serving ingest"   run only these (precompute shards ann serving api_memory ingest training nightly scale sequential)
#   RECSYS_BENCH_REDIS_URL        Redis database the benchmarks flush and use (default redis://127.0.0.1:6379/10)
#   RECSYS_BENCH_PG_ADMIN_URL     PostgreSQL where recsys_bench_* databases are created and dropped
#   BENCH_<NAME>_ARGS             extra arguments of one benchmark, e.g. BENCH_NIGHTLY_ARGS="--max-seconds 3000"
#
# Needs PostgreSQL and Redis running (the Makefile target starts them), installs
# requirements-bench.txt and requirements-train.txt into the venv and wrk / redis-benchmark with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export RECSYS_BENCH_REDIS_URL=${RECSYS_BENCH_REDIS_URL:-redis://127.0.0.1:6379/10}
# the benchmarks run with production's checks (RECSYS_ENVIRONMENT unset): a real request-id secret, one per run
RECSYS_REQUEST_ID_SECRET=${RECSYS_REQUEST_ID_SECRET:-$("$PY" -c 'import secrets; print(secrets.token_hex(32))')}
export RECSYS_REQUEST_ID_SECRET

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

"$PY" -m pip install -q -r requirements-bench.txt -r requirements-train.txt
command -v wrk >/dev/null || apt_install wrk
command -v redis-benchmark >/dev/null || apt_install redis-tools

ALL="precompute shards ann serving api_memory ingest training nightly selection scale sequential"
ONLY=${BENCH_ONLY:-$ALL}
failed=()
started=$(date +%s)
for name in $ALL; do
    case " $ONLY " in *" $name "*) ;; *) continue ;; esac
    var="BENCH_${name^^}_ARGS"
    args=${!var:-}
    module="bench.bench_${name}"
    echo "=== $name ($(date -u +%H:%M:%S) UTC, quick=${BENCH_QUICK:-0}) ==="
    # shellcheck disable=SC2086
    if ! "$PY" -m "$module" $args; then
        echo "!!! benchmark $name failed" >&2
        failed+=("$name")
    fi
done

"$PY" -m bench.report
"$PY" -m bench.scale_model
echo "make bench: $(( $(date +%s) - started ))s; results in bench/results/, summary in bench/README.md and bench/SCALE.md"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
