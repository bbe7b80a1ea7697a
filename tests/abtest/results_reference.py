"""The A/B results as they were computed before they were aggregated in SQL (commit 78a693c): the oracle.

A frozen copy of ``summarize`` and its helpers (``recsys/abtest/results.py``), of the
frame loaders (``recsys/abtest/store.py``) and of ``design_effect`` (``stats.py``): every
impression and event of the test is read into pandas and attributed by
``recsys.abtest.attribution`` (the rules the SQL implements). ``test_ab_results_sql.py``
checks that ``compute_results`` gives the same results from the database's aggregates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import select

from recsys.abtest.attribution import attribute, impression_outcomes
from recsys.abtest.results import ATTRIBUTION_SKEW_MS, MAX_POINTS, SERIES_STEPS_MS
from recsys.abtest.stats import ArmCounts, compare_ctr, two_proportion_ztest
from recsys.constants import ARM_CONTROL, ARM_TREATMENT, ARMS, CLICK, PURCHASE
from recsys.db.models import ABImpression, UserEvent


def load_impressions(engine, test_id: int, start_ms: int, end_ms: int) -> pd.DataFrame:
    """The test's impressions in ``[start_ms, end_ms)``, oldest first."""
    i = ABImpression
    stmt = (select(i.impression_id, i.request_id, i.user_id, i.timestamp, i.arm, i.model_id, i.products)
            .where(i.test_id == test_id, i.timestamp >= start_ms, i.timestamp < end_ms).order_by(i.timestamp))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    cols = ["impression_id", "request_id", "user_id", "timestamp", "arm", "model_id", "products"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    frame["products"] = [list(p or []) for p in frame["products"]]
    return frame.astype({"user_id": "int64", "timestamp": "int64"})


def load_events(engine, test_id: int, start_ms: int, end_ms: int) -> pd.DataFrame:
    """CLICK and PURCHASE events in ``[start_ms, end_ms)`` of the users the test showed lists to."""
    e, i = UserEvent, ABImpression
    users = select(i.user_id).where(i.test_id == test_id).distinct().scalar_subquery()
    stmt = (select(e.user_id, e.product_id, e.event_type, e.timestamp, e.price, e.request_id)
            .where(e.event_type.in_((CLICK, PURCHASE)), e.timestamp >= start_ms, e.timestamp < end_ms,
                   e.user_id.in_(users), e.product_id.is_not(None)))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    cols = ["user_id", "product_id", "event_type", "timestamp", "price", "request_id"]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols).astype(
        {"user_id": "int64", "product_id": "int64", "timestamp": "int64"})


def design_effect(successes, trials) -> float:
    x, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    m, total = len(n), float(n.sum())
    if m < 2 or total <= 0:
        return 1.0
    p = float(x.sum()) / total
    if p <= 0 or p >= 1:
        return 1.0
    clustered = float(((x - p * n) ** 2).sum()) / total**2
    return max(1.0, clustered / (p * (1 - p) / total))


def _arm_summary(per_user: pd.DataFrame) -> dict:
    users, n = len(per_user), int(per_user["impressions"].sum())
    clicked, buyers = int(per_user["clicked"].sum()), int((per_user["purchases"] > 0).sum())
    revenue = float(per_user["revenue"].sum())
    return {"users": users, "impressions": n, "clicked_impressions": clicked, "clicks": int(per_user["clicks"].sum()),
            "ctr": clicked / n if n else None, "purchases": int(per_user["purchases"].sum()), "buyers": buyers,
            "conversion": buyers / users if users else None, "revenue": round(revenue, 2),
            "revenue_per_user": revenue / users if users else None,
            "design_effect": design_effect(per_user["clicked"], per_user["impressions"])}


def _step(span_ms: int) -> int:
    return next((s for s in SERIES_STEPS_MS if span_ms / s <= MAX_POINTS), SERIES_STEPS_MS[-1])


def time_series(outcomes: pd.DataFrame, start_ms: int, end_ms: int) -> dict:
    step = _step(max(end_ms - start_ms, 1))
    ends = list(range(start_ms + step, end_ms, step)) + [end_ms]
    points = []
    for t in ends:
        seen = outcomes[outcomes["timestamp"] < t]
        point = {"t": t}
        for arm in ARMS:
            rows = seen[seen["arm"] == arm]
            users = rows.groupby("user_id")["purchases"].sum()
            point[arm] = {"impressions": len(rows), "ctr": float(rows["clicked"].mean()) if len(rows) else None,
                          "conversion": float((users > 0).mean()) if len(users) else None}
        points.append(point)
    return {"step_ms": step, "points": points}


def summarize(impressions: pd.DataFrame, events: pd.DataFrame, *, treatment_fraction: float, config: dict,
              start_ms: int, end_ms: int, trusted: Callable[[str], bool] | None = None) -> dict:
    window_ms = int(config["attribution_window_seconds"]) * 1000
    outcomes = impression_outcomes(impressions, attribute(impressions, events, window_ms, ATTRIBUTION_SKEW_MS,
                                                          trusted))
    per_user = outcomes.groupby(["arm", "user_id"]).agg(
        impressions=("impression_id", "size"), clicked=("clicked", "sum"), clicks=("clicks", "sum"),
        purchases=("purchases", "sum"), revenue=("revenue", "sum")).reset_index()
    arms = {arm: _arm_summary(per_user[per_user["arm"] == arm]) for arm in ARMS}
    c, t = arms[ARM_CONTROL], arms[ARM_TREATMENT]
    ctr_test = compare_ctr(ArmCounts(c["clicked_impressions"], c["impressions"], c["design_effect"]),
                           ArmCounts(t["clicked_impressions"], t["impressions"], t["design_effect"]),
                           alpha=config["alpha"], mde=config["mde"], power=config["power"],
                           ratio=treatment_fraction / (1 - treatment_fraction))
    conv = two_proportion_ztest(c["buyers"], c["users"], t["buyers"], t["users"])
    return {"arms": arms, "ctr_test": ctr_test, "conversion_test": {"z": conv.z, "pvalue": conv.pvalue},
            "winner": ctr_test["winner"], "num_users": int(c["users"] + t["users"]),
            "attributed": {"clicks": int(outcomes["clicks"].sum()), "purchases": int(outcomes["purchases"].sum()),
                           "events": len(events)},
            "series": time_series(outcomes, start_ms, end_ms)}
