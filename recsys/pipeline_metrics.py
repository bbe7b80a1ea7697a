"""Pipeline metrics for Prometheus, read from the registry, the run records and the event log.

Mount on an API's ``/metrics`` with ``register_pipeline_metrics(engine, registry)``, or run
standalone: ``python -m recsys.pipeline_metrics --port 9108`` (uses ``RECSYS_DATABASE_URL`` and
``RECSYS_REDIS_URL``). The impression flusher runs as a CLI, a DAG task or an endpoint, so its
counts live in the stores (the dead-letter table, the stream) and are exported from here.
Values are read from the database on each scrape (cached ``cache_seconds``).

Exported gauges (absent when there is nothing to report):

| metric | meaning |
|---|---|
| ``recsys_model_training_status`` | 1 = the latest nightly run (newest ``pipeline_runs.run_date``) has a failed step, 0 = none failed (yet) |
| ``recsys_pipeline_step_failed{step}`` | per step of that run: 1 failed, 0 not |
| ``recsys_pipeline_last_run_date_timestamp_seconds`` | the latest run's ``run_date`` (00:00 UTC) |
| ``recsys_model_last_trained_timestamp_seconds`` | ``created_at`` of the newest row of ``recommendation_models`` |
| ``recsys_live_model_info{model_id,version}`` | 1 for the LIVE model |
| ``recsys_live_model_metric{metric,model_id}`` | the LIVE row's numeric ``metrics`` (its own offline evaluation, ``metrics["new"]`` when nested) |
| ``recsys_training_duration_seconds`` | ``details.duration_seconds`` of the latest run's ``train`` step |
| ``recsys_pipeline_step_duration_seconds{step}`` | ``details.duration_seconds`` of each step of the latest run |
| ``recsys_rows_extracted`` | ``details.rows`` of the latest run's ``extract`` step |
| ``recsys_validation_failures`` | failed expectations of the latest ``validate`` step: ``len(details.failed)`` |
| ``recsys_data_drift_psi{feature}`` | PSI of each feature in the latest ``drift`` step (``recsys.drift``: the day against the days before) |
| ``recsys_data_drift_psi_threshold`` | the PSI at which that step flags a feature (``RECSYS_DRIFT_PSI_THRESHOLD`` of the run) |
| ``recsys_data_drift_features_drifted`` | features that step flagged |
| ``recsys_recommendation_gini{role}`` | Gini of recommendation counts in the latest ``output_drift`` step, ``role`` = ``new`` / ``live`` |
| ``recsys_recommendation_coverage{role}``, ``recsys_recommendation_avg_popularity{role}`` | catalogue coverage, mean popularity of recommended products, same step |
| ``recsys_recommendation_overlap_jaccard`` | mean Jaccard@10 of the two models' lists, same step |
| ``recsys_recommendation_gini_change``, ``recsys_recommendation_gini_jump_threshold`` | new minus LIVE Gini, and the change that step calls a concentration jump |
| ``recsys_recommendation_concentration_jump`` | 1 when that step flagged a concentration jump (Gini rise or coverage fall), else 0 |
| ``recsys_ctr{model}`` | clicks / impressions in ``user_events`` over the last 24 h; ``model`` = the LIVE model id |
| ``recsys_ctr_baseline`` | clicks / impressions over the 7 days before those 24 h |
| ``recsys_ctr_impressions{window}`` | the impressions behind each (``current`` / ``baseline``) |
| ``recsys_impression_dead_letters`` | rows of ``impression_dead_letters``: impressions the flusher set aside (undecodable or refused by the database) |
| ``recsys_impression_stream_length`` | entries waiting in ``stream:impressions`` (with a Redis client) |
| ``recsys_impression_stream_trimmed_entries`` | entries the ``MAXLEN ~`` cap removed before a flusher wrote them, since the stream was created (``recsys.abtest.flusher.stream_counts``; with a Redis client >= 7) |
| ``recsys_ab_promotion_blocked`` | A/B tests closed in the last 7 days whose winner was not promoted because their control was no longer LIVE or the winner had been archived (absent when no test closed) |
| ``recsys_pipeline_metrics_scrape_error`` | 1 when the database could not be read (the rest is then absent) |

Run records are written by ``recsys.pipeline.runs.record_step`` (status SUCCESS / FAILED /
SKIPPED; ``failure`` or ``error`` in any case also count as failed). A step that records nothing
cannot be seen here: each nightly step should record its outcome and ``duration_seconds``.
CTR counts every CLICK against every IMPRESSION of the window (a click need not follow a
recommendation): a coarse, cheap signal that the serving side has got worse, not an A/B result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select

from recsys.constants import (
    AB_RUNNING, CLICK, IMPRESSION, MS_PER_DAY, STATUS_LIVE, STEP_DRIFT, STEP_FAILED, STEP_OUTPUT_DRIFT,
)
from recsys.db.models import ABTest, PipelineRun, RecommendationModel, UserEvent

log = logging.getLogger(__name__)

FAILED_STATUSES = frozenset({STEP_FAILED.lower(), "failure", "error"})  # compared lower-cased
CTR_CURRENT_DAYS = 1
CTR_BASELINE_DAYS = 7
AB_BLOCKED_DAYS = 7

# name -> (help, label names)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "recsys_model_training_status": ("1 if the latest nightly run has a failed step, else 0", ()),
    "recsys_pipeline_step_failed": ("1 if this step of the latest nightly run failed", ("step",)),
    "recsys_pipeline_last_run_date_timestamp_seconds": ("run_date of the latest nightly run (00:00 UTC)", ()),
    "recsys_model_last_trained_timestamp_seconds": ("when the newest model was registered", ()),
    "recsys_live_model_info": ("the LIVE model", ("model_id", "version")),
    "recsys_live_model_metric": ("offline metrics of the LIVE model", ("metric", "model_id")),
    "recsys_training_duration_seconds": ("duration of the latest train step", ()),
    "recsys_pipeline_step_duration_seconds": ("duration of each step of the latest run", ("step",)),
    "recsys_rows_extracted": ("events extracted by the latest run", ()),
    "recsys_validation_failures": ("failed expectations in the latest validation", ()),
    "recsys_data_drift_psi": ("population stability index of each feature, latest drift report", ("feature",)),
    "recsys_data_drift_psi_threshold": ("PSI at which the drift report flags a feature", ()),
    "recsys_data_drift_features_drifted": ("features flagged by the latest drift report", ()),
    "recsys_recommendation_gini": ("Gini of recommendation counts, latest output-drift check", ("role",)),
    "recsys_recommendation_coverage": ("catalogue coverage of the recommendations, latest output-drift check", ("role",)),
    "recsys_recommendation_avg_popularity": ("mean popularity of recommended products, latest output-drift check",
                                             ("role",)),
    "recsys_recommendation_overlap_jaccard": ("mean Jaccard@k of the new and LIVE models' lists", ()),
    "recsys_recommendation_gini_change": ("Gini of the new model's recommendations minus the LIVE model's", ()),
    "recsys_recommendation_gini_jump_threshold": ("Gini change called a concentration jump", ()),
    "recsys_recommendation_concentration_jump": ("1 if the latest output-drift check flagged a concentration jump",
                                                 ()),
    "recsys_ctr": ("clicks / impressions over the last 24 h", ("model",)),
    "recsys_ctr_baseline": ("clicks / impressions over the 7 days before the last 24 h", ()),
    "recsys_ctr_impressions": ("impressions behind recsys_ctr (current) and recsys_ctr_baseline", ("window",)),
    "recsys_impression_dead_letters": ("impression entries set aside in impression_dead_letters", ()),
    "recsys_impression_stream_length": ("entries waiting in stream:impressions", ()),
    "recsys_impression_stream_trimmed_entries": (
        "impression entries removed by the stream cap before they were written (since the stream was created)", ()),
    "recsys_ab_promotion_blocked": ("A/B tests closed in the last 7 days whose winner was not promoted: "
                                    "their control was no longer LIVE, or the winner was archived", ()),
    "recsys_pipeline_metrics_scrape_error": ("1 if the database could not be read", ()),
}


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


def _utc_seconds(value: dt.datetime | dt.date) -> float:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def run_samples(engine: Engine) -> list[Sample]:
    """Samples about the latest nightly run (newest ``run_date`` in ``pipeline_runs``)."""
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(PipelineRun.run_date))).scalar()
        if latest is None:
            return []
        rows = conn.execute(
            select(PipelineRun.step, PipelineRun.status, PipelineRun.details).where(PipelineRun.run_date == latest)
        ).all()
    failed = {step: (status or "").lower() in FAILED_STATUSES for step, status, _ in rows}
    details = {step: (d or {}) for step, _, d in rows}
    out = [
        Sample("recsys_model_training_status", {}, float(any(failed.values()))),
        Sample("recsys_pipeline_last_run_date_timestamp_seconds", {}, _utc_seconds(latest)),
    ]
    out += [Sample("recsys_pipeline_step_failed", {"step": s}, float(f)) for s, f in sorted(failed.items())]
    for step, d in sorted(details.items()):
        if (seconds := _number(d.get("duration_seconds"))) is not None:
            out.append(Sample("recsys_pipeline_step_duration_seconds", {"step": step}, seconds))
            if step == "train":
                out.append(Sample("recsys_training_duration_seconds", {}, seconds))
    if (rows_extracted := _number(details.get("extract", {}).get("rows"))) is not None:
        out.append(Sample("recsys_rows_extracted", {}, rows_extracted))
    if "validate" in details:
        listed = details["validate"].get("failed")
        out.append(Sample("recsys_validation_failures", {}, float(len(listed) if isinstance(listed, list) else 0)))
    out += drift_samples(details.get(STEP_DRIFT, {}))
    return out + output_drift_samples(details.get(STEP_OUTPUT_DRIFT, {}))


def drift_samples(d: dict) -> list[Sample]:
    """The data-drift figures of a ``drift`` step record (``recsys.drift.report.drift_report``)."""
    psi = d.get("psi") if isinstance(d.get("psi"), dict) else {}
    out = [Sample("recsys_data_drift_psi", {"feature": f}, v) for f, raw in sorted(psi.items())
           if (v := _number(raw)) is not None]
    if (threshold := _number(d.get("psi_threshold"))) is not None:
        out.append(Sample("recsys_data_drift_psi_threshold", {}, threshold))
    if isinstance(d.get("drifted"), list):
        out.append(Sample("recsys_data_drift_features_drifted", {}, float(len(d["drifted"]))))
    return out


def output_drift_samples(d: dict) -> list[Sample]:
    """The model-output figures of an ``output_drift`` step record (absent when it compared nothing)."""
    out = []
    for name in ("gini", "coverage", "avg_popularity"):
        for role in ("new", "live"):
            if (v := _number(d.get(f"{name}_{role}"))) is not None:
                out.append(Sample(f"recsys_recommendation_{name}", {"role": role}, v))
    for key in ("overlap_jaccard", "gini_change", "gini_jump_threshold"):
        if (v := _number(d.get(key))) is not None:
            out.append(Sample(f"recsys_recommendation_{key}", {}, v))
    if isinstance(d.get("concentration_jump"), bool):
        out.append(Sample("recsys_recommendation_concentration_jump", {}, float(d["concentration_jump"])))
    return out


def _flat_metrics(metrics: dict | None) -> dict[str, float]:
    """The model's own numbers: ``metrics["new"]`` when evaluate nested them, else the top level."""
    metrics = metrics or {}
    own = metrics.get("new") if isinstance(metrics.get("new"), dict) else metrics
    return {k: v for k, raw in own.items() if (v := _number(raw)) is not None}


