"""The time-boxed hybrid search: validation split without test leakage, coordinate search, time box."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.constants import ITEM_FEATURE_GROUPS, MS_PER_DAY, USER_FEATURE_GROUPS
from recsys.evaluation import tuning
from recsys.evaluation.models import FeatureSet, HybridConfig
from recsys.evaluation.protocol import Cutoff, Protocol, build_eval_split
from recsys.families.hybrid.fit import TrainParams
from recsys.evaluation.validation import TIME, Shape, evaluate_validation
from tests.evaluation.eval_helpers import CUT, shop_logs


@pytest.fixture(scope="module")
def split():
    return build_eval_split(shop_logs(), Cutoff("split-date", "day 40", CUT), Protocol(k=2))


def test_validation_split_only_uses_training_events(split):
    val, described = evaluate_validation(split, shape=Shape(TIME, days=10), min_users=1)
    assert "10 day(s)" in described["description"] and described["protocol"] == TIME
    assert val.cutoff_ms == split.cutoff_ms - 10 * MS_PER_DAY
    assert (val.train_events["timestamp"] < val.cutoff_ms).all()
    assert len(val.train_events) < len(split.train_events)
    assert set(val.frame["product_id"]) <= set(split.frame["product_id"])
    default, how = evaluate_validation(split, min_users=1)  # as long as the test, at most a third of training
    span = (split.cutoff_ms - split.train_events["timestamp"].min()) / MS_PER_DAY
    assert how["protocol"] == TIME and (split.cutoff_ms - default.cutoff_ms) / MS_PER_DAY <= span / 3 + 1


def test_tuning_searches_on_the_validation_split_it_is_given(split, monkeypatch):
    given = evaluate_validation(split, shape=Shape(TIME, days=10), min_users=1)
    seen = []

    def recording_trial(config, val, objective, model=None):
        seen.append(val)
        return fake_trial(config, val, objective, model)

    monkeypatch.setattr(tuning, "trial", recording_trial)
    result = tuning.tune_hybrid(split, HybridConfig(TrainParams()), budget_seconds=60, validation=given)
    assert len(seen) == result["trials_run"] > 1 and all(val is given[0] for val in seen)
    assert result["validation"] == f"{given[1]['description']}, {given[1]['users']} users"


def test_with_value_sets_one_dimension():
    base = HybridConfig(TrainParams())
    assert tuning.with_value(base, "epochs", 7).params.epochs == 7
    both = tuning.with_value(base, "alpha", 1e-4).params
    assert both.item_alpha == both.user_alpha == 1e-4
    assert tuning.with_value(base, "features", FeatureSet((), ())).features == FeatureSet((), ())


FITS = []


def fake_trial(config, val, objective, model=None):
    """Best at: no user features, item name only, 96 components, lr 0.025, 45 epochs, trending 1.0."""
    p = config.params
    score = (1.0 if config.features == FeatureSet((), ("name",)) else 0.5) - abs(p.no_components - 96) / 1000 \
        - abs(p.learning_rate - 0.025) - abs(p.epochs - 45) / 1000 - abs(config.trending_weight - 1.0) / 100
    if model is None:
        FITS.append(config)
        model = ("model", p, config.features)
    else:
        assert model == ("model", p, config.features)  # only a model of the same params is reused
    return {"config": config.as_dict(), objective: score, "precision@2": score / 2, "seconds": 0.0}, model


def test_coordinate_search_finds_the_best_of_each_dimension(split, monkeypatch):
    monkeypatch.setattr(tuning, "trial", fake_trial)
    FITS.clear()
    seen = []
    start = HybridConfig(TrainParams(user_features=USER_FEATURE_GROUPS, item_features=ITEM_FEATURE_GROUPS))
    result = tuning.tune_hybrid(split, start, budget_seconds=60, on_trial=seen.append)
    best = result["config"]
    assert best.features == FeatureSet((), ("name",))
    assert (best.params.no_components, best.params.learning_rate, best.params.epochs) == (96, 0.025, 45)
    assert best.trending_weight == 1.0
    assert result["trials_run"] == len(seen) and len(seen) > len(tuning.SPACE)
    # re-ranking trials reuse the best model: one fit per model-dimension value (and the start)
    n_model_values = sum(len(values) - 1 for _, values in tuning.MODEL_SPACE)
    assert len(FITS) == 1 + n_model_values
    assert result["settings"]["RECSYS_EPOCHS"] == 45 and result["settings"]["RECSYS_NO_COMPONENTS"] == 96
    assert result["settings"]["RECSYS_RERANK_TRENDING_WEIGHT"] == 1.0
    assert (result["settings"]["RECSYS_USER_FEATURES"], result["settings"]["RECSYS_ITEM_FEATURES"]) == ("", "name")
    assert result["settings"]["RECSYS_TRAINING_WINDOW_DAYS"] == tuning.training_days(split) == 39
    assert result["best"] == best.as_dict() and result["objective"] == "ndcg@2"


def test_the_time_box_stops_the_search(split, monkeypatch):
    def slow_trial(config, val, objective, model=None):
        result, model = fake_trial(config, val, objective, model)
        return {**result, "seconds": 5.0}, model

    monkeypatch.setattr(tuning, "trial", slow_trial)
    result = tuning.tune_hybrid(split, HybridConfig(TrainParams()), budget_seconds=4.0)
    assert result["trials_run"] == 1 and result["config"] == HybridConfig(TrainParams())


def test_a_real_trial_is_seeded_and_measured(split):
    val, _ = evaluate_validation(split, shape=Shape(TIME, days=10), min_users=1)
    config = HybridConfig(TrainParams(epochs=3, no_components=4, threads=1, item_features=("category",)))
    (a, model), (b, _) = tuning.trial(config, val, "ndcg@2"), tuning.trial(config, val, "ndcg@2")
    c, same = tuning.trial(config, val, "ndcg@2", model=model)
    assert same is model and c["ndcg@2"] == a["ndcg@2"]
    assert 0.0 <= a["ndcg@2"] <= 1.0 and a["ndcg@2"] == b["ndcg@2"]
    assert "item[category]" in tuning.summary(a) and np.isfinite(a["precision@2"])


def test_a_gain_within_seed_noise_does_not_move_the_search(split, monkeypatch):
    def flat_trial(config, val, objective, model=None):
        score = 1.0 + (0.005 if config.params.epochs == 45 else 0.0)  # +0.5%: below MIN_GAIN
        return {"config": config.as_dict(), objective: score, "seconds": 0.0}, model or "model"

    monkeypatch.setattr(tuning, "trial", flat_trial)
    result = tuning.tune_hybrid(split, HybridConfig(TrainParams(epochs=30)), budget_seconds=60)
    assert tuning.MIN_GAIN > 0.005 and result["config"].params.epochs == 30
