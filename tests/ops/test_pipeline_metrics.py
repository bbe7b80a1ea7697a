"""recsys.pipeline_metrics on the real PostgreSQL: run records, registry and CTR windows
become the gauges the alert rules and the dashboard read."""

from __future__ import annotations

import datetime as dt
import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import create_engine, insert

from recsys.constants import CLICK, IMPRESSION, MS_PER_DAY, STATUS_ARCHIVED, STATUS_LIVE, VIEW
from recsys.db.models import PipelineRun, RecommendationModel, UserEvent
from recsys.pipeline_metrics import (
    METRICS,
    PipelineMetricsCollector,
    collect_samples,
    ctr_counts,
    register_pipeline_metrics,
    serve,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR_MS = 3_600_000
HOUR = dt.timedelta(hours=1)


def add_runs(engine, run_date, statuses: dict[str, tuple[str, dict]]):
    rows = [{"run_date": run_date, "step": step, "status": st, "details": d} for step, (st, d) in statuses.items()]
    with engine.begin() as conn:
        conn.execute(insert(PipelineRun), rows)


def add_model(engine, model_id, version, status, created_at, metrics):
    with engine.begin() as conn:
        conn.execute(insert(RecommendationModel).values(
            model_id=model_id, model_type="HYBRID", version=version, train_date=created_at.date(), metrics=metrics,
            params={}, status=status, training_samples_count=100, artifact_uri=f"s3://b/models/{model_id}/",
            created_at=created_at,
        ))


def add_events(engine, spec: list[tuple[str, int, int]]):
    """spec: (event_type, hours before NOW, how many)."""
    rows, n = [], 0
    for event_type, hours_ago, count in spec:
        for _ in range(count):
            n += 1
            rows.append({"user_id": n, "product_id": 1, "event_type": event_type, "session_id": "s",
                         "timestamp": NOW_MS - hours_ago * HOUR_MS, "price": 1.0, "client_event_id": f"e{n}"})
    with engine.begin() as conn:
        conn.execute(insert(UserEvent), rows)


def as_dict(samples):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}


def test_empty_database_reports_only_zero_impressions(engine):
    samples = as_dict(collect_samples(engine, now=NOW))
    assert samples == {("recsys_ctr_impressions", (("window", "current"),)): 0.0,
                       ("recsys_ctr_impressions", (("window", "baseline"),)): 0.0,
                       ("recsys_impression_dead_letters", ()): 0.0}


def test_latest_run_decides_training_status(engine):
    ok = {"extract": ("SUCCESS", {"rows": 1234, "duration_seconds": 12.5}),
          "validate": ("SUCCESS", {"success": True, "failed": []}),
          "train": ("SUCCESS", {"model_id": "m1", "duration_seconds": 840.0})}
    add_runs(engine, dt.date(2026, 11, 20), ok)
    add_runs(engine, dt.date(2026, 11, 21), {
        "extract": ("SUCCESS", {"rows": 999}),
        "validate": ("FAILED", {"success": False, "failed": ["user_id_not_null", "day_volume"]}),
    })
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_model_training_status", ())] == 1.0
    assert s[("recsys_pipeline_step_failed", (("step", "validate"),))] == 1.0
    assert s[("recsys_pipeline_step_failed", (("step", "extract"),))] == 0.0
    assert s[("recsys_rows_extracted", ())] == 999.0  # the latest run, not the older one
    assert s[("recsys_validation_failures", ())] == 2.0
    assert ("recsys_training_duration_seconds", ()) not in s  # the latest run did not train
    assert s[("recsys_pipeline_last_run_date_timestamp_seconds", ())] == dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc).timestamp()


def test_a_clean_run_reports_zero_and_durations(engine):
    add_runs(engine, dt.date(2026, 11, 21), {
        "extract": ("SUCCESS", {"rows": 50, "duration_seconds": 3}),
        "validate": ("SUCCESS", {"failed": []}),
        "train": ("SUCCESS", {"duration_seconds": 61.5}),
        "precompute": ("SKIPPED", {}),
    })
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_model_training_status", ())] == 0.0
    assert s[("recsys_training_duration_seconds", ())] == 61.5
    assert s[("recsys_pipeline_step_duration_seconds", (("step", "extract"),))] == 3.0
    assert s[("recsys_validation_failures", ())] == 0.0