def model_samples(engine: Engine) -> tuple[list[Sample], str | None]:
    """Samples about the registry, and the LIVE model id (or None)."""
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(RecommendationModel.created_at))).scalar()
        live = conn.execute(
            select(RecommendationModel.model_id, RecommendationModel.version, RecommendationModel.metrics).where(
                RecommendationModel.status == STATUS_LIVE
            )
        ).first()
    out = [Sample("recsys_model_last_trained_timestamp_seconds", {}, _utc_seconds(newest))] if newest else []
    if live is None:
        return out, None
    model_id, version, metrics = live
    out.append(Sample("recsys_live_model_info", {"model_id": model_id, "version": str(version)}, 1.0))
    out += [
        Sample("recsys_live_model_metric", {"metric": name, "model_id": model_id}, value)
        for name, value in sorted(_flat_metrics(metrics).items())
    ]
    return out, model_id


def ctr_counts(engine: Engine, now_ms: int) -> dict[str, tuple[int, int]]:
    """``{"current": (impressions, clicks), "baseline": (...)}`` for the last 24 h and the 7 days before."""
    cut = now_ms - CTR_CURRENT_DAYS * MS_PER_DAY
    start = cut - CTR_BASELINE_DAYS * MS_PER_DAY
    ts, kind = UserEvent.timestamp, UserEvent.event_type

    def count(event_type: str, current: bool):
        window = ts >= cut if current else ts < cut
        return func.coalesce(func.sum(case(((kind == event_type) & window, 1), else_=0)), 0)

    query = select(count(IMPRESSION, True), count(CLICK, True), count(IMPRESSION, False), count(CLICK, False)).where(
        ts >= start, ts < now_ms, kind.in_((IMPRESSION, CLICK))
    )
    with engine.connect() as conn:
        imp_cur, clk_cur, imp_base, clk_base = conn.execute(query).one()
    return {"current": (int(imp_cur), int(clk_cur)), "baseline": (int(imp_base), int(clk_base))}


