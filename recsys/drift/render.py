"""The drift reports as self-contained HTML pages for people (no script, no external asset).

Pure functions of the report dicts that ``recsys.drift.report`` also saves as JSON.
"""

from __future__ import annotations

from html import escape

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.drifted { color: #fff; background: #c0392b; font-weight: bold; }
.stable { color: #1e7e34; }
.bar { display: inline-block; height: 0.7em; background: #4a78b5; }
.bar.ref { background: #aaa; }
"""


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and (abs(value) < 1e-3 and value != 0):
        return f"{value:.2e}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _page(title: str, body: list[str]) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n" + "\n".join(body)
            + "\n</body></html>\n")


def _flag(drifted: bool, yes: str = "DRIFTED", no: str = "stable") -> str:
    return f'<span class="drifted">{yes}</span>' if drifted else f'<span class="stable">{no}</span>'


def _bar(share: float, ref: bool = False) -> str:
    return f'<span class="bar{" ref" if ref else ""}" style="width:{max(share, 0.0) * 20:.2f}em"></span>'


def _feature_section(f: dict) -> str:
    rows = "".join(
        f"<tr><td>{escape(v['value'])}</td><td class=num>{v['reference']:.2%}</td><td>{_bar(v['reference'], True)}</td>"
        f"<td class=num>{v['current']:.2%}</td><td>{_bar(v['current'])}</td>"
        f"<td class=num>{(v['current'] - v['reference']) * 100:+.2f} pp</td></tr>"
        for v in f["values"]
    )
    return (f"<h3 id=\"{escape(f['feature'])}\">{escape(f['feature'])}: {escape(f['description'])} "
            f"{_flag(f['drifted'])}</h3>\n<table><tr><th>value</th><th colspan=2>reference share</th>"
            f"<th colspan=2>day share</th><th>change</th></tr>{rows}</table>")


def data_report_html(report: dict) -> str:
    """The data-drift report: a summary table, then the largest share changes of each feature."""
    ref = report["reference"]
    drifted = report["drifted"]
    summary = (f"<p class=drifted>Drifted features: {escape(', '.join(drifted))}</p>" if drifted
               else "<p class=stable>No feature drifted.</p>")
    if not ref["events"]:
        summary = "<p>No reference events before this day: nothing was compared.</p>"
    rows = "".join(
        f"<tr><td><a href=\"#{escape(f['feature'])}\">{escape(f['feature'])}</a></td><td>{escape(f['description'])}"
        f"</td><td class=num>{_num(f['psi'])}</td><td class=num>{_num(f['js'])}</td>"
        f"<td class=num>{_num(f['p_value'])} ({f['test']})</td><td>{_flag(f['drifted'])}</td></tr>"
        for f in report["features"]
    )
    body = [
        f"<p>Events of {escape(report['day'])}: <b>{report['events']}</b>. Reference: {ref['days_with_events']} of the "
        f"{ref['days']} days {escape(ref['first'])} .. {escape(ref['last'])}, <b>{ref['events']}</b> events.</p>",
        f"<p>A feature is flagged when its population stability index (PSI) reaches "
        f"<b>{report['psi_threshold']}</b> (RECSYS_DRIFT_PSI_THRESHOLD). JS = Jensen-Shannon distance; the p-value "
        f"is informative only (large days make any change significant).</p>",
        summary,
        "<table><tr><th>feature</th><th>what</th><th>PSI</th><th>JS</th><th>p-value</th><th>status</th></tr>"
        f"{rows}</table>",
        "<h2>Largest share changes</h2>",
        *(_feature_section(f) for f in report["features"] if f["values"]),
    ]
    return _page(f"Data drift report {report['day']}", body)


OUTPUT_ROWS = (
    ("coverage", "catalogue coverage (distinct products recommended / catalogue)"),
    ("gini", "Gini of recommendation counts (concentration)"),
    ("top_share", "share of slots taken by the 20 most recommended products"),
    ("avg_popularity", "mean popularity of recommended products (events in the trending window)"),
    ("users", "users compared"),
)


def output_report_html(report: dict) -> str:
    """The new model's lists against the LIVE model's: one table and the concentration flag."""
    new, live = report["new"], report["live"]
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(what)}</td><td class=num>{_num(live[name])}</td>"
        f"<td class=num>{_num(new[name])}</td></tr>"
        for name, what in OUTPUT_ROWS
    )
    jump = report["concentration_jump"]
    body = [
        f"<p>New model <b>{escape(report['new_model_id'])}</b> against LIVE model <b>{escape(report['live_model_id'])}"
        f"</b> on {escape(report['day'])}: top {report['k']} of {report['new']['users']} sampled active users.</p>",
        f"<p>Concentration: {_flag(jump, 'CONCENTRATION JUMP', 'no concentration jump')} "
        f"{escape(', '.join(report['jump_reasons']))}</p><ul>"
        f"<li>Gini change {report['gini_change']:+.4f} (a jump from {report['gini_jump_threshold']}, "
        f"RECSYS_DRIFT_GINI_JUMP)</li><li>coverage of the new model / LIVE's: {_num(report['coverage_ratio'])} "
        f"(a jump at or below {1 - report['coverage_drop_threshold']:.2f}, RECSYS_DRIFT_COVERAGE_DROP)</li></ul>",
        f"<p>Overlap of users' lists (mean Jaccard@{report['k']}): {_num(report['overlap_jaccard'])}</p>",
        f"<table><tr><th>metric</th><th>what</th><th>LIVE</th><th>new</th></tr>{rows}</table>",
    ]
    return _page(f"Model output drift {report['day']}", body)
