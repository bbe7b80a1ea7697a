"""On-call alerts for the recsys DAGs: task failures, data-quality retries, missed deadlines.

Used by ``dags/recsys_nightly.py``::

    from recsys_alerts import on_task_failure, on_task_retry

    default_args = {"on_failure_callback": on_task_failure, "on_retry_callback": on_task_retry}
    deadline = DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=timedelta(hours=4),
                             callback=SyncCallback("recsys_alerts.on_deadline_missed", kwargs={"limit": "4 hours"}))

Each alert is one dict (``build_alert``) that is always logged as one JSON line
(logger ``recsys.alerts``), so it exists even with nothing else configured, and
is then sent to

- a Slack-compatible webhook: the Airflow connection ``recsys_alerts_webhook``
  (HTTP; ``host`` may hold the whole URL, or ``schema``/``host``/``port`` plus
  ``extra.endpoint`` for the path), else the env var ``RECSYS_ALERT_WEBHOOK_URL``;
- email through Airflow's SMTP connection (``RECSYS_ALERT_SMTP_CONN_ID``,
  default ``smtp_default``) when ``RECSYS_ALERT_EMAIL`` lists recipients.

A notifier never raises: a delivery that fails is logged and the next one is tried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any

CONN_WEBHOOK = "recsys_alerts_webhook"
ENV_WEBHOOK_URL = "RECSYS_ALERT_WEBHOOK_URL"
ENV_EMAIL = "RECSYS_ALERT_EMAIL"
ENV_SMTP_CONN = "RECSYS_ALERT_SMTP_CONN_ID"
DEFAULT_SMTP_CONN = "smtp_default"
DATA_QUALITY_ERRORS = ("DataValidationError",)  # class names; matched along the exception's MRO
EXPECTATION_FIELDS = ("check", "expectation", "unexpected_count", "element_count", "observed_value", "error")
MAX_ERROR_CHARS = 2800  # a Slack section block holds 3000 characters

log = logging.getLogger("recsys.alerts")


class AlertDeliveryError(RuntimeError):
    """A webhook did not accept an alert after its retries."""


# --- the alert ----------------------------------------------------------------


def is_data_quality_error(exc: object) -> bool:
    """True for ``recsys.pipeline.validate.DataValidationError`` (or a subclass)."""
    return isinstance(exc, BaseException) and any(
        cls.__name__ in DATA_QUALITY_ERRORS for cls in type(exc).__mro__
    )


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    try:
        value = getattr(obj, name, default)
    except Exception:  # e.g. ti.log_url needs Airflow config
        return default
    return default if value is None else value


def _failed_expectations(exc: object) -> list:
    """The failed checks of a data-quality error: its ``failed`` list, else the failed ``report["checks"]``."""
    failed = _attr(exc, "failed", None)
    if isinstance(failed, (list, tuple)):
        return [item if isinstance(item, (str, int, float, dict)) else str(item) for item in failed]
    report = _attr(exc, "report", None)
    checks = report.get("checks") if isinstance(report, dict) else None
    if not isinstance(checks, list):
        return []
    return [
        {k: c.get(k) for k in EXPECTATION_FIELDS if c.get(k) is not None}
        for c in checks
        if isinstance(c, dict) and not c.get("success", True)
    ]


def build_alert(context: Any, kind: str = "failure") -> dict:
    """The facts on-call needs, from an Airflow task context (a mapping)."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    map_index = _attr(ti, "map_index", -1)
    return {
        "kind": kind,
        "dag_id": _attr(ti, "dag_id") or _attr(dag, "dag_id"),
        "task_id": _attr(ti, "task_id") or _attr(context.get("task"), "task_id"),
        "map_index": map_index if isinstance(map_index, int) and map_index >= 0 else None,
        "run_id": context.get("run_id") or _attr(ti, "run_id") or _attr(dag_run, "run_id"),
        "logical_date": _iso(context.get("logical_date") or _attr(dag_run, "logical_date")),
        "try_number": _attr(ti, "try_number"),
        "max_tries": _attr(ti, "max_tries"),
        "error_type": type(exc).__name__ if isinstance(exc, BaseException) else None,
        "error": (str(exc) if exc is not None else "")[:MAX_ERROR_CHARS],
        "data_quality": is_data_quality_error(exc),
        "failed_expectations": _failed_expectations(exc),
        "report_uri": _attr(exc, "report_uri"),
        "log_url": _attr(ti, "log_url"),
    }


