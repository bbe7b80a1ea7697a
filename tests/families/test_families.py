"""Every registered model family through the one protocol (``recsys.families.base``): fit -> save -> load
gives the same scores, an altered file is refused, and the served form (what publish writes, opened as the
API opens it) gives the scores of the batch scorer; the sequential model is one more family, scoring from
each user's events in a history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts import model_key
from recsys.integrity import ArtifactIntegrityError
from recsys.families.sequential import MODEL_TYPE_SEQUENTIAL
from recsys.constants import COL_EVENT_TYPE, COL_ITEM, COL_TIMESTAMP, COL_USER, PURCHASE
from recsys.families import (
    FAMILIES, ScoringWindow, TrainingData, UnknownFamilyError, family_of, load_model, servable_users,
)
from recsys.families.files import MODEL_ARRAYS, ModelArtifactError


def fit_family(name, frame, users, products, config, *, seed, threads):
    return family_of(name).fit(TrainingData(frame, users, products), config, seed=seed, threads=threads)


def scores(model, users, products, history=None):
    scorer = model.scorer(products, history)
    return scorer.scores(scorer.block(users))

CONFIGS = {
    "hybrid": {"params": {"epochs": 3, "no_components": 8, "loss": "warp"}, "user_features": [],
               "item_features": ["category"]},
    "lightfm-cf": {"params": {"epochs": 3, "no_components": 8, "loss": "warp"}},
    "als": {"factors": 8, "regularization": 0.05, "iterations": 3, "alpha": 10.0},
    "item-knn": {"neighbours": 5},
}
FRAME_FAMILIES = sorted(CONFIGS)  # the families trained from the aggregated frame alone


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


@pytest.mark.parametrize("family", FRAME_FAMILIES)
def test_fit_save_load_gives_the_same_scores_and_the_served_form_agrees(family, data, local_store):
    frame, users, products = data
    model = fit_family(family, frame, users, products, CONFIGS[family], seed=1, threads=1)
    checksums = model.save(local_store, "m1")
    assert set(checksums) == {"model.npz", "model.json"}
    loaded = family_of(family).load(local_store, "m1", checksums)
    some = users.iloc[:10]
    np.testing.assert_allclose(scores(loaded, some, products), scores(model, some, products), rtol=1e-6)
    served = _dense(loaded.user_vectors(some) @ loaded.item_vectors(products).T)
    np.testing.assert_allclose(served, scores(model, some, products), rtol=1e-5, atol=1e-6)
    assert served[:5].max() > 0  # known users get real scores
    assert loaded.served_as == ("neighbours" if family == "item-knn" else "vectors")


@pytest.mark.parametrize("family", FRAME_FAMILIES)
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


def test_every_registered_family_has_every_member_of_the_protocol():
    from recsys.families import REGISTERED
    from recsys.families.base import ModelFamily

    members = [name for name in ModelFamily.__annotations__] + [
        name for name, value in vars(ModelFamily).items() if callable(value) and not name.startswith("_")]
    for family in REGISTERED:
        missing = [name for name in members if not hasattr(family, name)]
        assert not missing and isinstance(family, ModelFamily), (family.name, missing)


def test_families_by_registry_model_type():
    assert family_of("HYBRID").name == "hybrid" and family_of("HYBRID").model_type == "HYBRID"
    assert family_of("item-knn").model_type == "item-knn"
    assert family_of(MODEL_TYPE_SEQUENTIAL) is FAMILIES["sequential"]  # the sequential branch's rows
    assert FAMILIES["sequential"].model_type == MODEL_TYPE_SEQUENTIAL
    assert set(FRAME_FAMILIES) < set(FAMILIES)
    with pytest.raises(UnknownFamilyError, match="known"):
        family_of("gru")


def test_families_without_cold_start_serve_their_known_users_only(data):
    frame, users, products = data
    knn = fit_family("item-knn", frame, users, products, CONFIGS["item-knn"], seed=1, threads=1)
    hybrid = fit_family("hybrid", frame, users, products, CONFIGS["hybrid"], seed=1, threads=1)
    assert set(servable_users(family_of("item-knn"), knn, users, "user_id")["user_id"]) == set(frame["user_id"])
    assert len(servable_users(family_of("hybrid"), hybrid, users, "user_id")) == len(users)


def test_the_families_module_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; import recsys.families as f; f.family_of('SEQUENTIAL'); "
            "import recsys.pipeline.publish, recsys.evaluation.gate; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_sequential_family_trains_from_events_not_from_the_frame(data):
    frame, users, products = data
    with pytest.raises(ValueError, match="no events"):  # the frame alone is not its training data
        fit_family("sequential", frame, users, products, {}, seed=1, threads=1)


def _saved_sequential(store, model_id: str, products: pd.DataFrame):
    """A small sequential model trained on successor sequences and saved as training saves it."""
    from recsys.families.sequential.config import SequentialConfig
    from recsys.families.sequential.trained import SequentialModel

    ids = products["product_id"].to_numpy()
    events = pd.DataFrame([(u, int(ids[(u + step) % len(ids)]), PURCHASE, 1_000 + step) for u in range(1, 41)
                           for step in range(5)], columns=[COL_USER, COL_ITEM, COL_EVENT_TYPE, COL_TIMESTAMP])
    config = SequentialConfig(max_len=5, dim=8, layers=1, heads=1, max_epochs=2, threads=1, seed=3)
    return SequentialModel.fit(events, products, config).save(store, model_id)


@pytest.mark.slow  # tens of seconds: not in make test-fast
def test_a_sequential_row_loads_through_the_registry_and_scores_from_the_users_events(data, local_store, engine):
    from types import SimpleNamespace

    from recsys.db.models import UserEvent
    from recsys.families.sequential.scoring import encode
    from recsys.families.sequential.trained import SequentialScorer

    _, _, products = data
    row = SimpleNamespace(model_id="s1", model_type=MODEL_TYPE_SEQUENTIAL,
                          artifacts=_saved_sequential(local_store, "s1", products))
    with engine.begin() as conn:  # user 7 bought 101 then 102 (in the window), 103 after its end
        conn.execute(UserEvent.__table__.insert(), [
            {"user_id": 7, "product_id": p, "event_type": PURCHASE, "timestamp": t}
            for p, t in ((101, 5_000), (102, 6_000), (103, 20_000))])
    model = load_model(local_store, row)
    with pytest.raises(ValueError, match="history"):
        model.scorer(products)  # a sequential model needs to know where its users' sequences are
    scorer = model.scorer(products, ScoringWindow(engine, until_ms=10_000, lookback_days=1))
    assert isinstance(scorer, SequentialScorer) and model.dim == 8
    users = pd.DataFrame({"user_id": [7, 8]})
    got = scorer.scores(scorer.block(users))
    expected = encode(model.runtime, [[101, 102]])[0] @ scorer.item_vectors.T
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-6)
    assert not got[1].any()  # no sequence: no signal
    assert scorer.follows(7) == 102  # the newest product of its sequence

    path = local_store._path(model_key("s1", "item_vectors.npy"))
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(ArtifactIntegrityError):
        load_model(local_store, row)
