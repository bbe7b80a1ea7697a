"""plugins/recsys_alerts.py: the alert dict, its Slack and email forms, and delivery end to end
to a local webhook (http.server) and a local SMTP responder on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from recsys.pipeline.validate import DataValidationError

import recsys_alerts  # plugins/ is on the path (pytest's pythonpath, like Airflow's plugins folder)
from recsys_alerts import (
    AlertDeliveryError,
    build_alert,
    build_deadline_alert,
    deadline_alert,
    format_email,
    on_deadline_missed,
    format_slack,
    on_task_failure,
    on_task_retry,
    send_webhook,
    url_from_connection,
)

LOGICAL = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.timezone.utc)
LOG_URL = "http://airflow.local:8080/dags/recsys_nightly/runs/scheduled__2026-11-21/tasks/validate?try_number=2"


class LegacyDataValidationError(Exception):
    """A data-quality error that lists its failures in ``failed`` (the other shape the notifier reads)."""

    def __init__(self, message: str, failed: list):
        super().__init__(message)
        self.failed = failed


def fake_context(exc: BaseException | None, task_id: str = "validate", try_number: int = 2, map_index: int = -1):
    ti = SimpleNamespace(
        dag_id="recsys_nightly", task_id=task_id, try_number=try_number, max_tries=2, map_index=map_index,
        run_id="scheduled__2026-11-21T02:00:00+00:00", log_url=LOG_URL,
    )
    return {"ti": ti, "exception": exc, "logical_date": LOGICAL, "run_id": ti.run_id}


def dq_error() -> DataValidationError:
    """The real error of recsys.pipeline.validate, with a report shaped like validate_day's."""
    checks = [
        {"check": "user_id_not_null", "expectation": "expect_column_values_to_not_be_null", "success": False,
         "unexpected_count": 12, "element_count": 900, "observed_value": None, "error": None},
        {"check": "day_volume", "expectation": "expect_table_row_count_to_be_between", "success": False,
         "unexpected_count": None, "element_count": None, "observed_value": 10, "error": None},
        {"check": "event_type_known", "expectation": "expect_column_values_to_be_in_set", "success": True},
    ]
    summary = ("Data validation failed for 2026-11-20: 2 of 3 checks failed on 900 rows.\n"
               "  - user_id_not_null: 12 of 900 rows unexpected\n  - day_volume: observed 10")
    return DataValidationError(summary, report={"checks": checks}, report_uri="s3://b/validation/date=2026-11-20/report.json")


# --- a local webhook --------------------------------------------------------