def _title(alert: dict) -> str:
    where = f"{alert['dag_id']}.{alert['task_id']}" if alert.get("task_id") else str(alert["dag_id"])
    if alert.get("map_index") is not None:
        where += f"[{alert['map_index']}]"
    what = {"failure": "failed", "retry": "failed and will retry", "deadline": "missed its deadline"}
    return f"{where} {what.get(alert['kind'], alert['kind'])} (logical date {alert.get('logical_date') or 'none'})"


def format_slack(alert: dict) -> dict:
    """Slack-compatible webhook JSON: a plain ``text`` fallback plus ``blocks``."""
    icon = {"failure": ":red_circle:", "retry": ":warning:", "deadline": ":alarm_clock:"}.get(alert["kind"], ":bell:")
    title = f"{icon} {_title(alert)}"
    fields = [
        f"*DAG*\n{alert.get('dag_id')}",
        f"*Task*\n{alert.get('task_id') or '-'}",
        f"*Logical date*\n{alert.get('logical_date') or '-'}",
        f"*Try*\n{alert.get('try_number') or '-'}",
        f"*Run*\n{alert.get('run_id') or '-'}",
    ]
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alert.get("error"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{alert['error']}```"}})
    if alert.get("failed_expectations"):
        lines = "\n".join(f"• {json.dumps(e) if isinstance(e, dict) else e}" for e in alert["failed_expectations"])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Failed expectations*\n{lines}"[:3000]}})
    links = [f"<{alert['log_url']}|Open the log>"] if alert.get("log_url") else []
    links += [f"validation report: {alert['report_uri']}"] if alert.get("report_uri") else []
    if links:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": " | ".join(links)}})
    text = title + (f"\n{alert['error'].splitlines()[0]}" if alert.get("error") else "")
    return {"text": text, "blocks": blocks}


def format_email(alert: dict) -> tuple[str, str]:
    """``(subject, html body)`` of the alert email."""
    from html import escape

    rows = "".join(
        f"<tr><th align='left'>{escape(k)}</th><td>{escape(str(alert.get(k) or '-'))}</td></tr>"
        for k in ("dag_id", "task_id", "logical_date", "try_number", "run_id")
    )
    failed = "".join(f"<li>{escape(json.dumps(e) if isinstance(e, dict) else str(e))}</li>" for e in alert["failed_expectations"])
    body = f"<table>{rows}</table><pre>{escape(alert.get('error') or '')}</pre>"
    if failed:
        body += f"<p>Failed expectations:</p><ul>{failed}</ul>"
    if alert.get("report_uri"):
        body += f"<p>Validation report: {escape(alert['report_uri'])}</p>"
    if alert.get("log_url"):
        body += f"<p><a href=\"{escape(alert['log_url'])}\">Open the log</a></p>"
    return f"[recsys] {_title(alert)}", body


# --- delivery -----------------------------------------------------------------


def send_webhook(url: str, payload: dict, *, timeout: float = 10.0, retries: int = 1, backoff: float = 1.0) -> int:
    """POST ``payload`` as JSON; retry ``retries`` times on network errors, 5xx and 429.

    Returns the HTTP status; raises ``AlertDeliveryError`` when every try failed.
    """
    data = json.dumps(payload, default=str).encode()
    last = "no attempt"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * attempt)
        request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
    raise AlertDeliveryError(f"webhook did not accept the alert: {last}")


def _connection(conn_id: str):
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # not defined (AirflowNotFoundException) or no Airflow context
        log.debug("connection %s unavailable: %s", conn_id, exc)
        return None


def url_from_connection(conn: Any) -> str | None:
    """The webhook URL of an HTTP connection.

    ``host`` may hold the whole URL; otherwise the URL is ``scheme://host[:port][/path][endpoint]``
    where the scheme is ``schema`` (JSON form: ``"schema": "https"``) or the URI form's
    connection type, the path is the URI form's path (Airflow stores it in ``schema``) and
    ``endpoint`` comes from the extras.
    """
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        return None
    extra = getattr(conn, "extra_dejson", None) or {}
    endpoint = str(extra.get("endpoint", ""))
    if endpoint and not endpoint.startswith("/"):
        endpoint = "/" + endpoint
    if "://" in host:
        return host.rstrip("/") + endpoint if endpoint else host
    schema = (getattr(conn, "schema", None) or "").strip("/")
    conn_type = getattr(conn, "conn_type", None) or ""
    if schema in ("http", "https"):
        scheme, path = schema, ""
    else:
        scheme, path = (conn_type if conn_type in ("http", "https") else "https"), (f"/{schema}" if schema else "")
    port = f":{conn.port}" if getattr(conn, "port", None) else ""
    return f"{scheme}://{host}{port}{path}{endpoint}"


def webhook_url() -> str | None:
    conn = _connection(CONN_WEBHOOK)
    url = url_from_connection(conn) if conn is not None else None
    return url or os.environ.get(ENV_WEBHOOK_URL) or None


def send_email(alert: dict, recipients: str, conn_id: str | None = None) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    subject, html = format_email(alert)
    with SmtpHook(smtp_conn_id=conn_id or os.environ.get(ENV_SMTP_CONN) or DEFAULT_SMTP_CONN) as hook:
        hook.send_email_smtp(to=recipients, subject=subject, html_content=html)


def notify(alert: dict) -> dict:
    """Log the alert as one JSON line, then deliver it where configured. Never raises."""
    sent: dict[str, str] = {}
    try:
        log.error(json.dumps({"event": "recsys_alert", **alert}, default=str))
        url = webhook_url()
        if url:
            try:
                sent["webhook"] = f"HTTP {send_webhook(url, format_slack(alert))}"
            except Exception as exc:
                sent["webhook"] = f"failed: {exc}"
        recipients = os.environ.get(ENV_EMAIL, "").strip()
        if recipients:
            try:
                send_email(alert, recipients)
                sent["email"] = "sent"
            except Exception as exc:
                sent["email"] = f"failed: {exc}"
        if any(v.startswith("failed") for v in sent.values()):
            log.warning("recsys alert delivery problems: %s", sent)
    except Exception:  # the notifier must never fail the task's failure handling
        log.exception("recsys alert could not be built or sent")
    return sent


# --- the callbacks the DAG uses ---------------------------------------------


def _deliver(build, *args: Any, **kwargs: Any) -> dict:
    try:
        alert = build(*args, **kwargs)
    except Exception:
        log.exception("recsys alert: unreadable callback context")
        return {}
    return notify(alert) if alert else {}


def on_task_failure(context: Any) -> dict:
    """``on_failure_callback``: every task failure pages."""
    return _deliver(build_alert, context, "failure")


def _retry_alert(context: Any) -> dict | None:
    return build_alert(context, "retry") if is_data_quality_error(context.get("exception")) else None


def on_task_retry(context: Any) -> dict:
    """``on_retry_callback``: only data-quality failures page on retry (a retry will not fix the data)."""
    return _deliver(_retry_alert, context)


def build_deadline_alert(context: dict | None, **kwargs: Any) -> dict:
    """The alert of a missed DAG-run deadline, from the simple context Airflow passes to deadline callbacks."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id, run_id = run.get("dag_id"), run.get("dag_run_id") or run.get("run_id")
    limit = kwargs.get("limit", "its deadline")
    error = (
        f"run {run_id} (queued {_iso(run.get('queued_at'))}, state {run.get('state')}) has not finished "
        f"within {limit}: deadline was {_iso(deadline.get('deadline_time'))}"
    )
    return {
        "kind": "deadline", "dag_id": dag_id, "task_id": None, "map_index": None, "run_id": run_id,
        "logical_date": _iso(run.get("logical_date")), "try_number": None, "max_tries": None,
        "error_type": "DeadlineMissed", "error": error, "data_quality": False, "failed_expectations": [],
        "report_uri": None, "log_url": _run_url(dag_id, run_id),
    }


def _run_url(dag_id: str | None, run_id: str | None) -> str | None:
    if not (dag_id and run_id):
        return None
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:
        base = ""
    from urllib.parse import quote

    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe='')}" if base else None


def on_deadline_missed(context: dict | None = None, **kwargs: Any) -> dict:
    """Deadline callback for ``SyncCallback("recsys_alerts.on_deadline_missed")``: runs on a worker."""
    return _deliver(build_deadline_alert, context, **kwargs)


async def deadline_alert(context: dict | None = None, **kwargs: Any) -> dict:
    """Deadline callback for ``AsyncCallback(deadline_alert)``: runs in the triggerer."""
    # delivery blocks (HTTP, SMTP, connection look-ups): keep it off the triggerer's event loop
    return await asyncio.to_thread(on_deadline_missed, context, **kwargs)


def task_defaults(**overrides: Any) -> dict:
    """``default_args`` of every recsys DAG: retries from the settings, backoff, and these alerts."""
    import datetime as _dt

    from recsys.settings import get_settings

    return {
        "retries": get_settings().dag_retries,
        "retry_delay": _dt.timedelta(minutes=5),
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
        **overrides,
    }
