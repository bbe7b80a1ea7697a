"""The ``bench/README.md`` section on the cost of model selection: the synthetic shop of ``make run``
(``bench/results/selection.json``) and, quoted from the offline evaluation, UCI Online Retail
(``bench/results/online_retail_selection.json`` and ``online_retail_per_customer.json``)."""

from __future__ import annotations

import json

from bench.common import RESULTS_DIR
from bench.report_format import sig, table


def _rows(candidates: list[dict]) -> list[list[str]]:
    return [[c["name"], c["family"], sig(c["fit_seconds"]), sig(c["score_seconds"]),
             sig((c["fit_seconds"] or 0) + (c["score_seconds"] or 0)), "chosen" if c["chosen"] else (c["skipped"] or "")]
            for c in candidates]


def _online_retail() -> list[str]:
    out = []
    for name, label in (("online_retail_selection", "time split"), ("online_retail_per_customer", "per-customer split")):
        path = RESULTS_DIR / f"{name}.json"
        if not path.exists():
            continue
        sel = json.loads(path.read_text()).get("selection") or {}
        if not sel:
            continue
        out += [f"UCI Online Retail, {label} (validation: {sel.get('validation_split')}, "
                f"{sel.get('validation_users')} users; from `bench/results/{name}.json`, the run of `evaluate` "
                f"in the README): {sig(sel['seconds'])} s in all.",
                table(["candidate", "family", "fit s", "score s", "total s", "note"], _rows(sel["candidates"]))]
    return out


def selection(r: dict) -> str:
    shop = r["shop"]
    intro = (
        f"The nightly run's selection (`recsys/pipeline/model_choice.py`) on the synthetic shop of `make run` "
        f"({shop['users']} users, {shop['products']} products, {shop['days']} days, seed {shop['seed']}): every "
        f"candidate at the production settings trained on the training window minus its newest day "
        f"({r['training_pairs']} pairs) and scored, as served, for the {r['validation_users']} validation users of "
        f"that day; {sig(r['seconds'])} s in all. Fit = training, score = lists with the production re-ranking "
        f"and metrics. The nightly `train` task adds one more fit of the winner on the whole window. Measured while "
        f"other sessions loaded the shared {r['machine']['cores']}-core machine (load average "
        f"{r['loadavg_end'][0]:.1f} at the end), so the seconds are upper bounds; the ratios between candidates "
        f"are the useful part.")
    return "\n\n".join([
        "## 4c. Model selection: seconds per candidate", intro,
        table(["candidate", "family", "fit s", "score s", "total s", "note"], _rows(r["candidates"])),
        *_online_retail(),
        "`RECSYS_SELECTION_BUDGET_SECONDS` (default 900) bounds the sum: a candidate whose expected cost (the "
        "last fit + score of its family) would overrun it is skipped and the table says so; "
        "`RECSYS_SELECTION_CANDIDATES` runs fewer."])
