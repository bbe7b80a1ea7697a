"""The HTML dashboard of one A/B test: numbers, sample sizes, p-value, CI, decision and a chart.

Pure: a test view (``service.view_of``) in, one self-contained HTML page out. The
chart is inline SVG drawn here (no JavaScript, no external assets), and a running
test's page reloads itself every ``REFRESH_SECONDS``. Every number carries its raw
value in ``data-value`` so that a browser test can compare it with the results.
"""

from __future__ import annotations

import datetime as dt
import html

from recsys.constants import AB_RUNNING, ARM_CONTROL, ARM_TREATMENT, ARMS

REFRESH_SECONDS = 30
COLORS = {ARM_CONTROL: "#1f77b4", ARM_TREATMENT: "#d62728"}
W, H, PAD = 460, 220, 44


def fmt_pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def fmt_num(value: float | int | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def fmt_p(value: float | None) -> str:
    return "n/a" if value is None else ("< 0.0001" if value < 1e-4 else f"{value:.4f}")


def _cell(ident: str, text: str, value) -> str:
    raw = "" if value is None else html.escape(repr(float(value)) if isinstance(value, float) else str(value))
    return f'<td id="{ident}" data-value="{raw}">{html.escape(text)}</td>'


def _arm_rows(arms: dict) -> str:
    rows = [("users", "Users", fmt_num), ("impressions", "Impressions", fmt_num),
            ("clicked_impressions", "Clicked impressions", fmt_num), ("ctr", "CTR", fmt_pct),
            ("purchases", "Purchases", fmt_num), ("conversion", "Conversion (buyers / users)", fmt_pct),
            ("revenue_per_user", "Revenue per user", lambda v: fmt_num(v, 2))]
    out = []
    for key, label, fmt in rows:
        cells = "".join(_cell(f"{key}-{arm}", fmt((arms.get(arm) or {}).get(key)), (arms.get(arm) or {}).get(key))
                        for arm in ARMS)
        out.append(f"<tr><th>{label}</th>{cells}</tr>")
    return "\n".join(out)


def _progress(test: dict) -> str:
    ctr = test["results"].get("ctr_test") or {}
    required, effective = ctr.get("required") or {}, ctr.get("effective") or {}
    out = []
    for arm in ARMS:
        need, have = required.get(arm), effective.get(arm) or 0.0
        share = min(1.0, have / need) if need else 0.0
        out.append(
            f'<div class="bar"><span>{arm}: <b id="effective-{arm}" data-value="{have!r}">{fmt_num(have)}</b> of '
            f'<b id="required-{arm}" data-value="{"" if need is None else need}">{fmt_num(need)}</b> effective '
            f'impressions</span><div class="track"><div class="fill" style="width:{100 * share:.1f}%;'
            f'background:{COLORS[arm]}"></div></div></div>')
    return "\n".join(out)


def _scale(values: list[float]) -> float:
    top = max(values, default=0.0) * 1.15
    return top if top > 0 else 1.0


def _path(points: list[dict], arm: str, metric: str, t0: int, t1: int, top: float) -> str:
    xy = []
    for p in points:
        v = (p.get(arm) or {}).get(metric)
        if v is None:
            continue
        x = PAD + (W - 2 * PAD) * ((p["t"] - t0) / max(t1 - t0, 1))
        y = H - PAD - (H - 2 * PAD) * (v / top)
        xy.append(f"{x:.1f},{y:.1f}")
    if len(xy) == 1:
        xy.append(xy[0])
    return " ".join(xy)


def _clock(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%H:%M")


def chart(series: dict, metric: str, title: str, start_ms: int) -> str:
    """One SVG line chart of a cumulative metric per arm over time."""
    points = series.get("points") or []
    values = [(p.get(a) or {}).get(metric) for p in points for a in ARMS]
    top = _scale([v for v in values if v is not None])
    t1 = points[-1]["t"] if points else start_ms + 1
    parts = [f'<svg class="chart" id="chart-{metric}" viewBox="0 0 {W} {H}" role="img" aria-label="{title}">',
             f'<text x="{W / 2}" y="16" text-anchor="middle" class="title">{html.escape(title)}</text>']
    for i in range(5):
        v = top * i / 4
        y = H - PAD - (H - 2 * PAD) * i / 4
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end">{fmt_pct(v, 1)}</text>')
    parts.append(f'<text x="{PAD}" y="{H - PAD + 16}">{_clock(start_ms)}</text>'
                 f'<text x="{W - PAD}" y="{H - PAD + 16}" text-anchor="end">{_clock(t1)} UTC</text>')
    for arm in ARMS:
        line = _path(points, arm, metric, start_ms, t1, top)
        if line:
            parts.append(f'<polyline class="line-{arm}" fill="none" stroke="{COLORS[arm]}" stroke-width="2.5" '
                         f'points="{line}"/>')
    parts.append("</svg>")
    return "".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{text-align:left;background:#f5f5f5}.badge{padding:2px 8px;border-radius:4px;background:#eee;font-weight:600}
.bar{margin:6px 0}.track{height:10px;background:#eee;border-radius:5px;width:420px}.fill{height:10px;border-radius:5px}
.chart{width:460px;height:220px;border:1px solid #ddd;margin:6px 12px 6px 0;font-size:11px}.title{font-weight:600}
.grid{stroke:#eee}.legend span{display:inline-block;margin-right:16px}.charts{display:flex;flex-wrap:wrap}"""


def _stat(ident: str, label: str, text: str, value) -> str:
    raw = "" if value is None else repr(float(value)) if isinstance(value, float) else value
    return f'<tr><th>{label}</th><td id="{ident}" data-value="{raw}">{html.escape(text)}</td></tr>'


def _stats_table(results: dict) -> str:
    ctr = results.get("ctr_test") or {}
    lo, hi = ctr.get("ci_low"), ctr.get("ci_high")
    ci = "n/a" if lo is None else f"[{100 * lo:+.2f}, {100 * hi:+.2f}] pp"
    conf = ctr.get("confidence") or 0.95
    deff = ctr.get("design_effect") or {}
    return "\n".join([
        _stat("pvalue", "p-value (CTR, two-proportion z-test)", fmt_p(ctr.get("pvalue")), ctr.get("pvalue")),
        _stat("ci", f"{100 * conf:.0f}% CI of CTR difference (treatment - control)", ci, lo),
        _stat("diff", "CTR difference", "n/a" if ctr.get("diff") is None else f"{100 * ctr['diff']:+.2f} pp",
              ctr.get("diff")),
        _stat("design-effect", "Design effect (control / treatment)",
              f"{deff.get(ARM_CONTROL, 1):.2f} / {deff.get(ARM_TREATMENT, 1):.2f}", None),
        _stat("conversion-pvalue", "p-value (conversion)", fmt_p((results.get("conversion_test") or {}).get("pvalue")),
              (results.get("conversion_test") or {}).get("pvalue"))])


def render_dashboard(test: dict) -> str:
    """The page of one test view (``service.view_of`` plus ``metrics_dashboard``)."""
    results = test.get("results") or {}
    running = test["status"] == AB_RUNNING
    start_ms = int(dt.datetime.fromisoformat(test["start_time"]).timestamp() * 1000)
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if running else ""
    decision = (results.get("decision") or {}).get("reason", "")
    legend = "".join(f'<span style="color:{COLORS[a]}">&#9644; {a} ({html.escape(test[f"{a}_model_id"])})</span>'
                     for a in ARMS)
    series = results.get("series") or {}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A/B test {test['test_id']}</title>{refresh}
<link rel="icon" href="data:,"><style>{STYLE}</style></head><body>
<h1>A/B test #{test['test_id']}</h1>
<p>Status <span class="badge" id="status">{html.escape(test['status'])}</span>
 Winner <span class="badge" id="winner">{html.escape(str(test.get('winner') or 'n/a'))}</span>
 &middot; {html.escape(test['start_time'])} &rarr; {html.escape(test['end_time'])}
 &middot; treatment share {fmt_pct(test['treatment_fraction'], 0)}
 &middot; results as of <span id="as-of">{html.escape(str(results.get('as_of', 'n/a')))}</span>
 {'&middot; refreshes every %d s' % REFRESH_SECONDS if running else ''}</p>
<table><tr><th></th><th>control<br><small>{html.escape(test['control_model_id'])}</small></th>
<th>treatment<br><small>{html.escape(test['treatment_model_id'])}</small></th></tr>
{_arm_rows(results.get('arms') or {})}</table>
<h2>Significance</h2><table>{_stats_table(results)}</table>
<h2>Sample size</h2>{_progress(test)}
<p id="sample-reached" data-value="{bool((results.get('ctr_test') or {}).get('sample_size_reached'))}">
{'Required sample size reached.' if (results.get('ctr_test') or {}).get('sample_size_reached') else
 'Required sample size not reached yet: the result stays inconclusive.'}</p>
<h2>Over time (cumulative)</h2><div class="legend">{legend}</div>
<div class="charts">{chart(series, 'ctr', 'CTR', start_ms)}{chart(series, 'conversion', 'Conversion', start_ms)}</div>
<p id="decision">{html.escape(decision)}</p>
</body></html>"""


__all__ = ["chart", "fmt_num", "fmt_p", "fmt_pct", "render_dashboard"]
