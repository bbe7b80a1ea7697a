"""Training: parameters, the SQL training frame, train_model on the synthetic shop, cold start."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest

from recsys import registry
from recsys.constants import EVENT_WEIGHTS, PURCHASE, STATUS_TRAINING
from recsys.db.bulk import upsert_rows
from recsys.families.hybrid.model import HybridModel
from recsys.data.frames import NoTrainingDataError, load_products, load_training_frame, load_users
from recsys.families.hybrid.fit import TrainParams, fit_hybrid
from recsys.pipeline.train import train_model
from recsys.settings import Settings
from recsys.timeutil import day_start_ms
from tests.conftest import LAST_EVENT_DAY

FAST = dict(epochs=20, no_components=32, learning_rate=0.1, threads=2, seed=42)
DAY = dt.date(2026, 3, 10)


def test_params_defaults_validation_and_settings():
    p = TrainParams()
    assert (p.window_days, p.epochs, p.loss, p.no_components, p.learning_rate, p.seed) == (90, 30, "bpr", 96, 0.05, 42)
    assert (p.item_alpha, p.user_alpha, p.user_features, p.item_features) == (1e-5, 1e-5, (), ("name",))
    assert p == TrainParams.from_settings(Settings())  # one set of defaults: the settings' (the tuned ones)
    assert p.num_threads == os.cpu_count() and TrainParams(threads=3).num_threads == 3
    assert p.train_days(DAY) == (DAY - dt.timedelta(days=89), DAY - dt.timedelta(days=1))
    with pytest.raises(ValueError, match="loss in"):
        TrainParams(loss="hinge")
    with pytest.raises(ValueError, match="window_days >= 2"):
        TrainParams(window_days=1)
    settings = Settings(epochs=7, no_components=16, train_threads=1, training_window_days=30, seed=5)
    q = TrainParams.from_settings(settings, epochs=3, loss=None)
    assert (q.epochs, q.no_components, q.threads, q.window_days, q.seed, q.loss) == (3, 16, 1, 30, 5, "bpr")
    with pytest.raises(ValueError, match="unknown TrainParams"):
        TrainParams.from_settings(settings, epoch=3)


def _ms(day: dt.date, hours: float = 0) -> int:
    return day_start_ms(day) + int(hours * 3_600_000)


def _insert_events(engine, rows) -> None:
    cols = ["user_id", "product_id", "event_type", "timestamp", "price"]
    df = pd.DataFrame(rows, columns=cols)
    df["user_id"] = pd.Series([r[0] for r in rows], dtype=object)  # ints and None (not NaN floats)
    df["client_event_id"] = [f"t{i}" for i in range(len(df))]
    upsert_rows(engine, "user_events", df, conflict_cols=["client_event_id"])


HAND_EVENTS = [
    (1, 10, "VIEW", _ms(DAY - dt.timedelta(days=2), 1), None),
    (1, 10, "CLICK", _ms(DAY - dt.timedelta(days=2), 2), None),
    (1, 10, "PURCHASE", _ms(DAY - dt.timedelta(days=1), 23.9), 20.0),
    (1, 11, "PURCHASE", _ms(DAY - dt.timedelta(days=2)), 9.0),
    (1, 11, "RETURN", _ms(DAY - dt.timedelta(days=1)), 9.0),  # bought then returned: net 0, dropped
    (2, 10, "IMPRESSION", _ms(DAY - dt.timedelta(days=1)), None),  # ignored
    (2, 12, "VIEW", _ms(DAY - dt.timedelta(days=3)), None),  # first day of the range: in
    (2, 12, "VIEW", _ms(DAY - dt.timedelta(days=4), 23.99), None),  # before the range
    (2, 12, "CLICK", _ms(DAY), None),  # end day is exclusive
    (None, 12, "CLICK", _ms(DAY - dt.timedelta(days=1)), None),  # no user
    (3, 13, "WISHLIST", _ms(DAY - dt.timedelta(days=1)), None),
    (3, 13, "ADD_TO_CART", _ms(DAY - dt.timedelta(days=1)), 5.0),
]


@pytest.mark.parametrize("db", ["engine", "sqlite_engine"])
def test_load_training_frame_aggregates_weights_in_sql(db, request):
    eng = request.getfixturevalue(db)
    _insert_events(eng, HAND_EVENTS)
    frame = load_training_frame(eng, DAY - dt.timedelta(days=3), DAY).sort_values(["user_id", "product_id"])
    assert frame[["user_id", "product_id"]].values.tolist() == [[1, 10], [2, 12], [3, 13]]
    w = EVENT_WEIGHTS
    assert frame["weight"].tolist() == pytest.approx([w["VIEW"] + w["CLICK"] + w[PURCHASE], w["VIEW"],
                                                      w["WISHLIST"] + w["ADD_TO_CART"]])
    assert frame["purchases"].tolist() == [1, 0, 0]
    assert frame["spend"].tolist() == pytest.approx([20.0, 0.0, 0.0])
    assert load_training_frame(eng, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=5)).empty
    with pytest.raises(ValueError, match="empty day range"):
        load_training_frame(eng, DAY, DAY)


def test_train_model_without_interactions_raises(engine, local_store):
    with pytest.raises(NoTrainingDataError, match="no interactions"):
        train_model(engine, local_store, DAY, TrainParams(**FAST))
    assert registry.list_models(engine) == []


def _reference_frame(events: pd.DataFrame, first: dt.date, end: dt.date) -> pd.DataFrame:
    e = events[(events["timestamp"] >= day_start_ms(first)) & (events["timestamp"] < day_start_ms(end))]
    e = e.assign(w=e["event_type"].map(EVENT_WEIGHTS))
    agg = e.groupby(["user_id", "product_id"], as_index=False)["w"].sum()
    return agg[agg["w"] > 0].sort_values(["user_id", "product_id"]).reset_index(drop=True)


def test_train_model_registers_a_training_row_and_excludes_the_day(shop_engine, small_shop, local_store):
    params = TrainParams(window_days=14, **FAST)
    out = train_model(shop_engine, local_store, LAST_EVENT_DAY, params)
    first = LAST_EVENT_DAY - dt.timedelta(days=13)
    assert out["train_days"] == [first.isoformat(), (LAST_EVENT_DAY - dt.timedelta(days=1)).isoformat()]
    reference = _reference_frame(small_shop.events, first, LAST_EVENT_DAY)
    assert out["samples"] == len(reference)
    frame = load_training_frame(shop_engine, first, LAST_EVENT_DAY).sort_values(["user_id", "product_id"])
    np.testing.assert_allclose(frame["weight"].to_numpy(), reference["w"].to_numpy())

    row = registry.get_model(shop_engine, out["model_id"])
    assert row.status == STATUS_TRAINING and row.training_samples_count == out["samples"]
    assert row.train_date == LAST_EVENT_DAY and row.artifact_uri == out["artifact_uri"]
    assert row.params["window_days"] == 14 and row.params["epochs"] == FAST["epochs"]
    assert len(out["model_id"]) == 26 and out["train_seconds"] < 20

    assert set(row.artifacts) == {"model.npz", "model.json"}
    model = HybridModel.load(local_store, out["model_id"], row.artifacts)
    trained_users = set(model.user_space.ids)
    assert trained_users == set(reference["user_id"])
    only_on_day = set(small_shop.events["user_id"]) - set(
        small_shop.events[small_shop.events["timestamp"] < day_start_ms(LAST_EVENT_DAY)]["user_id"])
    assert only_on_day and not (only_on_day & trained_users)  # the hold-out day is not trained on


def test_new_product_scores_highest_for_users_who_like_its_category(shop_engine):
    first = LAST_EVENT_DAY - dt.timedelta(days=20)
    frame = load_training_frame(shop_engine, first, LAST_EVENT_DAY)
    users, products = load_users(shop_engine), load_products(shop_engine)
    model = fit_hybrid(frame, users, products, TrainParams(**FAST))

    cat_of = products.set_index("product_id")["category"]
    share = frame.assign(category=frame["product_id"].map(cat_of)).pivot_table(
        index="user_id", columns="category", values="weight", aggfunc="sum", fill_value=0.0)
    share = share.div(share.sum(axis=1), axis=0)
    assert len(share.columns) >= 3
    for category in share.sum().sort_values(ascending=False).index[:3]:
        template = products[products["category"] == category].iloc[0]
        new = pd.DataFrame([{"product_id": 10_000_000, "category": category, "price": template["price"],
                             "name": template["name"]}])
        assert not model.item_space.known([10_000_000]).any()
        fans = share.index[share[category] >= 0.5]
        others = share.index[share[category] == 0]
        rows = users.set_index("user_id").loc[share.index].reset_index()
        all_items = pd.concat([products[new.columns], new], ignore_index=True)
        scores = model.score(rows, all_items)
        rank = (scores > scores[:, -1:]).sum(axis=1)  # 0 = the new product is the top item
        rank = pd.Series(rank, index=share.index)
        new_score = pd.Series(scores[:, -1], index=share.index)
        assert new_score[fans].mean() > new_score[others].mean(), category
        assert rank[fans].median() < 0.25 * len(all_items) < rank[others].median(), category
