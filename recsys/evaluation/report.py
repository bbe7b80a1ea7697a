"""Outputs of an evaluation run: a Markdown report, the JSON file and PNG curves.

The JSON is ``{"protocol": {...}, "models": {"<name>": {"precision@10": x, ...}}, ...}``;
a model that could not run has ``{"available": false, "reason": "..."}``. matplotlib
is optional (``requirements-bench.txt``): without it the plot is skipped and said so.
"""

from __future__ import annotations

import json
from pathlib import Path

MAIN_COLUMNS = ("precision@{k}", "recall@{k}", "ndcg@{k}", "map@{k}", "auc", "coverage", "diversity", "novelty")
SLICE_COLUMNS = ("precision@{k}", "ndcg@{k}", "auc")


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _best(models: dict, column: str) -> float | None:
    values = [m[column] for m in models.values() if m.get("available", True) and m.get(column) is not None]
    return max(values) if values else None


def main_table(results: dict) -> list[str]:
    k, models = results["protocol"]["k"], results["models"]
    cols = [c.format(k=k) for c in MAIN_COLUMNS]
    lines = ["| model | " + " | ".join(cols) + " | fit s |", "|---" * (len(cols) + 2) + "|"]
    best = {c: _best(models, c) for c in cols}
    for name, m in models.items():
        if not m.get("available", True):
            lines.append(f"| {name} | unavailable: {m['reason']} |" + " |" * len(cols))
            continue
        cells = [f"**{_fmt(m[c])}**" if m[c] is not None and m[c] == best[c] else _fmt(m[c]) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {m.get('fit_seconds', 0):.1f} |")
    return lines


def ablation_lines(results: dict) -> list[str]:
    """The hybrid's model alone (its lists before any re-ranking), next to the hybrid row."""
    hybrid = results["models"].get("hybrid") or {}
    raw = hybrid.get("without_rerank")
    if not raw:
        return []
    c = hybrid.get("config", {})
    knobs = ", ".join(f"{k} {c[k]}" for k in ("max_per_category", "freshness_weight", "new_days", "trending_weight")
                      if k in c)
    return ["", f"The hybrid's re-ranking ({knobs}) against its model alone: "
            + ", ".join(f"{k} {hybrid[k]:.4f} vs {v:.4f}" for k, v in raw.items()) + "."]


def slice_table(results: dict) -> list[str]:
    """Cold users, warm users and new items: precision, NDCG and AUC per model, with a legend."""
    p, models = results["protocol"], results["models"]
    cols = [c.format(k=p["k"]) for c in SLICE_COLUMNS]
    slices = [("cold", "cold", f"users with at most {p['cold_max_items']} training products ({p['cold_users']})"),
              ("warm", "warm", f"the other users ({p['warm_users']})"),
              ("new_items", "new", f"products first seen in the test ({p['new_items']}), ranked among themselves "
                                   f"for the users who bought them ({p['new_item_users']})")]
    lines = ["Legend: " + "; ".join(f"**{short}** = {text}" for _, short, text in slices) + ".", "",
             "| model | " + " | ".join(f"{short} {c}" for _, short, _ in slices for c in cols) + " |",
             "|---" * (1 + len(slices) * len(cols)) + "|"]
    for name, m in models.items():
        if not m.get("available", True):
            continue
        cells = []
        for key, _, _ in slices:
            part = m.get("new_items") if key == "new_items" else m.get("groups", {}).get(key)
            cells += [_fmt(part.get(c)) if part else "–" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def protocol_lines(protocol: dict) -> list[str]:
    s = protocol["split"]
    where = f"cut-off {s['cutoff']}" if s["cutoff"] else "fixed test file"
    return [
        f"- data: `{protocol.get('dataset', '?')}` ({protocol.get('format', '?')}); split: {s['how']} "
        f"{s['value']}, {where}; train {s['train_period'][0]} .. {s['train_period'][1]}, "
        f"test {s['test_period'][0]} .. {s['test_period'][1]}",
        f"- positives: {', '.join(protocol['positives'])} events in the test period; training signal: "
        f"{protocol['training_signal']}",
        f"- excluded (exclude-seen `{protocol.get('exclude_seen', 'purchased')}`): {protocol['excluded']}",
        f"- counted ({protocol['counted']}): {protocol['users']} users, {protocol['items']} products, "
        f"{protocol['positive_pairs']} positive pairs, {protocol['excluded_pairs']} excluded pairs; "
        f"k = {protocol['k']}",
    ]


def tuning_lines(tuning: dict | None) -> list[str]:
    if not tuning:
        return []
    best = tuning["best"]
    lines = ["", "## Tuned hybrid configuration", "",
             f"{tuning['trials_run']} trials in {tuning['seconds']:.0f} s (budget {tuning['budget_minutes']} min), "
             f"chosen by {tuning['objective']} on a validation split ({tuning['validation']}):", "",
             "```json", json.dumps(best, indent=2), "```"]
    if tuning.get("settings"):
        lines += ["", "As settings (environment):", "", "```",
                  *[f"{k}={v}" for k, v in tuning["settings"].items()], "```"]
    return lines


SELECTION_COLUMNS = ("precision@{k}", "recall@{k}", "ndcg@{k}", "map@{k}", "coverage")


def _seconds(row: dict) -> str:
    return "–" if row.get("fit_seconds") is None else f"{row['fit_seconds']:.1f}"


def tried_text(tried: list[dict]) -> str:
    """The time windows a validation split tried: ``"1 d: 400, 2 d: 900 users"``."""
    return ", ".join(f"{t['days']:g} d: {t['users']}" for t in tried) + " users"


def validation_line(validation: dict | str | None, users: int | None = None) -> str:
    """How the validation split was carved, on how many users, and why (``recsys.evaluation.validation``)."""
    if not isinstance(validation, dict) or not validation.get("protocol"):
        text = validation.get("description") if isinstance(validation, dict) else validation
        return f"no validation split ({text}): the default candidate kept"
    v = validation
    line = (f"validation protocol {v['protocol']}: {v['description']}, {v['users']} users "
            f"(wanted min({v['min_users']}, {v['eligible_users']} eligible))")
    if v.get("tried"):
        line += f"; time windows tried: {tried_text(v['tried'])}"
    return line + f"; {v['reason']}"


def interval_text(row: dict) -> str:
    return "–" if not row.get("interval") else f"[{row['interval'][0]:.4f}, {row['interval'][1]:.4f}]"


def selection_table(results: dict) -> list[str]:
    """The ``auto`` row beside every candidate: test metrics as served (production re-ranking), the
    validation metric the choice was made on with its bootstrap interval, and what was cut."""
    sel, k = results["selection"], results["protocol"]["k"]
    cols = [c.format(k=k) for c in SELECTION_COLUMNS]
    metric = sel["metric"]
    level = f"{sel.get('level', 0.95):.0%}"
    lines = [f"Model selection by validation {metric} ({sel['validation_split']}, {sel['validation_users']} users, "
             f"{sel['seconds']:.0f} s of a {sel['budget_seconds']:.0f} s budget); test metrics as served "
             "(production re-ranking for every row):", "",
             f"- {validation_line(sel.get('validation'))}",
             f"- choice: {sel.get('decision') or sel['chosen']}", "",
             f"| row | family | validation {metric} | {level} interval | " + " | ".join(cols) + " | fit s |",
             "|---" * (len(cols) + 5) + "|"]
    auto = sel["auto"]
    lines.append(f"| **auto** (= {auto['chosen']}) | {auto['family']} | – | – | "
                 + " | ".join(_fmt(auto.get(c)) for c in cols) + f" | {_seconds(auto)} |")
    for row in sel["candidates"]:
        test = sel["test"].get(row["name"], {})
        name = f"{row['name']} (chosen)" if row["chosen"] else row["name"]
        if not test.get("available", True):
            lines.append(f"| {name} | {row['family']} | unavailable: {test['reason']} |" + " |" * (len(cols) + 2))
            continue
        value = _fmt((row["validation"] or {}).get(metric)) if row["validation"] else ""
        validation = f"{value} ({row['skipped']})" if row["skipped"] and value else (row["skipped"] or value)
        lines.append(f"| {name} | {row['family']} | {validation} | {interval_text(row)} | "
                     + " | ".join(_fmt(test.get(c)) for c in cols) + f" | {_seconds(test)} |")
    return lines


def markdown(results: dict, title: str = "Offline evaluation") -> str:
    lines = [f"# {title}", "", *protocol_lines(results["protocol"]), "", *main_table(results),
             *ablation_lines(results), "", "## Per group", "", *slice_table(results),
             *tuning_lines(results.get("tuning"))]
    if results.get("selection"):
        lines += ["", "## Model selection", "", *selection_table(results)]
    if results.get("plot"):
        lines += ["", f"![precision, recall and NDCG at k = 1..20]({Path(results['plot']).name})"]
    return "\n".join(lines) + "\n"


def plot_curves(results: dict, path: Path) -> Path | None:
    """Precision, recall and NDCG at k = 1..20 per model (PNG); ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, metric in zip(axes, ("precision", "recall", "ndcg")):
        for name, m in results["models"].items():
            if m.get("curves"):
                ax.plot(m["curves"]["k"], m["curves"][metric], marker="o", markersize=3, label=name,
                        linewidth=2.5 if name == "hybrid" else 1.2)
        ax.set_title(f"{metric}@k")
        ax.set_xlabel("k")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(results: dict, json_path: Path, plots: bool = True) -> dict[str, str]:
    """Write ``json_path``, the Markdown next to it (``.md``) and the curves (``_curves.png``)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    written = {}
    if plots:
        png = plot_curves(results, json_path.with_name(json_path.stem + "_curves.png"))
        results["plot"] = str(png) if png else None
        if png is None:
            results["plot_note"] = "matplotlib is not installed: no plot (pip install -r requirements-bench.txt)"
        else:
            written["png"] = str(png)
    json_path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    md = json_path.with_suffix(".md")
    md.write_text(markdown(results))
    return {"json": str(json_path), "markdown": str(md), **written}
