"""HybridModel on a tiny hand-made shop: vectors, cold start, persistence."""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts import model_key
from recsys.constants import ITEM_FEATURE_GROUPS, USER_FEATURE_GROUPS
from recsys.integrity import ArtifactIntegrityError
from recsys.families.hybrid.model import HybridModel
from recsys.families.files import ModelArtifactError
from recsys.families.hybrid.files import HYPER, STATE
from recsys.families.hybrid.fit import TrainParams, fit_hybrid

CATS = ["Shoes", "Books", "Toys"]


@pytest.fixture(scope="module")
def tiny():
    """60 users, 30 products in 3 categories; each user interacts only with one category."""
    rng = np.random.default_rng(0)
    users = pd.DataFrame({
        "user_id": np.arange(1, 61),
        "country": rng.choice(["US", "DE"], 60),
        "language": rng.choice(["en", "de"], 60),
        "device_type": rng.choice(["mobile", "desktop"], 60),
    })
    products = pd.DataFrame({
        "product_id": np.arange(100, 130),
        "category": [CATS[i % 3] for i in range(30)],
        "price": rng.uniform(5, 200, 30).round(2),
        "name": [f"{['Red', 'Blue'][i % 2]} {CATS[i % 3].lower()} item" for i in range(30)],
    })
    rows = []
    for u in users["user_id"]:
        liked = products[products["category"] == CATS[u % 3]]["product_id"].to_numpy()
        for p in rng.choice(liked, 5, replace=False):
            rows.append((u, p, float(rng.integers(1, 6)), int(rng.random() < 0.3), 0.0))
    frame = pd.DataFrame(rows, columns=["user_id", "product_id", "weight", "purchases", "spend"])
    # every attribute group; WARP, which learns this tiny shop in 20 epochs (BPR with every group needs ~60)
    params = TrainParams(epochs=20, no_components=8, learning_rate=0.1, threads=1, seed=3, loss="warp",
                         user_features=USER_FEATURE_GROUPS, item_features=ITEM_FEATURE_GROUPS)
    model = fit_hybrid(frame, users, products, params, info={"train_days": ["a", "b"]})
    return model, users, products, frame


def test_only_the_chosen_attribute_groups_become_features(tiny):
    model, users, products, frame = tiny
    assert {f.split(":")[0] for f in model.user_space.attributes} == {"country", "lang", "device", "segment"}
    assert {f.split(":")[0] for f in model.item_space.attributes} == {"category", "price", "token"}
    params = TrainParams(epochs=2, no_components=4, threads=1, user_features=(), item_features=("name",))
    names_only = fit_hybrid(frame, users, products, params)
    assert len(names_only.user_space.attributes) == 0
    assert {f.split(":")[0] for f in names_only.item_space.attributes} == {"token"}
    # a user unseen in training has no feature left: the zero embedding, so products rank by their bias
    newcomer = names_only.user_vectors(users.iloc[:1].assign(user_id=9999))
    np.testing.assert_array_equal(newcomer[0], np.append(np.zeros(4, dtype=np.float32), 1.0))
    with pytest.raises(ValueError, match="unknown feature"):
        TrainParams(item_features=("colour",))


def test_vectors_shapes_dtypes_and_score(tiny):
    model, users, products, _ = tiny
    u, i = model.user_vectors(users), model.item_vectors(products)
    assert u.shape == (60, model.dim) and i.shape == (30, model.dim) and model.dim == 9
    assert u.dtype == np.float32 and i.dtype == np.float32
    assert set(model.known_user_ids) == set(users["user_id"]) and set(model.known_item_ids) <= set(products["product_id"])
    np.testing.assert_array_equal(u[:, -1], 1.0)
    bias, emb = model.model.get_item_representations(model.item_features(products))
    np.testing.assert_allclose(i[:, -1], bias, rtol=1e-6)
    np.testing.assert_allclose(i[:, :-1], emb, rtol=1e-6)
    scores = model.score(users, products)
    np.testing.assert_allclose(scores, u @ i.T, rtol=1e-5)
    assert scores.dtype == np.float32


def test_learns_the_category_preferences(tiny):
    model, users, products, _ = tiny
    scores = model.score(users, products)
    liked = np.array([[products["category"].iloc[j] == CATS[u % 3] for j in range(30)] for u in users["user_id"]])
    assert scores[liked].mean() > scores[~liked].mean()
    top = np.argmax(scores, axis=1)
    assert liked[np.arange(60), top].mean() > 0.9


