"""Clients for recsys tasks, built in one place.

When the Airflow Connections ``recsys_db`` (Postgres), ``recsys_redis`` (Redis)
or ``recsys_s3`` (AWS) are defined, the provider hooks build the clients from
them; otherwise the recsys settings object (RECSYS_* variables) does. The
library functions only ever receive ready clients.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

CONN_DB = "recsys_db"
CONN_REDIS = "recsys_redis"
CONN_S3 = "recsys_s3"


def _has_connection(conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


@lru_cache
def engine():
    from recsys.clients import get_engine, make_engine

    if _has_connection(CONN_DB):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return make_engine(PostgresHook(postgres_conn_id=CONN_DB).get_uri())
    return get_engine()


@lru_cache
def redis_client():
    from recsys.clients import get_redis

    if _has_connection(CONN_REDIS):
        from airflow.providers.redis.hooks.redis import RedisHook

        return RedisHook(redis_conn_id=CONN_REDIS).get_conn()
    return get_redis()


@lru_cache
def store():
    from recsys.artifacts import open_store
    from recsys.settings import get_settings

    uri = get_settings().resolved_artifact_uri
    if uri.startswith("s3://") and _has_connection(CONN_S3):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return open_store(uri, s3_client=S3Hook(aws_conn_id=CONN_S3).get_conn())
    return open_store(uri)


def run_instant() -> dt.datetime:
    """The instant this run stands for: its logical date, else (a manual trigger without one) its run_after."""
    from airflow.sdk import get_current_context

    from recsys.timeutil import run_instant as instant

    context = get_current_context()
    return instant(context.get("logical_date"), getattr(context.get("dag_run"), "run_after", None))


def run_day() -> dt.date:
    """The UTC day this run processes: the day before its logical date, else before its run_after."""
    from recsys.timeutil import processed_day

    return processed_day(run_instant())


def run_params() -> dict:
    """The run's params: the DAG's defaults, overridden by the trigger form or ``--conf``."""
    from airflow.sdk import get_current_context

    return dict(get_current_context()["params"])


def skippable(step, *args):
    """Call ``step``; its ``recsys.pipeline.steps.Skip`` marks the task skipped."""
    from airflow.sdk.exceptions import AirflowSkipException

    from recsys.pipeline.steps import Skip

    try:
        return step(*args)
    except Skip as exc:
        raise AirflowSkipException(str(exc)) from exc