def test_drift_records_become_drift_gauges_and_malformed_values_are_left_out(engine):
    day = dt.date(2026, 11, 21)
    add_runs(engine, day, {
        "drift": ("SUCCESS", {"psi": {"category": 0.31, "device": 0.02, "country": None, "bad": "x"},
                              "psi_threshold": 0.2, "drifted": ["category"]}),
        "output_drift": ("SUCCESS", {"gini_new": 0.9, "gini_live": 0.5, "coverage_new": 0.04, "coverage_live": 0.9,
                                     "avg_popularity_new": 80.0, "avg_popularity_live": 20.0, "overlap_jaccard": 0.1,
                                     "gini_change": 0.4, "gini_jump_threshold": 0.1, "concentration_jump": True}),
    })
    s = as_dict(collect_samples(engine, now=NOW))
    psi = {labels[0][1]: v for (name, labels), v in s.items() if name == "recsys_data_drift_psi"}
    assert psi == {"category": 0.31, "device": 0.02}
    assert s[("recsys_data_drift_psi_threshold", ())] == 0.2
    assert s[("recsys_data_drift_features_drifted", ())] == 1.0
    assert s[("recsys_recommendation_gini", (("role", "new"),))] == 0.9
    assert s[("recsys_recommendation_coverage", (("role", "live"),))] == 0.9
    assert s[("recsys_recommendation_avg_popularity", (("role", "new"),))] == 80.0
    assert s[("recsys_recommendation_gini_change", ())] == 0.4
    assert s[("recsys_recommendation_gini_jump_threshold", ())] == 0.1
    assert s[("recsys_recommendation_overlap_jaccard", ())] == 0.1
    assert s[("recsys_recommendation_concentration_jump", ())] == 1.0

    add_runs(engine, day + dt.timedelta(days=1), {  # next night: output check skipped, drift record broken
        "drift": ("SUCCESS", {"psi": "not a dict"}),
        "output_drift": ("SKIPPED", {"reason": "no other LIVE model to compare with"}),
    })
    names = {name for name, _ in as_dict(collect_samples(engine, now=NOW))}
    assert not {n for n in names if n.startswith(("recsys_data_drift", "recsys_recommendation"))}


def test_records_written_by_the_runs_module_are_read(engine):
    from recsys.pipeline.runs import record_failure, record_step

    day = dt.date(2026, 11, 20)
    record_step(engine, day, "extract", "SUCCESS", {"key": "k", "uri": "u", "rows": 321})
    record_failure(engine, day, "train", RuntimeError("out of memory"))
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_model_training_status", ())] == 1.0
    assert s[("recsys_pipeline_step_failed", (("step", "train"),))] == 1.0
    assert s[("recsys_rows_extracted", ())] == 321.0
    record_step(engine, day, "train", "SUCCESS", {"model_id": "m", "duration_seconds": 30.0})  # a re-run that worked
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_model_training_status", ())] == 0.0
    assert s[("recsys_training_duration_seconds", ())] == 30.0


def test_registry_gives_live_model_metrics_and_last_trained(engine):
    t_old = dt.datetime(2026, 11, 19, 3, 0, tzinfo=dt.timezone.utc)
    t_new = dt.datetime(2026, 11, 21, 3, 30, tzinfo=dt.timezone.utc)
    add_model(engine, "01LIVE", 4, STATUS_LIVE, t_old,
              {"new": {"ndcg@10": 0.31, "precision@10": 0.12, "label": "x"}, "popularity": {"ndcg@10": 0.2}})
    add_model(engine, "01NEWER", 5, STATUS_ARCHIVED, t_new, {"ndcg@10": 0.29})
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_model_last_trained_timestamp_seconds", ())] == t_new.timestamp()
    assert s[("recsys_live_model_info", (("model_id", "01LIVE"), ("version", "4")))] == 1.0
    assert s[("recsys_live_model_metric", (("metric", "ndcg@10"), ("model_id", "01LIVE")))] == 0.31
    assert s[("recsys_live_model_metric", (("metric", "precision@10"), ("model_id", "01LIVE")))] == 0.12
    assert not any(k[0] == "recsys_live_model_metric" and ("metric", "label") in k[1] for k in s)


