# The demo's environment, sourced by scripts/run_demo.sh (and by tests/ops/test_demo_env.py).
# Needs ROOT (the repository) and VAR (its var/ folder). Every port is configurable:
# RECSYS_DEMO_REDIS_PORT, RECSYS_DEMO_API_PORT, RECSYS_DEMO_AIRFLOW_PORT.
REDIS_PORT=${RECSYS_DEMO_REDIS_PORT:-6389}
API_PORT=${RECSYS_DEMO_API_PORT:-8000}
AIRFLOW_PORT=${RECSYS_DEMO_AIRFLOW_PORT:-8080}

export RECSYS_VAR_DIR=$VAR
export RECSYS_DATABASE_URL=${RECSYS_DATABASE_URL:-sqlite:///$VAR/recsys.db}
export RECSYS_ARTIFACT_URI=${RECSYS_ARTIFACT_URI:-$VAR/artifacts}
export RECSYS_TRAINING_WINDOW_DAYS=${RECSYS_TRAINING_WINDOW_DAYS:-30}
export AIRFLOW_HOME=$VAR/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT=$AIRFLOW_PORT
# the UI and the execution API (task runners report there) live on the api-server's port;
# Airflow's default for both is localhost:8080 whatever [api] port says
export AIRFLOW__API__BASE_URL=${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$AIRFLOW_PORT}
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW_PORT/execution/}
# lineage (plugins/recsys_lineage.py, README "Lineage"): every task's OpenLineage events, one JSON a line
export AIRFLOW__OPENLINEAGE__TRANSPORT=${AIRFLOW__OPENLINEAGE__TRANSPORT:-"{\"type\": \"file\", \"log_file_path\": \"$VAR/openlineage.jsonl\", \"append\": true}"}
export AIRFLOW__OPENLINEAGE__NAMESPACE=${AIRFLOW__OPENLINEAGE__NAMESPACE:-recsys}
# the demo's one nightly run stays a few minutes long on a laptop: its first night would otherwise run the
# weekly hyper-parameter search (20 min by default) and a 10-minute sequential training (README "make run")
export RECSYS_TUNING_BUDGET_SECONDS=${RECSYS_TUNING_BUDGET_SECONDS:-120}
export RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS=${RECSYS_SEQUENTIAL_TIME_BUDGET_SECONDS:-120}
export RECSYS_SELECTION_BUDGET_SECONDS=${RECSYS_SELECTION_BUDGET_SECONDS:-600}
