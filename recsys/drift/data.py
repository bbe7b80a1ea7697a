"""Data drift of one day's events against the days before it: pure functions of frames and counts.

A day is summarised by its *profile*: for each feature, how many of the day's events fall on
each value (``{"category": {"Books": 812, ...}, ...}``), plus the exact histogram of events per
active user. Profiles add up, so the reference of N days is the sum of N daily profiles, and a
profile is small enough to be kept as JSON next to the report.

Features (shares are of the day's events; device and country are the acting user's):

| feature | values |
|---|---|
| ``event_type`` | the event types |
| ``category`` | the product's category (``unknown`` for a product not in the catalogue) |
| ``price_band`` | the product's catalogue price, banded by ``PRICE_BANDS`` |
| ``device``, ``country`` | the user's ``device_type`` / ``country`` (``unknown`` when missing) |
| ``new_product`` | ``new`` when the product was created at most ``new_product_days`` before the day's end |
| ``activity`` | users of the day by their number of events, banded by ``ACTIVITY_BANDS`` |

Each feature is compared with ``stats.psi`` (the drift flag: PSI >= threshold), ``stats.js_distance``
and a p-value (chi-square of the counts; two-sample KS of the exact histogram for ``activity``).
The p-value is reported, not used for the flag: with a day of a hundred thousand events any
difference is "significant", while PSI measures how large the shift is.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_USER, MS_PER_DAY
from recsys.drift import stats
from recsys.timeutil import day_bounds_ms

FEATURES: dict[str, str] = {
    "event_type": "event-type mix",
    "category": "category share of events",
    "price_band": "price band of the products in events",
    "device": "device mix (events by the user's device)",
    "country": "country mix (events by the user's country)",
    "new_product": "share of events on new products",
    "activity": "events per active user",
}
CATEGORICAL = tuple(f for f in FEATURES if f != "activity")
PRICE_BANDS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0)  # upper edges; the last band is open
ACTIVITY_BANDS = (1, 2, 3, 5, 9, 17, 33, 65)  # lower edges of events-per-user bands
UNKNOWN = "unknown"
TOP_VALUES = 12  # values listed per feature in the report (largest share changes first)


def price_band(price: pd.Series) -> pd.Series:
    """``<10``, ``10-25``, ..., ``500+`` (``unknown`` for a missing price)."""
    edges = (-np.inf, *PRICE_BANDS, np.inf)
    labels = [f"<{PRICE_BANDS[0]:g}"]
    labels += [f"{a:g}-{b:g}" for a, b in zip(PRICE_BANDS, PRICE_BANDS[1:])] + [f"{PRICE_BANDS[-1]:g}+"]
    banded = pd.cut(pd.to_numeric(price, errors="coerce"), edges, labels=labels, right=False)
    return banded.astype("object").where(banded.notna(), UNKNOWN).astype(str)


def activity_band(events_per_user: int) -> str:
    for low, high in zip(ACTIVITY_BANDS, ACTIVITY_BANDS[1:]):
        if low <= events_per_user < high:
            return str(low) if high == low + 1 else f"{low}-{high - 1}"
    return f"{ACTIVITY_BANDS[-1]}+"


def _label(series: pd.Series) -> pd.Series:
    out = series.astype("object")
    return out.where(out.notna() & (out.astype(str).str.strip() != ""), UNKNOWN).astype(str)


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts(sort=False).sort_index().items()}


def day_profile(events: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame, day: dt.date,
                new_product_days: int) -> dict:
    """The profile of ``day``'s ``events`` (extract's columns) with ``users`` (user_id, device_type,
    country) and ``products`` (product_id, category, price, created_at as UTC datetimes)."""
    missing = [c for c in (COL_USER, COL_ITEM, COL_EVENT_TYPE) if c not in events.columns]
    missing += [f"users.{c}" for c in (COL_USER, "device_type", "country") if c not in users.columns]
    missing += [f"products.{c}" for c in (COL_ITEM, "category", "price", "created_at") if c not in products.columns]
    if missing:
        raise ValueError(f"drift profile: missing columns {missing}")
    prod = products.drop_duplicates(COL_ITEM).set_index(COL_ITEM)
    people = users.drop_duplicates(COL_USER).set_index(COL_USER)
    item, user = events[COL_ITEM].astype("Int64"), events[COL_USER].astype("Int64")
    created_ms = (pd.to_datetime(prod["created_at"], utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(
        milliseconds=1)
    age_ms = day_bounds_ms(day)[1] - created_ms  # as recsys.pipeline.lists.load_catalog: 0 <= age <= N days
    is_new = pd.Series(np.where((age_ms >= 0) & (age_ms <= new_product_days * MS_PER_DAY), "new", "not new"),
                       index=prod.index)
    per_user = user.dropna().value_counts()
    return {
        "events": int(len(events)),
        "event_type": _counts(_label(events[COL_EVENT_TYPE])),
        "category": _counts(_label(item.map(prod["category"]))),
        "price_band": _counts(price_band(item.map(prod["price"]))),
        "device": _counts(_label(user.map(people["device_type"]))),
        "country": _counts(_label(user.map(people["country"]))),
        "new_product": _counts(_label(item.map(is_new))),
        "activity_histogram": {str(k): int(v) for k, v in per_user.value_counts().sort_index().items()},
    }


def add_profiles(profiles: list[dict]) -> dict:
    """The sum of daily profiles (the reference window)."""
    total: dict = {"events": 0, **{f: {} for f in CATEGORICAL}, "activity_histogram": {}}
    for profile in profiles:
        total["events"] += profile["events"]
        for feature in (*CATEGORICAL, "activity_histogram"):
            for value, n in profile[feature].items():
                total[feature][value] = total[feature].get(value, 0) + n
    return total


def _activity_counts(histogram: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for events, users in histogram.items():
        band = activity_band(int(events))
        out[band] = out.get(band, 0) + users
    return out


def _compare(feature: str, cur: dict[str, int], ref: dict[str, int], threshold: float, p_value) -> dict:
    values = sorted(set(cur) | set(ref))
    c = np.array([cur.get(v, 0) for v in values], dtype=float)
    r = np.array([ref.get(v, 0) for v in values], dtype=float)
    out = {"feature": feature, "description": FEATURES[feature], "test": "ks" if feature == "activity" else "chi2"}
    if c.sum() == 0 or r.sum() == 0:
        return {**out, "psi": None, "js": None, "p_value": None, "drifted": False, "values": []}
    psi = stats.psi(c, r)
    cs, rs = stats.shares(c), stats.shares(r)
    moves = sorted(zip(values, cs, rs), key=lambda t: (-abs(t[1] - t[2]), t[0]))[:TOP_VALUES]
    return {
        **out,
        "psi": round(psi, 6),
        "js": round(stats.js_distance(c, r), 6),
        "p_value": p_value(c, r),
        "drifted": bool(psi >= threshold),
        "values": [{"value": v, "current": round(float(a), 6), "reference": round(float(b), 6)} for v, a, b in moves],
    }


def compare_profiles(current: dict, reference: dict, threshold: float) -> list[dict]:
    """One result per feature: ``{feature, description, psi, js, p_value, test, drifted, values}``.

    ``values`` lists the largest share changes (current and reference share of each value).
    With an empty reference nothing is compared: distances are None and no feature is flagged.
    """
    if not threshold > 0:
        raise ValueError(f"the PSI threshold must be positive, got {threshold!r}")
    results = [_compare(f, current[f], reference[f], threshold, stats.chi2_p_value) for f in CATEGORICAL]
    cur_hist, ref_hist = current["activity_histogram"], reference["activity_histogram"]

    def ks(_cur, _ref) -> float:  # on the exact histograms, not on the bands
        return stats.ks_p_value({int(k): v for k, v in cur_hist.items()}, {int(k): v for k, v in ref_hist.items()})

    results.append(_compare("activity", _activity_counts(cur_hist), _activity_counts(ref_hist), threshold, ks))
    return results
