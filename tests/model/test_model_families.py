"""Every served model family: fit -> save -> load gives the same scores, an altered file is refused,
and the served form (vectors, or item-kNN's neighbour rows) gives the scores of ``score``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts import model_key
from recsys.integrity import ArtifactIntegrityError
from recsys.model.families import FAMILIES, UnknownFamilyError, family_of, fit_family, servable_users
from recsys.model.model_files import MODEL_ARRAYS, ModelArtifactError

CONFIGS = {
    "hybrid": {"params": {"epochs": 3, "no_components": 8, "loss": "warp"}, "user_features": [],
               "item_features": ["category"]},
    "lightfm-cf": {"params": {"epochs": 3, "no_components": 8, "loss": "warp"}},
    "als": {"factors": 8, "regularization": 0.05, "iterations": 3, "alpha": 10.0},
    "item-knn": {"neighbours": 5},
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"user_id": np.arange(1, 41), "country": "DE", "language": "de", "device_type": "mobile"})
    products = pd.DataFrame({"product_id": np.arange(100, 130), "category": [f"c{i % 4}" for i in range(30)],
                             "price": 10.0, "name": [f"thing {i}" for i in range(30)]})
    pairs = {(int(u), int(100 + (u * 3 + rng.integers(0, 8)) % 30)) for u in range(1, 36) for _ in range(6)}
    frame = pd.DataFrame(sorted(pairs), columns=["user_id", "product_id"])
    frame["weight"] = rng.integers(1, 5, len(frame)).astype(float)
    frame["purchases"], frame["spend"] = 1, 10.0
    return frame, users, products


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fit_save_load_gives_the_same_scores_and_the_served_form_agrees(family, data, local_store):
    frame, users, products = data
    model = fit_family(family, frame, users, products, CONFIGS[family], seed=1, threads=1, info={"x": 1})
    checksums = model.save(local_store, "m1")
    assert set(checksums) == {"model.npz", "model.json"}
    loaded = family_of(family).load(local_store, "m1", checksums)
    some = users.iloc[:10]
    np.testing.assert_allclose(loaded.score(some, products), model.score(some, products), rtol=1e-6)
    served = _dense(loaded.user_vectors(some) @ loaded.item_vectors(products).T)
    np.testing.assert_allclose(served, model.score(some, products), rtol=1e-5, atol=1e-6)
    assert served[:5].max() > 0  # known users get real scores
    assert loaded.served_as == ("neighbours" if family == "item-knn" else "vectors")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_altered_file_is_refused(family, data, local_store):
    frame, users, products = data
    model = fit_family(family, frame, users, products, CONFIGS[family], seed=1, threads=1)
    checksums = model.save(local_store, "m2")
    path = local_store._path(model_key("m2", MODEL_ARRAYS))
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ArtifactIntegrityError):
        family_of(family).load(local_store, "m2", checksums)


def test_a_model_of_another_family_is_not_read_as_this_one(data, local_store):
    frame, users, products = data
    checksums = fit_family("als", frame, users, products, CONFIGS["als"], seed=1, threads=1).save(local_store, "m3")
    with pytest.raises(ModelArtifactError, match="not a 'item-knn' model"):
        family_of("item-knn").load(local_store, "m3", checksums)


def test_families_by_registry_model_type():
    assert family_of("HYBRID").name == "hybrid" and family_of("HYBRID").model_type == "HYBRID"
    assert family_of("item-knn").model_type == "item-knn"
    with pytest.raises(UnknownFamilyError, match="known"):
        family_of("gru")


def test_families_without_cold_start_serve_their_known_users_only(data):
    frame, users, products = data
    knn = fit_family("item-knn", frame, users, products, CONFIGS["item-knn"], seed=1, threads=1)
    hybrid = fit_family("hybrid", frame, users, products, CONFIGS["hybrid"], seed=1, threads=1)
    assert set(servable_users(knn, users, "user_id")["user_id"]) == set(frame["user_id"])
    assert len(servable_users(hybrid, users, "user_id")) == len(users)
