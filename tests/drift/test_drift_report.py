"""The nightly drift steps on the real PostgreSQL and an artifact store: a shifted day is flagged in the
report, the record and the Prometheus metric; a stable day stays quiet; the model-output check."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from recsys.constants import STEP_FAILED, STEP_SKIPPED, STEP_SUCCESS
from recsys.data.loading import load_shop
from recsys.data.shift import shift_day
from recsys.drift.report import DriftError, drift_report, output_drift
from recsys.pipeline.extract import extract_day
from recsys.pipeline.runs import get_steps
from recsys.pipeline_metrics import collect_samples
from recsys.settings import Settings
from shop_dates import LAST_EVENT_DAY

DAY = LAST_EVENT_DAY
NOW = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path):
    return Settings(var_dir=tmp_path, drift_sample_users=300)  # default threshold (0.2) and window (7)


def steps(engine, day=DAY):
    return {s["step"]: s for s in get_steps(engine, day)}


def promtool_drift_alerts(engine, tmp_path) -> list[dict]:
    """DataDriftDetected as the real rule gives it on the exporter's samples (held 10 minutes), checked by
    promtool against the features whose PSI reaches the exported threshold; returns those."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (scripts/ensure_services.sh installs Debian's prometheus)")
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "monitoring/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # the expressions are under test here, not the texts
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    samples = collect_samples(engine, now=NOW)
    series = [{"series": s.name + "{" + ",".join(f'{k}="{v}"' for k, v in {**s.labels, "job": "p"}.items()) + "}",
               "values": f"{s.value}x20"} for s in samples]
    threshold = next(s.value for s in samples if s.name == "recsys_data_drift_psi_threshold")
    expected = [{"exp_labels": {"severity": "warning", "team": "recsys", "component": "data", "job": "p", **s.labels}}
                for s in samples if s.name == "recsys_data_drift_psi" and s.value >= threshold]
    case = {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "10m", "alertname": "DataDriftDetected", "exp_alerts": expected}]}
    (tmp_path / "t.yml").write_text(yaml.safe_dump({"rule_files": ["alerts.yml"], "tests": [case]}))
    done = subprocess.run(["promtool", "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return expected


def drift_metrics(engine):
    out = {}
    for s in collect_samples(engine, now=NOW):
        if s.name.startswith(("recsys_data_drift", "recsys_recommendation")):
            out[(s.name, tuple(s.labels.values()))] = s.value
    return out


def test_a_stable_day_writes_a_quiet_report(shop_engine, local_store, settings, tmp_path):
    extract_day(shop_engine, local_store, DAY)
    out = drift_report(shop_engine, local_store, DAY, settings)
    assert out["drifted"] == [] and out["events"] > 0 and out["reference_events"] > 5 * out["events"]
    assert out["html_key"] == "drift/date=2026-11-20/report.html" and out["json_key"].endswith("report.json")
    assert local_store.list("drift/date=2026-11-20") == [
        "drift/date=2026-11-20/profile.json", "drift/date=2026-11-20/report.html", "drift/date=2026-11-20/report.json"]
    report = json.loads(local_store.get_bytes(out["json_key"]))
    assert report["reference"] == {"days": 7, "first": "2026-11-13", "last": "2026-11-19",
                                   "events": out["reference_events"], "days_with_events": 7}
    assert "No feature drifted." in local_store.get_bytes(out["html_key"]).decode()
    record = steps(shop_engine)["drift"]
    assert record["status"] == STEP_SUCCESS and record["details"]["psi"] == out["psi"]
    assert record["details"]["duration_seconds"] > 0
    metrics = drift_metrics(shop_engine)
    assert metrics[("recsys_data_drift_features_drifted", ())] == 0
    assert metrics[("recsys_data_drift_psi_threshold", ())] == 0.2
    psi = {labels[0]: v for (name, labels), v in metrics.items() if name == "recsys_data_drift_psi"}
    assert set(psi) == {"event_type", "category", "price_band", "device", "country", "new_product", "activity"}
    assert max(psi.values()) < 0.2
    assert len(json.dumps(out)) < 2000  # small enough for XCom
    assert promtool_drift_alerts(shop_engine, tmp_path) == []  # the alert stays quiet


def test_a_drifting_day_is_flagged_in_the_report_the_record_the_metric_and_the_alert(engine, small_shop, local_store,
                                                                                    settings, tmp_path):
    load_shop(engine, shift_day(small_shop, DAY, factor=3, category="Electronics", seed=1))
    extract_day(engine, local_store, DAY)
    out = drift_report(engine, local_store, DAY, settings)
    assert "category" in out["drifted"] and out["psi"]["category"] >= 0.2
    html = local_store.get_bytes(out["html_key"]).decode()
    assert "Drifted features: " in html and "category" in html.split("Drifted features: ")[1].split("<")[0]
    assert "Electronics" in html
    report = json.loads(local_store.get_bytes(out["json_key"]))
    category = next(f for f in report["features"] if f["feature"] == "category")
    assert category["values"][0]["value"] == "Electronics" and category["drifted"]
    metrics = drift_metrics(engine)
    assert metrics[("recsys_data_drift_psi", ("category",))] >= metrics[("recsys_data_drift_psi_threshold", ())]
    assert metrics[("recsys_data_drift_features_drifted", ())] == len(out["drifted"])
    fired = promtool_drift_alerts(engine, tmp_path)  # the real rule fires on these samples
    assert {a["exp_labels"]["feature"] for a in fired} == set(out["drifted"])

    again = drift_report(engine, local_store, DAY, settings)  # a re-run overwrites the same keys
    assert again["psi"] == out["psi"] and again["html_uri"] == out["html_uri"]
    assert len(local_store.list("drift/")) == 3


def test_a_cached_profile_is_the_reference_of_later_days(shop_engine, local_store, settings):
    previous = DAY - dt.timedelta(days=1)
    first = drift_report(shop_engine, local_store, previous, settings)
    profile = json.loads(local_store.get_bytes("drift/date=2026-11-19/profile.json"))
    assert profile["events"] == first["events"] and profile["day"] == "2026-11-19"
    profile["events"] += 1_000_000  # the cached profile is read, not recomputed
    local_store.put_bytes("drift/date=2026-11-19/profile.json", json.dumps(profile).encode())
    out = drift_report(shop_engine, local_store, DAY, settings)  # no partition: read from user_events
    assert out["reference_events"] > 1_000_000


def test_a_day_without_events_fails_readably_and_writes_nothing(shop_engine, local_store, settings):
    empty = DAY + dt.timedelta(days=3)
    with pytest.raises(DriftError, match="no events on 2026-11-23"):
        drift_report(shop_engine, local_store, empty, settings)
    assert local_store.list("drift/") == []
    record = steps(shop_engine, empty)["drift"]
    assert record["status"] == STEP_FAILED and "no events" in record["details"]["error"]


def test_bad_day_is_refused(shop_engine, local_store, settings):
    with pytest.raises(TypeError, match="datetime.date"):
        drift_report(shop_engine, local_store, "2026-11-20", settings)


# --- model output -------------------------------------------------------------------------
def _train(engine, store, seed):
    from recsys.families.hybrid.fit import TrainParams
    from recsys.pipeline.train import train_model

    params = TrainParams(epochs=3, no_components=8, window_days=14, seed=seed)
    return train_model(engine, store, DAY, params)["model_id"]


def test_output_drift_compares_the_new_model_with_live(shop_engine, local_store, settings):
    from recsys import registry

    first = _train(shop_engine, local_store, seed=1)
    skipped = output_drift(shop_engine, local_store, DAY, first, settings=settings)
    assert skipped["compared"] is False and steps(shop_engine)["output_drift"]["status"] == STEP_SKIPPED

    registry.promote(shop_engine, first, reason="test")
    second = _train(shop_engine, local_store, seed=2)
    out = output_drift(shop_engine, local_store, DAY, second, settings=settings)
    assert out["compared"] and out["live_model_id"] == first and out["users"] == 300
    assert out["html_key"] == "drift/date=2026-11-20/output.html"
    assert 0 < out["coverage_new"] <= 1 and 0 <= out["gini_new"] < 1 and 0 < out["overlap_jaccard"] <= 1
    assert out["concentration_jump"] is False and out["jump_reasons"] == []  # same data and settings
    assert 0.5 < out["coverage_ratio"] < 2
    html = local_store.get_bytes(out["html_key"]).decode()
    assert second in html and first in html and "no concentration jump" in html
    report = json.loads(local_store.get_bytes(out["json_key"]))
    assert report["new"]["users"] == report["live"]["users"] == 300 and report["k"] == 10
    metrics = drift_metrics(shop_engine)
    assert metrics[("recsys_recommendation_gini", ("new",))] == pytest.approx(out["gini_new"])
    assert metrics[("recsys_recommendation_gini_change", ())] == pytest.approx(out["gini_change"])
    assert metrics[("recsys_recommendation_gini_jump_threshold", ())] == settings.drift_gini_jump
    assert metrics[("recsys_recommendation_concentration_jump", ())] == 0.0

    with pytest.raises(Exception, match="unknown model id"):
        output_drift(shop_engine, local_store, DAY, "01NOSUCHMODEL0000000000000", settings=settings)
    assert steps(shop_engine)["output_drift"]["status"] == STEP_FAILED
