"""monitoring/: alert rules checked and unit-tested with promtool (Debian's prometheus package),
the Prometheus config, the runbook links, and the Grafana provisioning and dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from recsys.pipeline_metrics import METRICS as PIPELINE_METRICS

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; scripts/ensure_services.sh does it)"
)

RULES = yaml.safe_load((MON / "alerts.yml").read_text())
ALERTS = {r["alert"]: r for g in RULES["groups"] for r in g["rules"] if "alert" in r}
DESIGN_ALERTS = {"ModelTrainingFailed", "CTRRegression", "ServingLatencyHigh", "CacheHitRateLow", "ColdStartFallback"}
API_METRICS = {  # exposed by the API at /metrics (recsys/serving/metrics.py)
    "recsys_request_latency_seconds_bucket", "recsys_request_latency_seconds_count", "recsys_request_latency_seconds_sum",
    "recsys_cache_requests_total", "recsys_recommendation_source_total", "recsys_degraded_total",
    "recsys_errors_total", "recsys_events_logged_total",
}
KNOWN_METRICS = API_METRICS | set(PIPELINE_METRICS) | {"up"}


def promtool(*args: str, cwd: Path = MON) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def metric_names(expr: str) -> set[str]:
    """recsys_* / up series names in a PromQL expression (functions and label values excluded)."""
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    return {m for m in re.findall(r"\b(recsys_[a-z0-9_]+|up)\b(?!\s*\()", no_strings)}


# --- promtool -----------------------------------------------------------------


@needs_promtool
def test_promtool_checks_the_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@needs_promtool
def test_promtool_checks_the_prometheus_config(tmp_path):
    """The whole check, files included: the API scrape's key file (a compose secret under /run/secrets in
    the container) is a stand-in file here."""
    key_file = tmp_path / "prometheus_api_key"
    key_file.write_text("stand-in-key-0123456789")
    text = (MON / "prometheus.yml").read_text()
    assert text.count("/run/secrets/prometheus_api_key") == 1
    (tmp_path / "prometheus.yml").write_text(text.replace("/run/secrets/prometheus_api_key", str(key_file)))
    shutil.copy(MON / "alerts.yml", tmp_path / "alerts.yml")
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_each_alert_provably_fires(alert, tmp_path):
    """With this alert's expression replaced by one that never fires, the unit tests must fail."""
    rules = yaml.safe_load((MON / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = "vector(0) > 1"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(MON / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}," in result.stdout + result.stderr


# --- the unit-test file covers every alert both ways ------------------------


def test_every_alert_has_a_firing_and_a_quiet_case():
    tests = yaml.safe_load((MON / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    fires, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == set(ALERTS), f"never shown to fire: {set(ALERTS) - fires}"
    assert quiet == set(ALERTS), f"never shown to stay quiet: {set(ALERTS) - quiet}"


# --- rule content -------------------------------------------------------------


def test_the_design_alerts_are_all_there():
    assert DESIGN_ALERTS <= set(ALERTS)


def test_thresholds_of_the_design():
    assert "0.95 * recsys_ctr_baseline" in ALERTS["CTRRegression"]["expr"]
    assert re.search(r"histogram_quantile\(0\.95,.*\)\s*>\s*0\.2\b", ALERTS["ServingLatencyHigh"]["expr"], re.S)
    assert re.search(r"<\s*0\.90\b", ALERTS["CacheHitRateLow"]["expr"])
    assert re.search(r">\s*0\.20\b", ALERTS["ColdStartFallback"]["expr"])
    assert "recsys_model_training_status == 1" in ALERTS["ModelTrainingFailed"]["expr"]


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_labels_annotations_and_runbook(alert):
    rule = ALERTS[alert]
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["labels"]["team"] == "recsys" and rule["labels"]["component"]
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    url = rule["annotations"]["runbook_url"]
    assert url == "{{ $externalLabels.runbook_base }}#" + alert.lower()
    headings = re.findall(r"^#+\s+(\S+)\s*$", (ROOT / "docs/runbooks.md").read_text(), re.M)
    assert alert in headings, f"docs/runbooks.md has no section {alert}"


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_alerts_read_only_exported_metrics(alert):
    names = metric_names(ALERTS[alert]["expr"])
    assert names and names <= KNOWN_METRICS, f"unknown metrics: {names - KNOWN_METRICS}"


def test_prometheus_scrapes_the_api_and_the_exporter():
    config = yaml.safe_load((MON / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert "runbook_base" in config["global"]["external_labels"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["recsys-api"] == ["api:8000"]
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "recsys-api")
    assert api_job["authorization"]["type"] == "Bearer"  # /metrics needs a key (tests/ops/test_compose.py)
    assert targets["recsys-pipeline"] == ["pipeline-exporter:9108"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "9108" in compose["pipeline-exporter"]["command"]


# --- Grafana ------------------------------------------------------------------

DASHBOARD = json.loads((MON / "grafana/dashboards/recsys.json").read_text())


def panels():
    return [p for p in DASHBOARD["panels"] if p["type"] != "row"]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards():
    ds = yaml.safe_load((MON / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"][0]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((MON / "grafana/provisioning/dashboards/recsys.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    for panel in panels():
        assert panel["datasource"]["uid"] == ds["uid"]
        assert all(t["datasource"]["uid"] == ds["uid"] for t in panel["targets"])


def test_dashboard_shows_what_the_issue_asks_for():
    titles = " | ".join(p["title"].lower() for p in panels())
    for words in ("latency percentiles", "throughput", "cache hit rate", "tier mix", "ctr per model", "training"):
        assert words in titles, words
    exprs = " ".join(t["expr"] for p in panels() for t in p["targets"])
    for q in ("0.50", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs


def test_dashboard_reads_only_exported_metrics_and_unique_ids():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and DASHBOARD["uid"]
    for panel in panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names and names <= KNOWN_METRICS, f"{panel['title']}: {names - KNOWN_METRICS}"
