"""The shop-wide lists as pure functions of the event counts and the catalogue (no database, no Redis):
trending (event weights with a half-life over the recent days), new arrivals and each category's bestsellers.
The nightly lists step (``recsys.pipeline.lists``) writes them; the trending baseline of the evaluation uses
the same rule."""

from __future__ import annotations

import pandas as pd

from recsys.constants import COL_ITEM, EVENT_WEIGHTS, PURCHASE, VIEW


def trending(counts: pd.DataFrame, catalog: pd.DataFrame, trending_days: int, limit: int) -> pd.DataFrame:
    """``product_id, score, popularity`` of the trending list, best first."""
    recent = counts[counts["age_days"] < trending_days]
    half_life = max(trending_days / 2, 1.0)
    weight = recent["event_type"].map(EVENT_WEIGHTS).fillna(0.0) * 0.5 ** (recent["age_days"] / half_life)
    frame = pd.DataFrame({COL_ITEM: recent[COL_ITEM], "score": weight * recent["events"],
                          "popularity": recent["events"]})
    agg = frame.groupby(COL_ITEM, as_index=False)[["score", "popularity"]].sum()
    agg = agg[agg[COL_ITEM].isin(catalog.loc[catalog["in_stock"], COL_ITEM]) & (agg["score"] > 0)]
    return agg.sort_values(["score", COL_ITEM], ascending=[False, True]).head(limit)


def new_arrivals(catalog: pd.DataFrame, new_days: int, limit: int) -> pd.DataFrame:
    """``product_id, score, popularity`` of in-stock products created in the last ``new_days``, newest first."""
    fresh = catalog[catalog["in_stock"] & (catalog["age_days"] >= 0) & (catalog["age_days"] <= new_days)]
    fresh = fresh.sort_values(["age_days", COL_ITEM]).head(limit)
    return pd.DataFrame({COL_ITEM: fresh[COL_ITEM], "score": 1.0 - fresh["age_days"] / new_days,
                         "popularity": fresh["popularity"]})


def bestsellers(counts: pd.DataFrame, catalog: pd.DataFrame, limit: int) -> dict[str, pd.DataFrame]:
    """Per category: ``product_id, score (purchases), popularity (views)``, by purchases then views."""
    empty = pd.DataFrame(columns=[COL_ITEM, "score", "popularity"])
    if counts.empty:
        return {str(cat): empty for cat in catalog["category"].dropna().unique()}
    by_type = counts.pivot_table(index=COL_ITEM, columns="event_type", values="events", aggfunc="sum", fill_value=0)
    stats = pd.DataFrame({
        "score": by_type[PURCHASE] if PURCHASE in by_type else 0,
        "popularity": by_type[VIEW] if VIEW in by_type else 0,
    }, index=by_type.index).reset_index()
    stats = stats.merge(catalog.loc[catalog["in_stock"], [COL_ITEM, "category"]], on=COL_ITEM)
    stats = stats[(stats["score"] > 0) | (stats["popularity"] > 0)]
    stats = stats.sort_values(["score", "popularity", COL_ITEM], ascending=[False, False, True])
    out = {str(cat): group.head(limit)[[COL_ITEM, "score", "popularity"]]
           for cat, group in stats.groupby("category", sort=True)}
    return {str(cat): out.get(str(cat), empty) for cat in catalog["category"].dropna().unique()}
