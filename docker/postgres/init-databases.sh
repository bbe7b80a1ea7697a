#!/usr/bin/env bash
# First start of an empty PostgreSQL volume only (docker-entrypoint-initdb.d):
# one role and one database for the application (recsys) and one for Airflow's metadata.
# The passwords come from the environment (.env); nothing secret is written here.
set -eo pipefail
if [[ -z "${RECSYS_DB_PASSWORD}" || -z "${AIRFLOW_DB_PASSWORD}" ]]; then
  echo "RECSYS_DB_PASSWORD and AIRFLOW_DB_PASSWORD must be set" >&2
  exit 1
fi
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres \
  -v recsys_pw="${RECSYS_DB_PASSWORD}" -v airflow_pw="${AIRFLOW_DB_PASSWORD}" <<'SQL'
CREATE ROLE recsys LOGIN PASSWORD :'recsys_pw';
CREATE DATABASE recsys OWNER recsys;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
SQL
echo "databases recsys and airflow created"
