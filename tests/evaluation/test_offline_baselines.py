"""Each benchmark baseline on a toy log where the right answer is obvious."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.constants import MS_PER_DAY, PURCHASE, VIEW
from recsys.evaluation.baselines import ModelUnavailableError, TrendingModel
from recsys.families.als.model import ALSModel
from recsys.families.item_knn.model import ItemKNNModel
from recsys.families.matrix import top_per_row
from recsys.evaluation.protocol import interaction_frame

USERS = pd.DataFrame({"user_id": [1, 2, 3, 99]})


def frame(pairs) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["user_id", "product_id"]).assign(weight=5.0)


def products(*ids) -> pd.DataFrame:
    return pd.DataFrame({"product_id": list(ids)})


def test_trending_puts_recent_sellers_first_then_all_time_popularity():
    end = 100 * MS_PER_DAY
    old = [(u, 10, end - 50 * MS_PER_DAY) for u in range(1, 9)]  # a long-time bestseller: 8 buyers
    older = [(u, 12, end - 60 * MS_PER_DAY) for u in range(1, 4)]  # 3 buyers, long ago
    recent = [(1, 11, end - MS_PER_DAY), (2, 11, end - 2 * MS_PER_DAY),  # bought in the last days
              (3, 13, end - 6 * MS_PER_DAY)]  # once, nearly a week ago
    events = pd.DataFrame([{"user_id": u, "product_id": i, "event_type": PURCHASE, "timestamp": t, "price": 1.0}
                           for u, i, t in old + older + recent])
    model = TrendingModel.fit(events, interaction_frame(events), days=7, now_ms=end)
    scores = model.score(USERS, products(10, 11, 12, 13, 555))
    order = products(10, 11, 12, 13, 555)["product_id"].to_numpy()[np.argsort(-scores[0], kind="stable")]
    assert order.tolist() == [11, 13, 10, 12, 555]  # trending (recent first), then popularity, unknown last
    assert (scores == scores[0]).all()  # the same list for every user
    with pytest.raises(ValueError, match="days"):
        TrendingModel.fit(events, interaction_frame(events), days=0)


def test_top_per_row_keeps_the_largest_entries():
    mat = sp.csr_matrix(np.array([[0.1, 0.9, 0.5, 0.0], [0.3, 0.0, 0.3, 0.2], [0, 0, 0, 0]], dtype=np.float32))
    kept = top_per_row(mat, 2).toarray()
    np.testing.assert_allclose(kept, [[0, 0.9, 0.5, 0], [0.3, 0, 0.3, 0], [0, 0, 0, 0]])


def test_item_knn_cosine_matches_a_slow_reference_and_recommends_the_co_bought_item():
    pairs = [(1, 10), (1, 11), (2, 10), (2, 11), (3, 10), (3, 12), (4, 13), (5, 12), (5, 13)]
    model = ItemKNNModel.fit(frame(pairs), neighbours=10)
    x = np.zeros((5, 4))
    for u, i in pairs:
        x[u - 1, i - 10] = 1.0
    co = x.T @ x
    reference = co / np.sqrt(np.outer(np.diag(co), np.diag(co)))
    np.fill_diagonal(reference, 0.0)
    np.testing.assert_allclose(model.similarity.toarray(), reference, rtol=1e-6)
    # a user who bought 10 only: 11 (bought with 10 twice) beats 12 (once), 13 (never with 10) scores 0
    scores = model.score(pd.DataFrame({"user_id": [3, 42]}), products(11, 12, 13, 777))
    assert scores[0, 0] > scores[0, 1] > 0 and scores[0, 2] == pytest.approx(reference[2, 3])
    assert scores[0, 3] == 0.0 and not scores[1].any()  # unknown product, unknown user


def test_item_knn_neighbours_limit_and_errors():
    pairs = [(1, 10), (1, 11), (1, 12), (2, 10), (2, 11)]
    model = ItemKNNModel.fit(frame(pairs), neighbours=1)
    assert (np.diff(model.similarity.indptr) <= 1).all()
    with pytest.raises(ValueError, match="neighbours"):
        ItemKNNModel.fit(frame(pairs), neighbours=0)
    with pytest.raises(ValueError, match="no training interactions"):
        ItemKNNModel.fit(frame([]))


def two_tastes() -> pd.DataFrame:
    """Users 1-20 buy products 100-109, users 21-40 buy 200-209 (each a seeded 6 of their 10)."""
    rng = np.random.default_rng(7)
    pairs = []
    for user in range(1, 41):
        base = 100 if user <= 20 else 200
        pairs += [(user, base + int(i)) for i in rng.choice(10, size=6, replace=False)]
    return frame(pairs)


def test_als_scores_the_users_own_taste_higher():
    pytest.importorskip("implicit", reason="implicit (the als family) is in requirements.txt")
    model = ALSModel.fit(two_tastes(), factors=8, iterations=10, regularization=0.01, alpha=5.0, threads=1)
    catalogue = products(*range(100, 110), *range(200, 210))
    scores = model.score(pd.DataFrame({"user_id": [1, 30, 999]}), catalogue)
    assert scores[0, :10].mean() > scores[0, 10:].mean() + 0.1
    assert scores[1, 10:].mean() > scores[1, :10].mean() + 0.1
    assert not scores[2].any()  # unknown user
    again = ALSModel.fit(two_tastes(), factors=8, iterations=10, regularization=0.01, alpha=5.0, threads=1)
    np.testing.assert_allclose(again.item_factors, model.item_factors, rtol=1e-5)  # seeded


def test_als_unavailable_without_the_implicit_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "implicit.als", None)  # import fails as if not installed
    with pytest.raises(ModelUnavailableError, match="implicit"):
        ALSModel.fit(two_tastes())


def test_views_count_less_than_purchases_in_the_training_signal():
    events = pd.DataFrame({"user_id": [1, 1, 1], "product_id": [10, 11, 11], "event_type": [VIEW, VIEW, PURCHASE],
                           "timestamp": [1, 2, 3], "price": [1.0, 1.0, 1.0]})
    weights = interaction_frame(events).set_index("product_id")["weight"]
    assert weights.to_dict() == {10: 1.0, 11: 6.0}
