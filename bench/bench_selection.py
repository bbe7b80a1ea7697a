"""Model selection cost: seconds per candidate of the nightly selection on the synthetic shop of ``make run``.

The shop of ``scripts/run_demo.sh`` (5000 users, 800 products, 30 days, seed 42) is generated in memory;
the nightly run for its last day selects on the newest day(s) of its training window
(``RECSYS_SELECTION_VALIDATION_DAYS`` = 1, widened to ``RECSYS_SELECTION_MIN_USERS`` users), exactly as
``recsys.pipeline.model_choice`` does, with every
candidate at the production settings and a budget large enough to run them all.

``python -m bench.bench_selection [--budget 3600]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from bench.common import log, machine, write_result
from recsys.constants import COL_TIMESTAMP
from recsys.evaluation.logs import EventLogs
from recsys.evaluation.selection import select_model
from recsys.families.hybrid.fit import TrainParams
from recsys.pipeline.model_choice import nightly_specs, validation_of
from recsys.settings import Settings
from recsys.timeutil import day_start_ms

END = dt.date(2026, 11, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=3600.0)
    args = parser.parse_args()
    started = time.perf_counter()
    from recsys.data.synthetic import generate_shop

    shop = generate_shop(n_users=5000, n_products=800, days=30, seed=42, end_date=END)
    settings = Settings(selection_candidates="hybrid-default,item-knn,als,lightfm-cf,hybrid-warp,hybrid-nofeatures")
    params = TrainParams.from_settings(settings)
    events = shop.events[shop.events[COL_TIMESTAMP] < day_start_ms(END)]  # the run for END never reads END
    products = shop.products.assign(in_stock=True) if "in_stock" not in shop.products else shop.products
    val, described = validation_of(EventLogs(events, None, shop.users, products, {}), END, settings)
    specs = nightly_specs(settings, params)
    log(f"validation: {described['description']} ({described['reason']})")
    log(f"selection on {len(val.main.users)} validation users, {len(val.frame)} training pairs, {len(specs)} candidates")
    selection = select_model(val, specs, metric=settings.selection_metric, budget_seconds=args.budget,
                             on_row=lambda r: log(f"{r['name']}: fit {r['fit_seconds']} s, score {r['score_seconds']} s"))
    rows = [{k: r[k] for k in ("name", "family", "fit_seconds", "score_seconds", "skipped", "chosen")}
            | {"ndcg@10": (r["validation"] or {}).get("ndcg@10"), "interval": r["interval"]} for r in selection.rows]
    write_result("selection", {"machine": machine(), "shop": {"users": 5000, "products": 800, "days": 30, "seed": 42},
                               "validation_users": len(val.main.users), "validation": described,
                               "training_pairs": int(len(val.frame)),
                               "seconds": round(selection.seconds, 1), "candidates": rows},
                 started, "python -m bench.bench_selection")


if __name__ == "__main__":
    main()
