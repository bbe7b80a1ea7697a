"""Clicks and purchases go to the impression that showed the product: by request id, else by window."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.abtest.attribution import AttributionInputError, attribute, impression_outcomes

MIN = 60_000


def impressions():
    return pd.DataFrame([
        {"impression_id": "i1", "request_id": "r1", "user_id": 1, "timestamp": 0, "arm": "control",
         "products": [10, 11, 12]},
        {"impression_id": "i2", "request_id": "r2", "user_id": 1, "timestamp": 10 * MIN, "arm": "control",
         "products": [11, 13]},
        {"impression_id": "i3", "request_id": "r3", "user_id": 2, "timestamp": 5 * MIN, "arm": "treatment",
         "products": [10, 20]},
    ])


def events(rows):
    return pd.DataFrame(rows, columns=["user_id", "product_id", "event_type", "timestamp", "price", "request_id"])


def test_request_id_wins_over_the_latest_impression():
    ev = events([(1, 11, "CLICK", 12 * MIN, None, "r1")])  # i2 is later and showed 11 too
    assert attribute(impressions(), ev, 60 * MIN)["impression_id"].tolist() == ["i1"]


def test_without_request_id_the_latest_impression_in_the_window():
    ev = events([(1, 11, "CLICK", 12 * MIN, None, None), (1, 12, "CLICK", 12 * MIN, None, "unknown-request"),
                 (1, 10, "CLICK", 90 * MIN, None, None), (1, 99, "CLICK", 1 * MIN, None, None),
                 (2, 11, "CLICK", 6 * MIN, None, None), (2, 20, "PURCHASE", 7 * MIN, 30.0, None)])
    got = attribute(impressions(), ev, 60 * MIN)["impression_id"].tolist()
    # latest showing 11; i1 showed 12; 10 was shown 90 min ago (outside); 99 never shown; user 2 never saw 11
    assert got == ["i2", "i1", None, None, None, "i3"]


def test_a_request_id_of_another_user_or_product_falls_back_to_the_window():
    ev = events([(2, 10, "CLICK", 6 * MIN, None, "r1"), (1, 13, "CLICK", 11 * MIN, None, "r1")])
    assert attribute(impressions(), ev, 60 * MIN)["impression_id"].tolist() == ["i3", "i2"]


def test_clock_skew_allowance():
    ev = events([(2, 20, "CLICK", 5 * MIN - 10_000, None, None)])  # client clock 10 s behind
    assert attribute(impressions(), ev, 60 * MIN)["impression_id"].tolist() == [None]
    assert attribute(impressions(), ev, 60 * MIN, skew_ms=30_000)["impression_id"].tolist() == ["i3"]


def test_outcomes_per_impression():
    ev = events([(1, 11, "CLICK", 12 * MIN, None, "r2"), (1, 13, "CLICK", 12 * MIN, None, "r2"),
                 (1, 13, "PURCHASE", 13 * MIN, 25.0, "r2"), (2, 20, "CLICK", 6 * MIN, None, None)])
    out = impression_outcomes(impressions(), attribute(impressions(), ev, 60 * MIN)).set_index("impression_id")
    assert out.loc["i2", ["clicks", "clicked", "purchases"]].tolist() == [2, 1, 1]
    assert out.loc["i2", "revenue"] == pytest.approx(25.0)
    assert out.loc["i1", ["clicks", "clicked"]].tolist() == [0, 0] and out.loc["i3", "clicked"] == 1


def test_empty_inputs_and_missing_columns():
    empty = impressions().iloc[:0]
    ev = events([(1, 11, "CLICK", 1, None, None)])
    assert attribute(empty, ev, MIN)["impression_id"].tolist() == [None]
    assert attribute(impressions(), events([]), MIN).empty
    with pytest.raises(AttributionInputError, match="request_id"):
        attribute(impressions(), ev.drop(columns=["request_id"]), MIN)


def test_an_event_naming_an_unsigned_request_id_is_attributed_to_nothing():
    signed = {"r1", "r2", "r3", "mine"}  # what the server signed (RequestIdSigner.verify in production)
    ev = events([(1, 11, "CLICK", 12 * MIN, None, "r1"), (1, 12, "CLICK", 12 * MIN, None, "forged"),
                 (1, 13, "CLICK", 11 * MIN, None, "mine"), (1, 13, "CLICK", 11 * MIN, None, None)])
    got = attribute(impressions(), ev, 60 * MIN, trusted=signed.__contains__)["impression_id"].tolist()
    # by request id; a forged id: nothing (not even the window); a signed id of no list here, or none: the window
    assert got == ["i1", None, "i2", "i2"]
    assert attribute(impressions(), ev, 60 * MIN)["impression_id"].tolist() == ["i1", "i1", "i2", "i2"]
