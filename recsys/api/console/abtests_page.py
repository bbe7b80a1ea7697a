"""``/admin/ab-tests``: every test (status, arms, CTR per arm, p-value, a link to its dashboard, a stop button
while it runs) and the form that starts one."""

from __future__ import annotations

from recsys.abtest.dashboard import fmt_p, fmt_pct
from recsys.api.console.layout import esc, page, table
from recsys.constants import AB_RUNNING, STATUS_ARCHIVED, STATUS_LIVE

HEADERS = ("Test", "Status", "Control", "Treatment", "Treatment share", "Start", "End", "Users", "CTR control",
           "CTR treatment", "p-value", "Winner", "")
DEFAULT_FORM = {"duration_hours": "24", "treatment_fraction": "0.2"}


def _stop_button(test: dict) -> str:
    if test["status"] != AB_RUNNING:
        return ""
    tid = int(test["test_id"])
    return (f'<form class="inline" method="post" action="/admin/ab-tests/{tid}/stop">'
            f'<input id="stop-{tid}" type="submit" value="Stop"></form>')


def _row(test: dict) -> str:
    tid = int(test["test_id"])
    cells = [f'<a id="dashboard-{tid}" href="{esc(test["dashboard"])}">#{tid}</a>',
             f'<span class="badge" id="status-{tid}">{esc(test["status"])}</span>',
             esc(test["control_model_id"]), esc(test["treatment_model_id"]),
             esc(fmt_pct(test["treatment_fraction"], 0)), esc(test["start_time"]), esc(test["end_time"]),
             esc(test.get("num_users")), esc(fmt_pct(test.get("control_ctr"))), esc(fmt_pct(test.get("treatment_ctr"))),
             esc(fmt_p(test.get("pvalue"))), esc(test.get("winner") or "n/a"), _stop_button(test)]
    return f'<tr id="test-{tid}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _options(models: list[dict], chosen: str, prefer: str | None) -> str:
    """The models a test can take (every one but ARCHIVED), ``chosen`` (else the first of status ``prefer``)
    selected."""
    usable = [m for m in models if m["status"] != STATUS_ARCHIVED]
    if not chosen and prefer is not None:
        chosen = next((m["model_id"] for m in usable if m["status"] == prefer), "")
    out = []
    for m in usable:
        selected = " selected" if m["model_id"] == chosen else ""
        out.append(f'<option value="{esc(m["model_id"])}"{selected}>{esc(m["model_id"])} ({esc(m["status"])}, '
                   f'v{esc(m["version"])})</option>')
    return "".join(out)


def start_form(models: list[dict], values: dict) -> str:
    """The start form, filled with ``values`` (what was sent, after a refusal) or the defaults."""
    values = {**DEFAULT_FORM, **values}
    treatment_prefer = next((m["status"] for m in models if m["status"] not in (STATUS_LIVE, STATUS_ARCHIVED)), None)
    return f"""<form id="start-form" method="post" action="/admin/ab-tests"><fieldset><legend>Start a test</legend>
<label>Treatment <select id="treatment" name="treatment_model_id">
{_options(models, values.get("treatment_model_id", ""), treatment_prefer)}</select></label>
<label>Control <select id="control" name="control_model_id">
{_options(models, values.get("control_model_id", ""), STATUS_LIVE)}</select></label>
<label>Duration (hours) <input id="duration" name="duration_hours" inputmode="decimal" size="6"
 value="{esc(values["duration_hours"])}"></label>
<label>Treatment share (0..1) <input id="fraction" name="treatment_fraction" inputmode="decimal" size="6"
 value="{esc(values["treatment_fraction"])}"></label>
<input id="start" type="submit" value="Start test"></fieldset></form>
<p><small>Every model but the ARCHIVED ones can enter a test; a treatment that is not LIVE becomes a CANDIDATE.
Results are recomputed hourly (or with <code>POST /ab-tests/{{id}}/refresh</code>).</small></p>"""


def render_ab_tests(tests: list[dict], models: list[dict], *, message: str = "", ok: bool = False,
                    values: dict | None = None) -> str:
    """``tests``: views (``service.view_of``) with a ``dashboard`` path; ``models``: registry rows."""
    body = (start_form(models, values or {})
            + table("tests", HEADERS, (_row(t) for t in tests), "No A/B test yet."))
    return page("A/B tests", body, message, ok)
