# Image of every Airflow 3 component (api-server, scheduler, dag-processor, triggerer,
# Celery workers): the official image (it brings the Celery, FAB and SMTP providers and the
# entrypoint's _AIRFLOW_DB_MIGRATE / _AIRFLOW_WWW_USER_CREATE) plus requirements.txt, the
# recsys package, the DAGs and the plugins. Built from the repository root by docker compose.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION

USER root
# rectools-lightfm compiles a C extension with OpenMP
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libgomp1 \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt requirements-train.txt /opt/recsys/
# pinning apache-airflow again keeps pip from moving the image's Airflow; requirements-train.txt (torch CPU,
# onnx) trains the sequential model in the nightly DAG (RECSYS_SEQUENTIAL_NIGHTLY, on by default)
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/recsys/requirements.txt \
    -r /opt/recsys/requirements-train.txt --extra-index-url https://download.pytorch.org/whl/cpu
COPY --chown=airflow:root pyproject.toml /opt/recsys/pyproject.toml
COPY --chown=airflow:root recsys /opt/recsys/recsys
RUN pip install --no-cache-dir --no-deps /opt/recsys

# code is baked in (production-like): rebuild with `docker compose up --build` after a change
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
ENV RECSYS_VAR_DIR=/opt/airflow/recsys-var
