"""``/admin/models``: the registry's rows by status (metrics, the selection table stored with the row), the
promotion history and a summary of the latest data-drift report."""

from __future__ import annotations

from recsys.api.console.layout import esc, page, table
from recsys.constants import STATUS_ARCHIVED, STATUS_CANDIDATE, STATUS_LIVE, STATUS_TRAINING

SECTIONS = (STATUS_LIVE, STATUS_CANDIDATE, STATUS_TRAINING, STATUS_ARCHIVED)
MODEL_HEADERS = ("Model", "Type", "Version", "Train date", "Created", "Promoted", "Metrics", "Selection")
HISTORY_HEADERS = ("#", "Model", "Previous", "Kind", "When", "Rolled back", "Reason")


def fmt_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metrics_html(metrics: dict | None) -> str:
    """Nested metrics (``{"new": {"ndcg@10": 0.2}}``) as lines ``group: name value, ...``."""
    if not metrics:
        return "<small>none</small>"
    lines = []
    for group, values in metrics.items():
        if isinstance(values, dict):
            flat = ", ".join(f"{esc(k)} {esc(fmt_value(v))}" for k, v in values.items() if not isinstance(v, dict))
            lines.append(f"<b>{esc(group)}</b>: {flat}")
        else:
            lines.append(f"<b>{esc(group)}</b>: {esc(fmt_value(values))}")
    return "<br>".join(lines)


def selection_html(params: dict | None) -> str:
    """The selection stored in ``params["selection"]`` (``recsys.pipeline.model_choice``) as a table."""
    selection = (params or {}).get("selection")
    if not selection:
        return "<small>no selection</small>"
    metric, second = selection.get("metric", ""), selection.get("secondary_metric", "")
    rows = []
    for c in selection.get("candidates") or []:
        val = c.get("validation") or {}
        note = "CHOSEN" if c.get("chosen") else (c.get("skipped") or "")
        cells = (c.get("name"), c.get("family"), fmt_value(val.get(metric)), fmt_value(val.get(second)),
                 fmt_value(c.get("fit_seconds")), note)
        rows.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in cells) + "</tr>")
    caption = (f"<small>by {esc(metric)}, {esc(selection.get('seconds'))} s of "
               f"{esc(selection.get('budget_seconds'))} s</small>")
    return caption + table("", ("candidate", "family", metric, second, "fit s", "note"), rows, "no candidates")


def _model_row(m: dict) -> str:
    cells = (esc(m["model_id"]), esc(m.get("model_type")), esc(m.get("version")), esc(m.get("train_date")),
             esc(m.get("created_at")), esc(m.get("promoted_at")), metrics_html(m.get("metrics")),
             selection_html(m.get("params")))
    return f'<tr class="model" data-model="{esc(m["model_id"])}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _history_row(h: dict) -> str:
    cells = (h.get("promotion_id"), h.get("model_id"), h.get("previous_model_id"), h.get("kind"),
             h.get("promoted_at"), h.get("rolled_back_at"), h.get("reason"))
    return "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>"


def drift_html(report: dict | None) -> str:
    """The latest data-drift report (``recsys.drift.report``'s ``report.json``): day, events, drifted features,
    PSI per feature."""
    if report is None:
        return '<p id="drift">No drift report in the artifact store yet (the nightly run writes one per day).</p>'
    drifted = report.get("drifted") or []
    flag = (f'<span class="error">drifted: {esc(", ".join(drifted))}</span>' if drifted
            else '<span class="ok">no feature drifted</span>')
    ref = report.get("reference") or {}
    rows = ["<tr>" + "".join(f"<td>{esc(v)}</td>" for v in (
        f.get("feature"), f.get("description"), fmt_value(f.get("psi")), fmt_value(f.get("js")),
        "DRIFTED" if f.get("drifted") else "stable")) + "</tr>" for f in report.get("features") or []]
    return (f'<p id="drift">Day <b>{esc(report.get("day"))}</b>: {esc(report.get("events"))} events against '
            f'{esc(ref.get("events"))} of the {esc(ref.get("days"))} days before; PSI threshold '
            f'{esc(report.get("psi_threshold"))}: {flag}. <a id="drift-report" href="/admin/drift/'
            f'{esc(report.get("day"))}">The full report</a>.</p>'
            + table("drift-features", ("feature", "what", "PSI", "JS", "status"), rows, "no features"))


def render_models(models: list[dict], history: list[dict], drift: dict | None, drift_error: str = "") -> str:
    """``models``: registry rows (``registry.list_models``); ``history``: ``registry.promotion_history``;
    ``drift``: the latest report's JSON (``None`` when there is none, ``drift_error`` when it could not be read)."""
    parts = []
    for status in SECTIONS:
        rows = [_model_row(m) for m in models if m["status"] == status]
        parts.append(f"<h2>{esc(status)}</h2>" + table(f"models-{status.lower()}", MODEL_HEADERS, rows,
                                                        f"No {status} model."))
    parts.append("<h2>Promotion history</h2>"
                 + table("history", HISTORY_HEADERS, (_history_row(h) for h in history), "No promotion yet."))
    parts.append("<h2>Latest data drift</h2>"
                 + (f'<p id="drift" class="error">{esc(drift_error)}</p>' if drift_error else drift_html(drift)))
    return page("Models", "\n".join(parts))