def test_unseen_user_and_item_vectors_come_from_attributes(tiny):
    model, _, products, _ = tiny
    new_users = pd.DataFrame({"user_id": [9001, 9002, 9003], "country": ["US", "DE", "US"],
                              "language": ["en", "de", "en"], "device_type": ["mobile", "desktop", "mobile"]})
    u = model.user_vectors(new_users)
    assert np.abs(u[:, :-1]).sum(axis=1).min() > 0
    assert not np.allclose(u[0], u[1])
    np.testing.assert_array_equal(u[0], u[2])
    new_items = pd.DataFrame({"product_id": [7001, 7002], "category": ["Shoes", "Books"],
                              "price": [50.0, 50.0], "name": ["Red shoes item", "Red books item"]})
    i = model.item_vectors(new_items)
    assert np.abs(i[:, :-1]).sum(axis=1).min() > 0 and not np.allclose(i[0], i[1])
    known = model.item_vectors(products.iloc[:1])
    renamed = model.item_vectors(products.iloc[:1].assign(product_id=7777))  # same attributes, no identity
    assert not np.allclose(known, renamed)


def test_value_segment_argument_changes_the_user_vector(tiny):
    model, users, _, _ = tiny
    one = users.iloc[:1]
    whale = model.user_vectors(one, pd.Series({int(one["user_id"].iloc[0]): "whale"}))
    new = model.user_vectors(one, pd.Series({int(one["user_id"].iloc[0]): "new"}))
    assert not np.allclose(whale, new)


def test_bad_frames_raise_value_errors(tiny):
    model, users, products, _ = tiny
    with pytest.raises(ValueError, match="country"):
        model.user_vectors(users.drop(columns="country"))
    with pytest.raises(ValueError, match="missing product_id"):
        model.item_vectors(products.assign(product_id=np.nan))


@pytest.mark.parametrize("store_fixture", ["local_store", "s3_store"])
def test_save_load_round_trip_gives_identical_scores(tiny, store_fixture, request):
    store = request.getfixturevalue(store_fixture)
    model, users, products, _ = tiny
    checksums = model.save(store, "01TESTMODEL")
    assert set(checksums) == {"model.npz", "model.json"}
    assert checksums == {n: store.sha256(model_key("01TESTMODEL", n)) for n in checksums}
    loaded = HybridModel.load(store, "01TESTMODEL", checksums)
    assert loaded.info == {"train_days": ["a", "b"]}
    extra = pd.DataFrame({"user_id": [5555], "country": ["DE"], "language": ["de"], "device_type": ["mobile"]})
    both = pd.concat([users, extra], ignore_index=True)
    np.testing.assert_array_equal(loaded.score(both, products), model.score(both, products))


def test_the_lightfm_state_survives_the_round_trip_so_training_can_continue(tiny, local_store):
    model, *_ = tiny
    loaded = HybridModel.load(local_store, "m", model.save(local_store, "m"))
    for name in STATE:
        np.testing.assert_array_equal(getattr(loaded.model, name), getattr(model.model, name))
    for name in HYPER:
        assert getattr(loaded.model, name) == getattr(model.model, name)
    a, b = model.model.random_state.get_state(), loaded.model.random_state.get_state()
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0] == b[0] and a[2:] == b[2:]
    assert loaded.vocabulary == model.vocabulary and loaded.user_segments.equals(model.user_segments)


def test_load_missing_or_foreign_artifact(local_store):
    with pytest.raises(ModelArtifactError, match="no model artifact"):
        HybridModel.load(local_store, "NOPE", {})
    import pickle

    data = pickle.dumps({"not": "a model"})
    local_store.put_bytes(model_key("ODD", "model.pkl"), data)
    with pytest.raises(ModelArtifactError, match="convert-legacy ODD"):  # a legacy pickle, even with its checksum
        HybridModel.load(local_store, "ODD", {"model.pkl": hashlib.sha256(data).hexdigest()})


