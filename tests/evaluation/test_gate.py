"""The nightly gate: the hold-out split, block scoring through the one engine, and the candidate vs LIVE vs
popularity run (each measured on the lists users would get)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from recsys import registry
from recsys.evaluation.baselines import RandomModel
from recsys.evaluation.gate import evaluate_candidate
from recsys.evaluation.measure import evaluate_model
from recsys.evaluation.split import build_split
from recsys.families.hybrid.fit import TrainParams
from recsys.pipeline.train import train_model
from tests.conftest import LAST_EVENT_DAY

USERS = pd.DataFrame({"user_id": [1, 2, 3, 4], "country": "US", "language": "en", "device_type": "mobile"})
PRODUCTS = pd.DataFrame({"product_id": [14, 10, 11, 12, 13], "category": ["a", "a", "b", "b", "c"],
                         "price": 10.0, "name": "thing"})
FRAME = pd.DataFrame({"user_id": [1, 1, 3, 4, 4], "product_id": [10, 11, 12, 10, 13],
                      "weight": [1.0, 2.0, 3.0, 1.0, 1.0], "purchases": [0, 1, 0, 0, 0]})
POSITIVES = pd.DataFrame({"user_id": [1, 1, 1, 2, 3, 4, 4], "product_id": [12, 13, 999, 10, 11, 14, 11]})
BOUGHT = pd.DataFrame({"user_id": [1, 3, 4], "product_id": [10, 11, 14]})


def test_build_split_filters_users_and_maps_positions():
    split = build_split(FRAME, POSITIVES, BOUGHT, USERS, PRODUCTS)
    # user 2 had no training interactions; user 3's only positive was bought before
    assert split.users["user_id"].tolist() == [1, 4]
    assert split.products["product_id"].tolist() == [10, 11, 12, 13, 14]  # sorted catalogue
    assert [sorted(t.tolist()) for t in split.truth] == [[2, 3], [1]]  # 999 is not in the catalogue
    assert [x.tolist() for x in split.excluded] == [[0], [4]]
    assert split.n_positives == 3
    assert split.segments.to_dict() == {1: "whale", 4: "new"}
    np.testing.assert_allclose(split.item_popularity, np.array([3, 2, 2, 2, 1]) / 4)  # (count + 1) / (3 + 1)


class Oracle:
    """Scores the truth highest and the excluded items higher still (they must be masked)."""

    def __init__(self, split):
        self.by_user = {u: (t, x) for u, t, x in zip(split.users["user_id"], split.truth, split.excluded)}

    def score(self, users, products):
        out = np.zeros((len(users), len(products)), dtype=np.float32)
        for row, u in enumerate(users["user_id"]):
            truth, excluded = self.by_user[u]
            out[row, truth] = 1.0
            out[row, excluded] = 5.0
        return out


def test_oracle_scores_perfectly_and_excluded_items_are_never_recommended():
    split = build_split(FRAME, POSITIVES, BOUGHT, USERS, PRODUCTS)
    m = evaluate_model(Oracle(split), split, k=2)
    assert m["ndcg@2"] == pytest.approx(1.0) and m["auc"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx(1.0) and m["precision@2"] == pytest.approx(0.75)
    assert m["users"] == 2 and 0 < m["coverage"] <= 1


def test_blocks_do_not_change_the_result(small_shop):
    day = LAST_EVENT_DAY
    ev = small_shop.events
    frame = ev[ev["timestamp"] < pd.Timestamp(day, tz="UTC").value // 10**6][["user_id", "product_id"]]
    frame = frame.drop_duplicates().assign(weight=1.0, purchases=0)
    today = ev[ev["timestamp"] >= pd.Timestamp(day, tz="UTC").value // 10**6]
    split = build_split(frame, today[["user_id", "product_id"]], frame.iloc[:0][["user_id", "product_id"]],
                        small_shop.users, small_shop.products)
    assert len(split.users) > 50
    model = RandomModel(seed=3)
    assert evaluate_model(model, split, block_size=7) == evaluate_model(model, split, block_size=10_000)
    with pytest.raises(ValueError, match="k must be"):
        evaluate_model(model, split, k=len(split.products))


TEST_PARAMS = TrainParams(window_days=21, epochs=20, no_components=32, learning_rate=0.1, threads=2, seed=42)


def test_candidate_beats_popularity_and_metrics_are_stored(shop_engine, local_store):
    trained = train_model(shop_engine, local_store, LAST_EVENT_DAY, TEST_PARAMS)
    result = evaluate_candidate(shop_engine, local_store, LAST_EVENT_DAY, trained["model_id"], k=10)
    new, pop = result["new"], result["popularity"]
    print(f"\nnew {new}\npopularity {pop}\nprotocol {result['protocol']}")
    assert result["live"] is None
    assert new["ndcg@10"] >= 1.2 * pop["ndcg@10"]
    assert new["precision@10"] > pop["precision@10"] and new["auc"] > pop["auc"]
    assert new["coverage"] > pop["coverage"]
    protocol = result["protocol"]
    assert protocol["day"] == LAST_EVENT_DAY.isoformat() and protocol["users"] == new["users"] > 50
    assert protocol["train_days"] == trained["train_days"]
    stored = registry.get_model(shop_engine, trained["model_id"]).metrics
    assert stored["new"]["ndcg@10"] == pytest.approx(new["ndcg@10"]) and stored["live"] is None
    assert set(stored) == {"new", "live", "popularity", "protocol"}


def test_live_model_is_evaluated_on_the_same_split(shop_engine, s3_store):
    first = train_model(shop_engine, s3_store, LAST_EVENT_DAY, TEST_PARAMS)
    first_metrics = evaluate_candidate(shop_engine, s3_store, LAST_EVENT_DAY, first["model_id"])
    registry.promote(shop_engine, first["model_id"], reason="test")
    assert evaluate_candidate(shop_engine, s3_store, LAST_EVENT_DAY, first["model_id"])["live"] is None  # itself

    second = train_model(shop_engine, s3_store, LAST_EVENT_DAY, TrainParams(**{**TEST_PARAMS.__dict__, "seed": 7}))
    result = evaluate_candidate(shop_engine, s3_store, LAST_EVENT_DAY, second["model_id"])
    print(f"\nlive {result['live']}\nnew {result['new']}")
    assert result["protocol"]["live_model_id"] == first["model_id"]
    assert result["live"] == pytest.approx(first_metrics["new"])  # same model, same split, same numbers
    assert result["popularity"] == pytest.approx(first_metrics["popularity"])


def test_evaluate_unknown_model_or_empty_day(shop_engine, local_store):
    with pytest.raises(registry.UnknownModelError):
        evaluate_candidate(shop_engine, local_store, LAST_EVENT_DAY, "01NOTAMODEL")
    trained = train_model(shop_engine, local_store, LAST_EVENT_DAY, TEST_PARAMS)
    with pytest.raises(ValueError, match="no hold-out users"):
        evaluate_candidate(shop_engine, local_store, LAST_EVENT_DAY + dt.timedelta(days=1), trained["model_id"])
