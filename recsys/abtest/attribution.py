"""Attribute clicks and purchases to the impression that showed the product (pure pandas): the reference.

The results of a test are aggregated by the database with these rules
(``recsys.abtest.store.outcome_counts``); the tests check the SQL against this code.

An event goes to at most one impression:
1. by request id: the client sent the ``request_id`` of the ``/recommendations``
   answer, and that answer (to the same user) showed the product;
2. otherwise by user, product and time: the latest impression of the same user that
   showed the product at most ``window_ms`` before the event (``skew_ms`` allows for a
   client clock slightly behind the server's).
Events that no impression explains stay unattributed (``impression_id`` is None).
With ``trusted`` (``RequestIdSigner.verify``), an event naming a request id that the
server did not sign (forged, or made up) is attributed to nothing, not even by window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys.constants import CLICK, PURCHASE

IMPRESSION_COLUMNS = ("impression_id", "request_id", "user_id", "timestamp", "arm", "products")
EVENT_COLUMNS = ("user_id", "product_id", "event_type", "timestamp", "price", "request_id")


class AttributionInputError(ValueError):
    """An input frame without the documented columns."""


def _need(df: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AttributionInputError(f"{name} frame lacks columns {missing} (has {list(df.columns)})")


def shown_products(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per (impression, product shown): impression_id, request_id, user_id, product_id, timestamp."""
    _need(impressions, IMPRESSION_COLUMNS, "impressions")
    cols = ["impression_id", "request_id", "user_id", "timestamp"]
    if impressions.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("user_id", "timestamp") else object)
                             for c in [*cols, "product_id"]})
    shown = impressions[[*cols, "products"]].explode("products").dropna(subset=["products"])
    shown = shown.rename(columns={"products": "product_id"})
    for c in ("user_id", "product_id", "timestamp"):
        shown[c] = shown[c].astype("int64")
    return shown.drop_duplicates(["impression_id", "product_id"]).reset_index(drop=True)


def attribute(impressions: pd.DataFrame, events: pd.DataFrame, window_ms: int, skew_ms: int = 0,
              trusted: Callable[[str], bool] | None = None) -> pd.DataFrame:
    """``events`` (same order) with an ``impression_id`` column: the impression each is attributed to."""
    _need(events, EVENT_COLUMNS, "events")
    if window_ms <= 0 or skew_ms < 0:
        raise ValueError(f"need window_ms > 0 and skew_ms >= 0, got {window_ms}, {skew_ms}")
    out = events.reset_index(drop=True).copy()
    out["impression_id"] = None
    shown = shown_products(impressions)
    if out.empty or shown.empty:
        return out
    ev = out[["user_id", "product_id", "timestamp", "request_id"]].copy()
    ev["_row"] = np.arange(len(ev))
    if trusted is not None:
        named = ev["request_id"].notna()
        forged = named & ~ev["request_id"].map(lambda rid: bool(trusted(rid)) if isinstance(rid, str) else False)
        ev = ev[~forged]
    for c in ("user_id", "product_id", "timestamp"):
        ev[c] = ev[c].astype("int64")
    by_request = ev.dropna(subset=["request_id"]).merge(
        shown[["request_id", "user_id", "product_id", "impression_id"]], on=["request_id", "user_id", "product_id"])
    by_request = by_request.drop_duplicates("_row")
    out.loc[by_request["_row"].to_numpy(), "impression_id"] = by_request["impression_id"].to_numpy()
    rest = ev[~ev["_row"].isin(by_request["_row"])].copy()
    if rest.empty:
        return out
    rest["_key"] = rest["timestamp"] + skew_ms
    right = shown[["user_id", "product_id", "timestamp", "impression_id"]].rename(columns={"timestamp": "_key"})
    matched = pd.merge_asof(rest.sort_values("_key"), right.sort_values("_key"), on="_key",
                            by=["user_id", "product_id"], direction="backward", tolerance=window_ms + skew_ms)
    matched = matched.dropna(subset=["impression_id"])
    out.loc[matched["_row"].to_numpy(), "impression_id"] = matched["impression_id"].to_numpy()
    return out


def impression_outcomes(impressions: pd.DataFrame, attributed: pd.DataFrame) -> pd.DataFrame:
    """Per impression: ``clicks``, ``clicked`` (0/1), ``purchases``, ``revenue``, with its user, arm, time."""
    _need(impressions, IMPRESSION_COLUMNS, "impressions")
    base = impressions[["impression_id", "user_id", "arm", "timestamp"]].reset_index(drop=True)
    hits = attributed.dropna(subset=["impression_id"])
    is_click, is_buy = hits["event_type"] == CLICK, hits["event_type"] == PURCHASE
    per = pd.DataFrame({
        "impression_id": hits["impression_id"].to_numpy(),
        "clicks": is_click.to_numpy().astype("int64"),
        "purchases": is_buy.to_numpy().astype("int64"),
        "revenue": np.where(is_buy, pd.to_numeric(hits["price"], errors="coerce").fillna(0.0), 0.0),
    }).groupby("impression_id", as_index=False).sum()
    out = base.merge(per, on="impression_id", how="left")
    out[["clicks", "purchases"]] = out[["clicks", "purchases"]].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0).astype(float)
    out["clicked"] = (out["clicks"] > 0).astype("int64")
    return out
