"""Features: value segments, tokens, price bands, and LightFM feature rows for known and unseen ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightfm.data import Dataset

from recsys.families.hybrid.features import (
    FeatureSpace,
    item_attributes,
    price_band,
    token_vocabulary,
    tokenize,
    user_attributes,
)
from recsys.data.frames import align_rows, value_segments

USERS = pd.DataFrame({
    "user_id": [1, 2, 3, 4, 5],
    "country": ["US", "DE", "US", None, "FR"],
    "language": ["en", "de", "en", "fr", "fr"],
    "device_type": ["mobile", "desktop", "mobile", "mobile", ""],
})
PRODUCTS = pd.DataFrame({
    "product_id": [10, 11, 12, 13],
    "category": ["Shoes", "Shoes", "Books", "Books"],
    "price": [30.0, 70.0, 0.5, np.nan],
    "name": ["Red Running Shoe", "Blue running shoe", "The Big Book", "Small book of poems 2"],
})


def test_value_segments_from_aggregates_and_from_events():
    agg = pd.DataFrame({"user_id": [1, 1, 2, 3, 3], "purchases": [1, 0, 1, 2, 1], "spend": [10.0, 0, 20, 500, 40]})
    seg = value_segments(agg, USERS)
    assert seg.to_dict() == {1: "regular", 2: "regular", 3: "whale", 4: "new", 5: "new"}
    events = pd.DataFrame({
        "user_id": [1, 2, 2, 2, 3],
        "event_type": ["PURCHASE", "PURCHASE", "PURCHASE", "PURCHASE", "VIEW"],
        "price": [5.0, 5.0, 5.0, 5.0, None],
    })
    seg = value_segments(events, USERS, whale_quantile=0.5)
    assert seg.to_dict() == {1: "regular", 2: "whale", 3: "new", 4: "new", 5: "new"}
    assert list(seg.index) == [1, 2, 3, 4, 5]


def test_value_segments_counts_purchases_when_no_spend():
    agg = pd.DataFrame({"user_id": [1, 2, 3], "purchases": [1, 1, 9]})
    assert value_segments(agg, USERS).loc[[1, 2, 3]].tolist() == ["regular", "regular", "whale"]


def test_value_segments_rejects_bad_input():
    with pytest.raises(ValueError, match="purchases"):
        value_segments(pd.DataFrame({"user_id": [1]}), USERS)
    with pytest.raises(ValueError, match="whale_quantile"):
        value_segments(pd.DataFrame({"user_id": [1], "purchases": [1]}), USERS, whale_quantile=1.0)
    with pytest.raises(ValueError, match="user_id"):
        value_segments(pd.DataFrame({"purchases": [1]}), USERS)


def test_tokens_vocabulary_and_price_bands():
    assert tokenize("The Red-Running SHOE, size 42 of 2") == ["red", "running", "shoe", "size"]
    assert tokenize(None) == []
    assert token_vocabulary(PRODUCTS["name"]) == frozenset({"running", "shoe", "book"})
    bands = price_band(pd.Series([30.0, 32.0, 0.5, np.nan, -1.0, 1.0]))
    assert bands.iloc[:3].tolist() == ["price:4", "price:5", "price:0"]
    assert bands.iloc[3:5].isna().all() and bands.iloc[5] == "price:0"


def test_user_and_item_attributes():
    attrs = user_attributes(USERS, pd.Series({1: "whale", 2: "new"}))
    by_row = attrs.groupby("row")["feature"].apply(set).to_dict()
    assert by_row[0] == {"country:US", "lang:en", "device:mobile", "segment:whale"}
    assert by_row[3] == {"lang:fr", "device:mobile"}  # no country, no segment
    assert by_row[4] == {"country:FR", "lang:fr"}  # empty device dropped
    items = item_attributes(PRODUCTS, token_vocabulary(PRODUCTS["name"]))
    row0 = items[items["row"] == 0].set_index("feature")["weight"].to_dict()
    assert row0 == {"category:Shoes": 1.0, "price:4": 1.0, "token:running": 0.5, "token:shoe": 0.5}
    row3 = items[items["row"] == 3].set_index("feature")["weight"].to_dict()
    assert row3 == {"category:Books": 1.0, "token:book": 1.0}
    with pytest.raises(ValueError, match="device_type"):
        user_attributes(USERS.drop(columns="device_type"))


def _fitted_space():
    attrs = user_attributes(USERS.iloc[:3], None)
    ds = Dataset()
    ds.fit([1, 2, 3], [10], user_features=attrs["feature"].unique().tolist())
    user_map, user_feature_map, _, _ = ds.mapping()
    return ds, attrs, FeatureSpace.from_mapping(user_map, user_feature_map)


def test_feature_space_matches_lightfm_dataset_for_training_ids():
    ds, attrs, space = _fitted_space()
    data = [(uid, dict(zip(g["feature"], g["weight"]))) for uid, (_, g) in zip([1, 2, 3], attrs.groupby("row"))]
    expected = ds.build_user_features(data, normalize=True)
    got = space.matrix([1, 2, 3], attrs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6)


def test_unseen_ids_get_attribute_only_rows_that_differ_by_attributes():
    _, _, space = _fitted_space()
    new = pd.DataFrame({
        "user_id": [100, 101, 102, 103],
        "country": ["US", "DE", "Narnia", "US"],
        "language": ["en", "de", "xx", "en"],
        "device_type": ["mobile", "desktop", "watch", "mobile"],
    })
    mat = space.matrix(new["user_id"], user_attributes(new)).toarray()
    assert not space.known([100]).any() and space.known([1]).all()
    assert mat[:2].sum(axis=1) == pytest.approx([1.0, 1.0])  # non-zero, L1-normalised
    identity_cols = space.identity_cols
    assert mat[:, identity_cols].sum() == 0  # no identity feature for an unseen id
    assert not np.allclose(mat[0], mat[1])  # different attributes, different rows
    np.testing.assert_array_equal(mat[0], mat[3])  # same attributes, same row
    assert mat[2].sum() == 0  # nothing known about this one: the zero row


def test_align_rows_keeps_order_and_fills_unknown_ids():
    rows = align_rows([3, 99, 1], USERS, "user_id", ["user_id", "country"])
    assert rows["user_id"].tolist() == [3, 99, 1]
    assert rows["country"].tolist()[0] == "US" and pd.isna(rows["country"].iloc[1])