def ctr_samples(counts: dict[str, tuple[int, int]], model_id: str | None) -> list[Sample]:
    out = [Sample("recsys_ctr_impressions", {"window": w}, float(counts[w][0])) for w in ("current", "baseline")]
    imp, clk = counts["current"]
    if imp:
        out.append(Sample("recsys_ctr", {"model": model_id or "none"}, clk / imp))
    imp, clk = counts["baseline"]
    if imp:
        out.append(Sample("recsys_ctr_baseline", {}, clk / imp))
    return out


def impression_samples(engine: Engine, redis=None) -> list[Sample]:
    """The dead letters (database) and, with a Redis client, the stream's backlog and trimmed entries."""
    from recsys.abtest import dead_letters

    out = [Sample("recsys_impression_dead_letters", {}, float(dead_letters.count(engine)))]
    if redis is not None:
        from recsys.abtest.flusher import stream_counts

        try:
            counts = stream_counts(redis)
        except Exception:  # Redis down: the database metrics still answer
            log.exception("pipeline metrics: the impression stream could not be read")
            return out
        out.append(Sample("recsys_impression_stream_length", {}, float(counts["length"])))
        if counts["trimmed"] is not None:  # Redis >= 7
            out.append(Sample("recsys_impression_stream_trimmed_entries", {}, float(counts["trimmed"])))
    return out


