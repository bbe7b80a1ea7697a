"""EASE (recsys.families.ease): the closed form against a slow reference, the sparsified model it serves,
its files, the size guard, and its place among the registered families (selection, evaluate, the API)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.families import FAMILIES, ConfigBase, TrainingData, family_of
from recsys.families.ease.model import EASEModel


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    users = pd.DataFrame({"user_id": np.arange(1, 61), "country": "DE", "language": "de", "device_type": "web"})
    products = pd.DataFrame({"product_id": np.arange(200, 240), "category": [f"c{i % 5}" for i in range(40)],
                             "price": 5.0, "name": [f"item {i}" for i in range(40)]})
    pairs = {(int(u), int(200 + (u * 7 + rng.integers(0, 10)) % 40)) for u in range(1, 61) for _ in range(8)}
    frame = pd.DataFrame(sorted(pairs), columns=["user_id", "product_id"]).assign(weight=1.0, purchases=0, spend=0.0)
    return frame, users, products


def reference_weights(frame: pd.DataFrame, lam: float) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Steck's closed form, written out: B = I - P diagMat(1 / diag(P)), P = (X'X + lambda I)^-1; (X, B)."""
    users, items = sorted(frame["user_id"].unique()), sorted(frame["product_id"].unique())
    x = np.zeros((len(users), len(items)))
    for u, i in zip(frame["user_id"], frame["product_id"]):
        x[users.index(u), items.index(i)] = 1.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(len(items)))
    return x, np.eye(len(items)) - p @ np.diag(1.0 / np.diag(p)), users, items


def test_the_closed_form_with_every_weight_kept_is_steck_s(data):
    frame, users, products = data
    model = EASEModel.fit(frame, lam=50.0, neighbours=40)  # every positive weight kept
    x, b, ids, items = reference_weights(frame, 50.0)
    assert np.allclose(np.diag(b), 0.0)
    some = pd.DataFrame({"user_id": ids[:10]})
    got = model.score(some, pd.DataFrame({"product_id": items}))
    np.testing.assert_allclose(got, x[:10] @ np.maximum(b, 0.0), rtol=1e-4, atol=1e-5)
    assert np.corrcoef(got.ravel(), (x[:10] @ b).ravel())[0, 1] > 0.9  # the positive part carries the ranking


def test_fit_save_load_and_the_served_form_agree(data, local_store, tmp_path):
    frame, users, products = data
    family = family_of("ease")
    model = family.fit(TrainingData(frame, users, products), {"lambda": 20.0, "neighbours": 10}, seed=1, threads=1)
    checksums = model.save(local_store, "e1")
    loaded = family.load(local_store, "e1", checksums)
    scorer = loaded.scorer(products)
    some = users.iloc[:8]
    np.testing.assert_allclose(scorer.scores(scorer.block(some)), model.score(some, products), rtol=1e-6)
    files = model.write_served(users, products, tmp_path)
    assert files == family.served_files
    served = family.open_served("e1", tmp_path)
    top = served.score_user(served.user_vector(int(some["user_id"].iloc[0])), 5)
    dense = model.score(some.iloc[:1], products)[0]
    assert [p for p, _ in top] == [int(products["product_id"].iloc[j]) for j in np.argsort(-dense, kind="stable")[:5]]


def test_the_size_guard_keeps_it_out_of_large_catalogues(data):
    family = family_of("ease")
    assert family.capabilities.fits(15_000) is None and "15,000" in family.capabilities.fits(15_001)
    frame = pd.DataFrame({"user_id": np.arange(20_000) % 50, "product_id": np.arange(20_000),
                          "weight": 1.0})
    with pytest.raises(ValueError, match="limit is 15,000"):
        EASEModel.fit(frame)


def test_it_is_one_more_registered_family():
    assert "ease" in FAMILIES and family_of("EASE") is FAMILIES["ease"]
    assert family_of("ease").configurations(ConfigBase()) == {"ease": {"lambda": 500.0, "neighbours": 200}}
    assert not family_of("ease").capabilities.cold_start_users