def test_ctr_windows_against_a_hand_count(engine):
    add_model(engine, "01LIVE", 1, STATUS_LIVE, NOW - dt.timedelta(days=1), {})
    add_events(engine, [
        (IMPRESSION, 2, 100), (CLICK, 3, 4), (VIEW, 1, 50),     # last 24 h: 4 / 100
        (IMPRESSION, 30, 200), (CLICK, 48, 10),                  # previous 7 days: 10 / 200
        (IMPRESSION, 24 * 9, 500), (CLICK, 24 * 9, 500),         # older than 8 days: ignored
        (CLICK, -1, 7),                                          # in the future: ignored
    ])
    assert ctr_counts(engine, NOW_MS) == {"current": (100, 4), "baseline": (200, 10)}
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_ctr", (("model", "01LIVE"),))] == 0.04
    assert s[("recsys_ctr_baseline", ())] == 0.05
    assert s[("recsys_ctr_impressions", (("window", "current"),))] == 100.0


def test_ctr_window_edges(engine):
    # exactly 24 h ago is in the current window; exactly 8 days ago is the first baseline millisecond
    with engine.begin() as conn:
        conn.execute(insert(UserEvent), [
            {"event_type": IMPRESSION, "timestamp": NOW_MS - MS_PER_DAY, "client_event_id": "a"},
            {"event_type": IMPRESSION, "timestamp": NOW_MS - MS_PER_DAY - 1, "client_event_id": "b"},
            {"event_type": IMPRESSION, "timestamp": NOW_MS - 8 * MS_PER_DAY, "client_event_id": "c"},
            {"event_type": IMPRESSION, "timestamp": NOW_MS - 8 * MS_PER_DAY - 1, "client_event_id": "d"},
        ])
    assert ctr_counts(engine, NOW_MS) == {"current": (1, 0), "baseline": (2, 0)}


def test_collector_on_a_registry_and_every_name_declared(engine):
    add_runs(engine, dt.date(2026, 11, 21), {"train": ("error", {"duration_seconds": 5})})
    registry = CollectorRegistry()
    register_pipeline_metrics(engine, registry, cache_seconds=0)
    assert registry.get_sample_value("recsys_model_training_status") == 1.0
    assert registry.get_sample_value("recsys_pipeline_metrics_scrape_error") == 0.0
    text = generate_latest(registry).decode()
    assert "# TYPE recsys_model_training_status gauge" in text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names <= set(METRICS)


def test_unreachable_database_is_a_metric_not_a_crash():
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    registry = CollectorRegistry()
    register_pipeline_metrics(dead, registry)
    assert registry.get_sample_value("recsys_pipeline_metrics_scrape_error") == 1.0
    assert registry.get_sample_value("recsys_model_training_status") is None


def test_cache_holds_values_between_scrapes(engine):
    collector = PipelineMetricsCollector(engine, cache_seconds=300)
    assert not any(s.name == "recsys_model_training_status" for s in collector.samples())
    add_runs(engine, dt.date(2026, 11, 21), {"train": ("FAILED", {})})
    assert not any(s.name == "recsys_model_training_status" for s in collector.samples())
    collector.cache_seconds = 0
    assert any(s.name == "recsys_model_training_status" and s.value == 1.0 for s in collector.samples())


def test_standalone_exporter_serves_metrics_over_http(engine):
    add_runs(engine, dt.date(2026, 11, 21), {"extract": ("SUCCESS", {"rows": 42})})
    server, thread = serve(engine, 0, addr="127.0.0.1", cache_seconds=0)
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "recsys_rows_extracted 42.0" in body
    assert "recsys_model_training_status 0.0" in body


def test_a_blocked_ab_promotion_is_counted_for_seven_days(engine):
    from sqlalchemy import insert

    from recsys.db.models import ABTest, RecommendationModel

    with engine.begin() as conn:
        conn.execute(insert(RecommendationModel), [
            {"model_id": m, "model_type": "HYBRID", "version": v, "train_date": dt.date(2026, 11, 20), "metrics": {},
             "params": {}, "status": "ARCHIVED", "training_samples_count": 1, "artifact_uri": "x"}
            for v, m in enumerate(("a", "b"), start=1)])
        conn.execute(insert(ABTest), [
            {"control_model_id": "a", "treatment_model_id": "b", "status": "COMPLETED", "start_at": end - HOUR,
             "end_at": end, "results": {"decision": {"action": action}}}
            for end, action in ((NOW - HOUR, "blocked"), (NOW - 2 * HOUR, "promoted"),
                                (NOW - dt.timedelta(days=8), "blocked"))])
    s = as_dict(collect_samples(engine, now=NOW))
    assert s[("recsys_ab_promotion_blocked", ())] == 1.0