class Webhook:
    """A Slack-like endpoint on 127.0.0.1 that records each POST; ``statuses`` scripts its answers."""

    def __init__(self, statuses=()):
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                outer.paths.append(self.path)
                outer.bodies.append(json.loads(self.rfile.read(length)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T0/B0/x"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def no_alert_config(monkeypatch):
    for name in ("RECSYS_ALERT_WEBHOOK_URL", "RECSYS_ALERT_EMAIL", "RECSYS_ALERT_SMTP_CONN_ID",
                 "AIRFLOW_CONN_RECSYS_ALERTS_WEBHOOK", "AIRFLOW_CONN_SMTP_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(recsys_alerts, "send_webhook", _fast(recsys_alerts.send_webhook))


def _fast(fn):
    def wrapper(url, payload, **kw):
        kw.setdefault("timeout", 5.0)
        kw.setdefault("backoff", 0.01)
        return fn(url, payload, **kw)

    return wrapper


# --- build_alert / format ---------------------------------------------------


def test_build_alert_takes_every_field_from_the_context():
    alert = build_alert(fake_context(dq_error()))
    assert alert["dag_id"] == "recsys_nightly"
    assert alert["task_id"] == "validate"
    assert alert["logical_date"] == "2026-11-21T02:00:00+00:00"
    assert alert["try_number"] == 2
    assert alert["run_id"] == "scheduled__2026-11-21T02:00:00+00:00"
    assert alert["log_url"] == LOG_URL
    assert alert["error"].startswith("Data validation failed for 2026-11-20")
    assert "day_volume: observed 10" in alert["error"]
    assert alert["data_quality"] is True
    assert alert["error_type"] == "DataValidationError"
    assert alert["failed_expectations"] == [
        {"check": "user_id_not_null", "expectation": "expect_column_values_to_not_be_null",
         "unexpected_count": 12, "element_count": 900},
        {"check": "day_volume", "expectation": "expect_table_row_count_to_be_between", "observed_value": 10},
    ]
    assert alert["report_uri"] == "s3://b/validation/date=2026-11-20/report.json"
    assert alert["map_index"] is None
    json.dumps(alert)  # JSON-able


def test_a_failed_list_on_the_error_is_taken_as_is():
    alert = build_alert(fake_context(LegacyDataValidationError("bad day", ["not_null", {"check": "volume"}])))
    assert alert["data_quality"] is False  # data quality is the DataValidationError class (or a subclass)
    assert alert["failed_expectations"] == ["not_null", {"check": "volume"}]


def test_subclasses_of_the_data_quality_error_count():
    class Stricter(DataValidationError):
        pass

    assert build_alert(fake_context(Stricter("x")))["data_quality"] is True
    assert build_alert(fake_context(ValueError("x")))["data_quality"] is False


def test_build_alert_for_an_ordinary_error_and_a_mapped_task():
    alert = build_alert(fake_context(ValueError("no LIVE model"), task_id="precompute", map_index=3))
    assert alert["data_quality"] is False
    assert alert["failed_expectations"] == []
    assert alert["error"] == "no LIVE model"
    assert alert["map_index"] == 3


def test_build_alert_survives_a_sparse_context():
    alert = build_alert({"dag": SimpleNamespace(dag_id="recsys_nightly")})
    assert alert["dag_id"] == "recsys_nightly"
    assert alert["task_id"] is None and alert["error"] == "" and alert["log_url"] is None


def test_format_slack_has_text_blocks_expectations_and_log_link():
    payload = format_slack(build_alert(fake_context(dq_error())))
    assert "recsys_nightly.validate failed" in payload["text"]
    assert "2026-11-21T02:00:00+00:00" in payload["text"]
    texts = json.dumps(payload["blocks"])
    assert "expect_column_values_to_not_be_null" in texts
    assert LOG_URL in texts
    assert all(b["type"] == "section" for b in payload["blocks"])
    for block in payload["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= 3000


def test_format_email_escapes_and_lists_expectations():
    subject, html = format_email(build_alert(fake_context(RuntimeError("<boom> & co"))))
    assert subject.startswith("[recsys] recsys_nightly.validate failed")
    assert "&lt;boom&gt; &amp; co" in html and "<boom>" not in html
    subject, html = format_email(build_alert(fake_context(dq_error())))
    assert "Failed expectations" in html and "unexpected_count" in html


# --- connection -> URL ------------------------------------------------------


def conn(**kw):
    base = {"host": None, "schema": None, "port": None, "conn_type": "http", "extra_dejson": {}}
    return SimpleNamespace(**{**base, **kw})


def test_url_from_connection_forms():
    assert url_from_connection(conn(host="https://hooks.example.com/services/T/B/X")) == "https://hooks.example.com/services/T/B/X"
    assert url_from_connection(conn(host="127.0.0.1", port=9000, schema="http", extra_dejson={"endpoint": "hook"})) == "http://127.0.0.1:9000/hook"
    # URI form https://hooks.example.com/services/T/B/X is stored as conn_type https, path in schema
    assert url_from_connection(conn(host="hooks.example.com", conn_type="https", schema="services/T/B/X")) == "https://hooks.example.com/services/T/B/X"
    assert url_from_connection(conn(host="")) is None


# --- delivery -----------------------------------------------------------------


def test_send_webhook_retries_once_on_5xx():
    with Webhook(statuses=[503, 200]) as hook:
        assert send_webhook(hook.url, {"text": "x"}, backoff=0.01) == 200
    assert len(hook.bodies) == 2


def test_send_webhook_raises_after_retries_and_does_not_retry_4xx():
    with Webhook(statuses=[500, 500, 500]) as hook:
        with pytest.raises(AlertDeliveryError, match="HTTP 500"):
            send_webhook(hook.url, {"text": "x"}, backoff=0.01)
    assert len(hook.bodies) == 2
    with Webhook(statuses=[400]) as hook:
        with pytest.raises(AlertDeliveryError, match="HTTP 400"):
            send_webhook(hook.url, {"text": "x"}, backoff=0.01)
    assert len(hook.bodies) == 1


def test_on_task_failure_posts_to_the_env_webhook_and_logs_json(no_alert_config, monkeypatch, caplog):
    with Webhook() as hook:
        monkeypatch.setenv("RECSYS_ALERT_WEBHOOK_URL", hook.url)
        with caplog.at_level(logging.ERROR, logger="recsys.alerts"):
            result = on_task_failure(fake_context(dq_error()))
    assert result == {"webhook": "HTTP 200"}
    assert hook.paths == ["/services/T0/B0/x"]
    body = hook.bodies[0]
    assert "recsys_nightly.validate failed" in body["text"]
    assert "expect_table_row_count_to_be_between" in json.dumps(body["blocks"])
    assert "report.json" in json.dumps(body["blocks"])
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert lines and lines[0]["event"] == "recsys_alert" and lines[0]["task_id"] == "validate"


def test_on_task_failure_uses_the_airflow_connection_first(no_alert_config, monkeypatch):
    with Webhook() as hook, Webhook() as env_hook:
        conn_json = {"conn_type": "http", "host": "127.0.0.1", "port": hook.port, "schema": "http",
                     "extra": {"endpoint": "/from-connection"}}
        monkeypatch.setenv("AIRFLOW_CONN_RECSYS_ALERTS_WEBHOOK", json.dumps(conn_json))
        monkeypatch.setenv("RECSYS_ALERT_WEBHOOK_URL", env_hook.url)
        on_task_failure(fake_context(ValueError("boom"), task_id="train"))
    assert hook.paths == ["/from-connection"] and env_hook.bodies == []
    assert "recsys_nightly.train failed" in hook.bodies[0]["text"]


def test_a_notifier_never_raises(no_alert_config, monkeypatch, caplog):
    # nothing listens on this port: delivery fails, the callback logs and returns
    with Webhook() as dead:
        url = dead.url
    monkeypatch.setenv("RECSYS_ALERT_WEBHOOK_URL", url)
    result = on_task_failure(fake_context(ValueError("boom")))
    assert result["webhook"].startswith("failed")
    assert on_task_failure(object()) == {}  # not even a mapping
    assert any("recsys_alert" in r.getMessage() for r in caplog.records)


def test_retry_alerts_only_for_data_quality_failures(no_alert_config, monkeypatch):
    with Webhook() as hook:
        monkeypatch.setenv("RECSYS_ALERT_WEBHOOK_URL", hook.url)
        assert on_task_retry(fake_context(TimeoutError("db slow"), task_id="extract")) == {}
        assert on_task_retry(fake_context(dq_error())) == {"webhook": "HTTP 200"}
    assert len(hook.bodies) == 1
    assert "will retry" in hook.bodies[0]["text"]


# --- email through Airflow's SMTP connection --------------------------------


class SmtpSink(socketserver.ThreadingTCPServer):
    """The smallest SMTP responder smtplib accepts; records each DATA payload."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.messages: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 sink\r\n")
                while line := self.rfile.readline():
                    verb = line.decode().strip().split(" ")[0].upper()
                    if verb == "DATA":
                        self.wfile.write(b"354 go\r\n")
                        data = []
                        while (row := self.rfile.readline()) not in (b".\r\n", b""):
                            data.append(row.decode())
                        outer.messages.append("".join(data))
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    self.wfile.write(b"250 ok\r\n")

        super().__init__(("127.0.0.1", 0), Handler)


def test_email_goes_through_the_smtp_connection(no_alert_config, monkeypatch):
    sink = SmtpSink()
    threading.Thread(target=sink.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": sink.server_address[1],
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@test", "retry_limit": 0}}
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
        monkeypatch.setenv("RECSYS_ALERT_EMAIL", "oncall@test")
        result = on_task_failure(fake_context(dq_error()))
    finally:
        sink.shutdown()
        sink.server_close()
    assert result == {"email": "sent"}
    assert len(sink.messages) == 1
    assert "recsys_nightly.validate failed" in sink.messages[0]


# --- the 4-hour deadline ------------------------------------------------------


def deadline_context():
    run = {"dag_id": "recsys_nightly", "dag_run_id": "scheduled__2026-11-21T02:00:00+00:00",
           "logical_date": "2026-11-21T02:00:00Z", "queued_at": "2026-11-21T02:00:05Z", "state": "running"}
    return {"dag_run": run, "deadline": {"id": "0197", "deadline_time": dt.datetime(2026, 11, 21, 6, 0, 5, tzinfo=dt.timezone.utc)}}


def test_build_deadline_alert_names_the_run_and_the_deadline():
    alert = build_deadline_alert(deadline_context(), limit="4 hours")
    assert alert["kind"] == "deadline" and alert["dag_id"] == "recsys_nightly"
    assert alert["run_id"] == "scheduled__2026-11-21T02:00:00+00:00"
    assert "within 4 hours" in alert["error"] and "2026-11-21T06:00:05+00:00" in alert["error"]
    assert "missed its deadline" in format_slack(alert)["text"]


def test_sync_deadline_callback_posts(no_alert_config, monkeypatch):
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    callback = SyncCallback("recsys_alerts.on_deadline_missed", kwargs={"limit": "4 hours"})
    DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=4), callback=callback)
    with Webhook() as hook:
        monkeypatch.setenv("RECSYS_ALERT_WEBHOOK_URL", hook.url)
        assert on_deadline_missed(context=deadline_context(), limit="4 hours") == {"webhook": "HTTP 200"}
        assert on_deadline_missed(context="not a context") == {}
    assert len(hook.bodies) == 1
    assert "within 4 hours" in json.dumps(hook.bodies[0]["blocks"])


def test_async_deadline_callback_is_awaitable_and_posts(no_alert_config, monkeypatch):
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    callback = AsyncCallback(deadline_alert, kwargs={"limit": "4 hours"})  # refuses a non-async callable
    assert callback.path == "recsys_alerts.deadline_alert"
    DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=4), callback=callback)
    with Webhook() as hook:
        monkeypatch.setenv("RECSYS_ALERT_WEBHOOK_URL", hook.url)
        result = asyncio.run(deadline_alert(context=deadline_context(), limit="4 hours"))
    assert result == {"webhook": "HTTP 200"}
    assert "recsys_nightly missed its deadline" in hook.bodies[0]["text"]
