# Sourced by scripts/run_demo.sh (`make run`): the demo's API key, admin token and request-id secret.
# Generated on first start into $VAR/demo-secrets.env (mode 600), reused after; a value already in the
# environment wins. Exports RECSYS_API_KEYS (demo:<key>), RECSYS_ADMIN_TOKEN, RECSYS_REQUEST_ID_SECRET
# and DEMO_API_KEY (for the printed curl). RECSYS_ENVIRONMENT stays unset: these real secrets pass the production
# checks every command makes (tests/ops/test_demo_secrets.py), so the demo needs no development flag.
demo_secrets() {
  local var_dir=$1 py=${2:-python3}
  local file=$var_dir/demo-secrets.env
  if [ ! -s "$file" ]; then
    (umask 077 && "$py" -c 'import secrets
for name, n in (("DEMO_API_KEY", 24), ("DEMO_ADMIN_TOKEN", 24), ("DEMO_REQUEST_ID_SECRET", 32)):
    print(f"{name}={secrets.token_hex(n)}")' > "$file.tmp" && mv "$file.tmp" "$file")
    echo "generated the demo's API key, admin token and request-id secret: $file" >&2
  fi
  # shellcheck disable=SC1090
  . "$file"
  export DEMO_API_KEY
  export RECSYS_API_KEYS=${RECSYS_API_KEYS:-demo:$DEMO_API_KEY}
  export RECSYS_ADMIN_TOKEN=${RECSYS_ADMIN_TOKEN:-$DEMO_ADMIN_TOKEN}
  export RECSYS_REQUEST_ID_SECRET=${RECSYS_REQUEST_ID_SECRET:-$DEMO_REQUEST_ID_SECRET}
}
