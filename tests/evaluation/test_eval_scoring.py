"""Ranking and measuring: tie-breaking, exclusions, groups, curves, the production re-ranking, model building."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.models import (
    MODEL_NAMES, FeatureSet, HybridConfig, build_model, hybrid_reranker,
)
from recsys.evaluation.protocol import COLD, WARM, Cutoff, Protocol, build_eval_split
from recsys.evaluation.measure import measure, rank, top_n
from recsys.families.hybrid.model import HybridModel
from recsys.families.hybrid.fit import TrainParams
from recsys.settings import Settings
from tests.evaluation.eval_helpers import CUT, shop_logs


@pytest.fixture(scope="module")
def split():
    return build_eval_split(shop_logs(), Cutoff("split-date", "day 40", CUT), Protocol(k=3, cold_max_items=3))


class Oracle:
    """Scores each user's test products 1 and their excluded products 9 (which must be masked)."""

    def __init__(self, split):
        self.by_user = {u: (t, x) for u, t, x in zip(split.users["user_id"], split.truth, split.excluded)}

    def score(self, users, products):
        out = np.zeros((len(users), len(products)), dtype=np.float32)
        for row, user in enumerate(users["user_id"]):
            truth, excluded = self.by_user[user]
            out[row, truth], out[row, excluded] = 1.0, 9.0
        return out


def test_top_n_orders_by_score_and_breaks_ties_by_the_permutation():
    scores = np.array([[0.1, 0.7, 0.7, 0.3, 0.7]], dtype=np.float32)
    cols, best = top_n(scores, 4, order=np.array([4, 2, 0, 1, 3]))
    assert cols[0].tolist() == [4, 2, 1, 3] and best[0].tolist() == pytest.approx([0.7, 0.7, 0.7, 0.3])
    cols, _ = top_n(scores, 4, order=np.array([1, 0, 2, 3, 4]))
    assert cols[0].tolist() == [1, 2, 4, 3]


def test_an_oracle_is_perfect_and_never_recommends_excluded_products(split):
    main = split.main
    top, auc = rank(Oracle(main), main, 5, seed=1, groups=split.groups)
    for row, excluded in zip(top, main.excluded):
        assert not np.isin(row, excluded).any()
    assert auc["all"] == pytest.approx(1.0)
    m = measure(Oracle(main), main, 2, seed=1, groups=split.groups)
    assert m["recall@2"] == pytest.approx(1.0) and m["ndcg@2"] == pytest.approx(1.0)
    assert m["users"] == len(main.users) == split.info["users"]
    assert set(m["groups"]) == {COLD, WARM}
    assert m["groups"][COLD]["users"] + m["groups"][WARM]["users"] == m["users"]
    assert m["groups"][COLD]["users"] == int(split.groups[COLD].sum()) > 0
    assert m["curves"]["k"] == list(range(1, 21)) and m["curves"]["recall"][1] == pytest.approx(1.0)


def test_same_seed_same_lists_for_a_model_with_ties(split):
    flat = build_model("popularity", split, HybridConfig())
    a, _ = rank(flat, split.main, 5, seed=4)
    b, _ = rank(flat, split.main, 5, seed=4)
    np.testing.assert_array_equal(a, b)


def test_production_reranking_caps_products_per_category(split):
    main = split.main
    rerank = hybrid_reranker(split, main, HybridConfig(max_per_category=1, freshness_weight=0.0))
    top, _ = rank(Oracle(main), main, 3, seed=1, rerank=rerank)
    cats = main.products["category"].to_numpy()[top]
    # every user's candidates span the three categories: the first three are one of each
    assert all(len(set(row)) == 3 for row in cats)


def test_every_model_builds_and_scores_on_a_small_split(split):
    config = HybridConfig(TrainParams(epochs=5, no_components=8, threads=1))
    results = {}
    for name in MODEL_NAMES:
        try:
            model = build_model(name, split, config)
        except ModelUnavailableError:
            continue
        results[name] = measure(model, split.main, 3, seed=1, with_curves=False)
    assert {"random", "popularity", "trending", "item-knn", "lightfm-cf", "hybrid"} <= set(results)
    assert results["item-knn"]["precision@3"] > results["random"]["precision@3"]  # tastes are learnable
    with pytest.raises(ValueError, match="unknown model"):
        build_model("magic", split, config)


def test_lightfm_cf_has_no_attribute_features_and_the_hybrid_keeps_the_chosen_ones(split):
    config = HybridConfig(TrainParams(epochs=2, no_components=4, threads=1, user_features=(),
                                      item_features=("category",)))
    cf, hybrid = build_model("lightfm-cf", split, config), build_model("hybrid", split, config)
    assert isinstance(cf, HybridModel) and len(cf.item_space.attributes) == 0 and len(cf.user_space.attributes) == 0
    assert sorted(hybrid.item_space.attributes) == ["category:a", "category:b", "category:c"]
    assert len(hybrid.user_space.attributes) == 0
    with pytest.raises(ValueError, match="unknown feature"):
        FeatureSet(("shoe_size",), ())


def test_hybrid_config_round_trip_and_errors():
    config = HybridConfig(TrainParams(epochs=7, loss="bpr", user_features=("country",), item_features=("name",)),
                          None)
    assert HybridConfig.from_dict(config.as_dict()) == config
    assert config.features == FeatureSet(("country",), ("name",))
    partial = HybridConfig.from_dict({"params": {"epochs": 3}})
    assert partial.params.epochs == 3 and partial.features == FeatureSet.of(TrainParams.from_settings(Settings()))
    with pytest.raises(ValueError, match="unknown training parameter"):
        HybridConfig.from_dict({"params": {"user_features": ["country"]}})  # a top-level key, not a param
    with pytest.raises(ValueError, match="unknown training parameter"):
        HybridConfig.from_dict({"params": {"epochz": 3}})
    with pytest.raises(ValueError, match="unknown hybrid configuration"):
        HybridConfig.from_dict({"rerank": True})
    with pytest.raises(ValueError, match="loss"):
        HybridConfig.from_dict({"params": {"loss": "hinge"}})
    assert dataclasses.replace(config, max_per_category=2).max_per_category == 2


def test_the_default_hybrid_configuration_is_the_settings_one():
    assert HybridConfig() == HybridConfig.from_settings(Settings())