class _Exploit:
    """Unpickling this runs code: it creates ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_a_pickle_from_the_bucket_is_never_unpickled(local_store, tmp_path):
    """Recorded or not (``models trust`` of an earlier version recorded them), a ``model.pkl`` is refused
    with what to do; nothing of it runs."""
    import pickle

    flag = tmp_path / "code-ran"
    data = pickle.dumps(_Exploit(str(flag)))
    local_store.put_bytes(model_key("EVIL", "model.pkl"), data)
    for recorded in ({}, {"model.pkl": "0" * 64}, {"model.pkl": hashlib.sha256(data).hexdigest()}):
        with pytest.raises(ModelArtifactError, match="never unpickled; convert it on a trusted machine with "
                                                     "`python -m recsys models convert-legacy EVIL`"):
            HybridModel.load(local_store, "EVIL", recorded)
    assert not flag.exists()


def test_the_conversion_unpickles_nothing_but_a_model(tmp_path):
    import pickle

    from recsys.families.hybrid.legacy_pickle import LegacyModelError, convert_file

    flag = tmp_path / "code-ran"
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_Exploit(str(flag))))
    with pytest.raises(LegacyModelError, match="refers to pathlib.Path.touch, which is no part of a HybridModel"):
        convert_file(tmp_path / "model.pkl")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(LegacyModelError, match="holds a dict, not a HybridModel"):
        convert_file(tmp_path / "model.pkl")
    assert not flag.exists() and not (tmp_path / "model.json").exists()


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_pickled_model_converts_offline_to_files_that_score_the_same(tiny, tmp_path, protocol):
    """``python -m recsys models convert-legacy PATH`` on a pickle as the earlier version saved it."""
    import json
    import pickle
    import subprocess
    import sys

    from recsys.artifacts import LocalArtifactStore

    model, users, products, _ = tiny
    legacy = tmp_path / "old" / "model.pkl"
    legacy.parent.mkdir()
    legacy.write_bytes(pickle.dumps(model, protocol=protocol))
    out = subprocess.run([sys.executable, "-m", "recsys", "models", "convert-legacy", str(legacy),
                          "--out", str(tmp_path / "store" / "models" / "conv")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    sums = json.loads(out.stdout)["sha256"]
    assert set(sums) == {"model.npz", "model.json"}
    loaded = HybridModel.load(LocalArtifactStore(tmp_path / "store"), "conv", sums)
    np.testing.assert_array_equal(loaded.score(users, products), model.score(users, products))
    assert loaded.vocabulary == model.vocabulary and loaded.info == model.info


def test_nothing_but_the_conversion_unpickles():
    """No module of the pipeline, the API, the DAGs or the scripts imports a deserializer that runs code
    (pickle and kin), reads a pickle through pandas, numpy or torch: only ``recsys.families.hybrid.legacy_pickle``."""
    import ast

    root = pathlib.Path(__file__).resolve().parents[2]
    banned = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    found = set()
    for folder in ("recsys", "plugins", "dags", "scripts", "bench"):
        for path in sorted((root / folder).rglob("*.py")):
            where = str(path.relative_to(root))
            for node in ast.walk(ast.parse(path.read_text(), where)):
                if isinstance(node, ast.Import):
                    found |= {(where, a.name) for a in node.names if a.name.split(".")[0] in banned}
                elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in banned:
                    found.add((where, node.module))
                elif isinstance(node, ast.Attribute) and node.attr == "read_pickle":
                    found.add((where, "read_pickle"))
                elif isinstance(node, ast.Attribute) and node.attr == "load" and \
                        getattr(node.value, "id", "") == "torch":
                    found.add((where, "torch.load"))
                elif isinstance(node, ast.keyword) and node.arg == "allow_pickle" and getattr(node.value, "value", 0):
                    found.add((where, "allow_pickle=True"))
    assert found == {("recsys/families/hybrid/legacy_pickle.py", "pickle")}


@pytest.mark.parametrize("name", ["model.npz", "model.json"])
def test_an_altered_model_file_is_refused_by_name(tiny, local_store, name):
    model, *_ = tiny
    checksums = model.save(local_store, "m")
    other = model.save(local_store, "m2")
    data = bytearray(local_store.get_bytes(model_key("m", name)))
    data[-1] ^= 1
    local_store.put_bytes(model_key("m", name), bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=f"m/{name}: checksum mismatch"):
        HybridModel.load(local_store, "m", checksums)
    assert other  # the untouched copy still loads
    HybridModel.load(local_store, "m2", other)
