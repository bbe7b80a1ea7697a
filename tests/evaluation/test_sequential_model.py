"""The ``sequential`` row of ``evaluate``: trained on the split's training events through its family, scored
through the ONNX export from each user's sequence in the split's history."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from recsys.constants import COL_ITEM, COL_TIMESTAMP, COL_USER
from recsys.evaluation.baselines import ModelUnavailableError
from recsys.evaluation.models import MODEL_NAMES, HybridConfig, build_model
from recsys.evaluation.protocol import Cutoff, Protocol, build_eval_split
from recsys.evaluation.measure import measure
from recsys.evaluation.models import training_data
from recsys.families import FrameHistory, family_of
from recsys.families.hybrid.fit import TrainParams
from recsys.families.sequential import SequentialFamily, sequential_config
from recsys.families.sequential.scoring import score_products
from tests.evaluation.eval_helpers import CUT, shop_logs

FAST = {"max_len": 8, "dim": 16, "layers": 1, "heads": 1, "max_epochs": 30, "patience": 5, "learning_rate": 5e-3}


@pytest.fixture(scope="module")
def split():
    return build_eval_split(shop_logs(), Cutoff("split-date", "day 40", CUT), Protocol(k=3, cold_max_items=3))


@pytest.fixture(scope="module")
def model(split):
    config = sequential_config(seed=3, threads=1, **FAST).as_dict()
    return family_of("sequential").fit(training_data(split), config, seed=3, threads=1)


def score(model, users, products, history):
    scorer = model.scorer(products, history)
    return scorer.scores(scorer.block(users))


def test_sequential_is_one_of_the_compared_models(split, monkeypatch):
    calls = []
    monkeypatch.setattr(SequentialFamily, "fit",
                        lambda self, data, config, **kw: calls.append((data.frame, config["seed"], kw)) or "fitted")
    assert "sequential" in MODEL_NAMES
    assert build_model("sequential", split, HybridConfig(TrainParams(seed=3, threads=1))) == "fitted"
    [(frame, seed, kw)] = calls
    assert frame is split.frame and seed == 3 and kw == {"seed": 3, "threads": 1}  # the run's seed and threads


def test_each_user_is_scored_from_the_sequence_before_the_cut_off(split, model):
    user = int(split.main.users[COL_USER].iloc[0])
    events = shop_logs().events
    before = events[(events[COL_USER] == user) & (events[COL_TIMESTAMP] < CUT)].sort_values(COL_TIMESTAMP,
                                                                                           kind="stable")
    products = split.main.products
    expected = score_products(model.runtime, [before[COL_ITEM].tolist()], products[COL_ITEM].to_numpy())
    history = FrameHistory(split.train_events)
    got = score(model, split.main.users.iloc[:1], products, history)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    unknown = score(model, pd.DataFrame({COL_USER: [999_999]}), products, history)
    assert not unknown.any()  # no sequence, no signal


def test_it_learns_the_tastes_better_than_random(split, model):
    ours = measure(model, split.main, 3, seed=1, with_curves=False)
    chance = measure(build_model("random", split, HybridConfig()), split.main, 3, seed=1, with_curves=False)
    assert ours["precision@3"] > 2 * chance["precision@3"]
    assert model.training_summary["best_epoch"] >= 1


def test_it_is_unavailable_without_the_training_dependencies(split, monkeypatch):
    monkeypatch.setitem(sys.modules, "recsys.families.sequential.train", None)  # as if torch were not installed
    with pytest.raises(ModelUnavailableError, match="requirements-train.txt"):
        build_model("sequential", split, HybridConfig(TrainParams(seed=3, threads=1)))
