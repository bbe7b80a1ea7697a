"""Popularity and random baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.baselines import PopularityModel, RandomModel

USERS = pd.DataFrame({"user_id": [1, 2, 3]})
PRODUCTS = pd.DataFrame({"product_id": [10, 11, 12, 13]})


def test_popularity_counts_distinct_users_per_product():
    frame = pd.DataFrame({"user_id": [1, 1, 2, 3, 3, 3], "product_id": [10, 10, 10, 11, 12, 10]})
    model = PopularityModel.fit(frame)
    np.testing.assert_array_equal(model.item_scores(PRODUCTS), [3, 1, 1, 0])
    scores = model.score(USERS, PRODUCTS)
    assert scores.shape == (3, 4) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, np.tile([3, 1, 1, 0], (3, 1)))
    scores[0, 0] = -1  # a writable copy, not a view of shared state
    assert model.score(USERS, PRODUCTS)[1, 0] == 3
    with pytest.raises(ValueError, match="product_id"):
        PopularityModel.fit(pd.DataFrame({"user_id": [1]}))


def test_random_is_seeded_per_user_and_independent_of_the_batch():
    a = RandomModel(seed=1).score(USERS, PRODUCTS)
    b = RandomModel(seed=1).score(USERS.iloc[[2, 0]], PRODUCTS)
    np.testing.assert_array_equal(a[[2, 0]], b)
    assert not np.array_equal(a, RandomModel(seed=2).score(USERS, PRODUCTS))
    assert not np.array_equal(a[0], a[1])
    assert a.dtype == np.float32 and ((a >= 0) & (a < 1)).all()