def ab_samples(engine: Engine, now: dt.datetime) -> list[Sample]:
    """How many A/B tests closed in the last ``AB_BLOCKED_DAYS`` days ended with decision ``blocked``."""
    since = now - dt.timedelta(days=AB_BLOCKED_DAYS)
    with engine.connect() as conn:
        rows = conn.execute(select(ABTest.results).where(ABTest.status != AB_RUNNING, ABTest.end_at >= since)).all()
    if not rows:
        return []
    blocked = sum(1 for (results,) in rows if ((results or {}).get("decision") or {}).get("action") == "blocked")
    return [Sample("recsys_ab_promotion_blocked", {}, float(blocked))]


def collect_samples(engine: Engine, now: dt.datetime | None = None, redis=None) -> list[Sample]:
    """Every pipeline sample, read now (``now`` only sets the CTR windows; default: the clock)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    models, live_id = model_samples(engine)
    return (run_samples(engine) + models + ctr_samples(ctr_counts(engine, now_ms), live_id)
            + impression_samples(engine, redis) + ab_samples(engine, now))


def to_families(samples: list[Sample]) -> list[GaugeMetricFamily]:
    families: dict[str, GaugeMetricFamily] = {}
    for s in samples:
        help_text, label_names = METRICS[s.name]
        family = families.setdefault(s.name, GaugeMetricFamily(s.name, help_text, labels=label_names))
        family.add_metric([s.labels[n] for n in label_names], s.value)
    return list(families.values())


class PipelineMetricsCollector(Collector):
    """A Prometheus collector that reads the database on scrape, at most every ``cache_seconds``."""

    def __init__(self, engine: Engine, cache_seconds: float = 15.0, redis=None):
        self.engine = engine
        self.redis = redis
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Sample]] | None = None

    def samples(self) -> list[Sample]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            try:
                samples = collect_samples(self.engine, redis=self.redis)
                samples.append(Sample("recsys_pipeline_metrics_scrape_error", {}, 0.0))
            except Exception:  # a scrape must answer: report the failure as a metric
                log.exception("pipeline metrics: database read failed")
                samples = [Sample("recsys_pipeline_metrics_scrape_error", {}, 1.0)]
            self._cached = (time.monotonic(), samples)
            return samples

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from to_families(self.samples())

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # names vary with the data: no describe, so registering never scrapes the database


def register_pipeline_metrics(engine: Engine, registry: CollectorRegistry, cache_seconds: float = 15.0,
                              redis=None) -> PipelineMetricsCollector:
    collector = PipelineMetricsCollector(engine, cache_seconds=cache_seconds, redis=redis)
    registry.register(collector)
    return collector


def serve(engine: Engine, port: int, addr: str = "0.0.0.0", cache_seconds: float = 15.0, redis=None):
    """Start the exporter's HTTP server in a thread; returns ``(server, thread)``."""
    registry = CollectorRegistry()
    register_pipeline_metrics(engine, registry, cache_seconds=cache_seconds, redis=redis)
    return start_http_server(port, addr=addr, registry=registry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.pipeline_metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9108)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--cache-seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from recsys.clients import get_engine, get_redis

    server, _thread = serve(get_engine(), args.port, args.host, args.cache_seconds, redis=get_redis())
    log.info("pipeline metrics on http://%s:%d/metrics", args.host, server.server_address[1])
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
